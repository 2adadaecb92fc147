"""The RQ worker the pool runs (`--worker-class imageedits.edits.rqworker.Worker`)."""

from django.db import close_old_connections
from rq.worker import SimpleWorker


class Worker(SimpleWorker):
    """Runs each job in its own process, where RQ's default forks a process per job that then
    opens its own database connection and S3 client (three times slower under load). Between
    jobs, like django-tasks-db's worker and Django's request cycle, it drops database
    connections that broke (a database restart) or outlived CONN_MAX_AGE."""

    def execute_job(self, job, queue):
        close_old_connections()
        try:
            return super().execute_job(job, queue)
        finally:
            close_old_connections()
