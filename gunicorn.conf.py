"""gunicorn's settings for imageedits (`make serve`, the container). Threads, since a request
waits on the database and storage rather than the CPU, and no request ever waits on the
upstream (the task workers do); an access log that never prints a callback secret or a share
token."""

import os

from gunicorn.glogging import Logger

from imageedits.logfilters import redact

wsgi_app = "imageedits.wsgi:application"
bind = os.environ.get("BIND", f"0.0.0.0:{os.environ.get('PORT', '8000')}")
worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY", 2))
threads = int(os.environ.get("WEB_THREADS", 8))
# The largest request is an edit's uploads (EDIT_MAX_REQUEST_BYTES) over a slow line.
timeout = 120
graceful_timeout = 30
keepalive = 5
# A worker is replaced now and then, so a slow leak never grows for good.
max_requests = 2000
max_requests_jitter = 200
accesslog = "-"
errorlog = "-"
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms "%(a)s"'
# Behind a proxy on another host, name it here so X-Forwarded-* from it are believed.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")


class RedactingLogger(Logger):
    """Access log lines without the secrets that paths and referrers can carry."""

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        return {
            key: redact(value) if isinstance(value, str) else value for key, value in atoms.items()
        }


logger_class = RedactingLogger


def child_exit(server, worker) -> None:
    """With PROMETHEUS_MULTIPROC_DIR, forget a finished process's live figures."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
