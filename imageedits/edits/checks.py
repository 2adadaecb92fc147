"""System checks for settings that cannot work together (run by every manage.py command,
workers included, and by `check --deploy`)."""

from django.conf import settings
from django.core.checks import Error, register

from .models import longest_step_seconds

# RQ's own default job timeout, used when a queue sets none.
RQ_DEFAULT_TIMEOUT = 180


@register
def task_timeout_check(app_configs=None, **kwargs) -> list[Error]:
    """RQ kills a job that runs past its timeout: it must outlast the longest step, or a slow
    upstream gets every try killed (and paid for) and the edit never finishes."""
    if settings.TASKS["default"]["BACKEND"] != "django_tasks_rq.RQBackend":
        return []
    needed = longest_step_seconds()
    errors = []
    for name, queue in getattr(settings, "RQ_QUEUES", {}).items():
        timeout = queue.get("DEFAULT_TIMEOUT") or RQ_DEFAULT_TIMEOUT
        if timeout != -1 and timeout <= needed:
            errors.append(
                Error(
                    f"RQ queue {name!r} kills jobs after {timeout} s, but one step of an edit "
                    f"may take {needed} s (UPSTREAM_TIMEOUT + RESULT_DOWNLOAD_TIMEOUT + "
                    "LEASE_MARGIN).",
                    hint=f"Set TASK_TIMEOUT above {needed}, or lower UPSTREAM_TIMEOUT.",
                    id="imageedits.E001",
                )
            )
    return errors
