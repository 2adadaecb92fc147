"""Background work. Tasks take primary keys and are idempotent: the edit's own record says what
is left to do, so a task that runs twice, or after its edit finished, does nothing."""

from django.tasks import task

from . import services


@task
def run_edit(edit_id: int) -> None:
    services.run_edit(edit_id)


@task
def check_submission(submission_id: int, task_id: str = "") -> None:
    services.check_submission(submission_id, task_id)


@task
def retry_submission(submission_id: int) -> None:
    services.retry_submission(submission_id)
