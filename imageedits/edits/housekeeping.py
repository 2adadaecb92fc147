"""What the reaper (`manage.py reap`) does: put lost work back in the queue, delete stored files
no row refers to, and tidy django-tasks-db's table.

Reaping only queues the pipeline's tasks again (after a conditional update, so any number of
reapers may run at once); it never talks to the upstream itself.
"""

from datetime import timedelta

from django.conf import settings
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.db import models
from django.tasks import TaskResultStatus
from django.utils import timezone

from . import batches, pipeline, services, storage
from .models import PREPARING, Batch, Edit, InputImage, ResultImage, Submission

# django-tasks-db keeps a row for every task, and the row of a task whose worker was killed
# stays RUNNING for ever (the reaper recovers the edit, not the row). No task runs for a day:
# every step has a deadline.
TASK_ROWS_KEPT_DAYS = 14
TASK_ROW_DEAD_AFTER = timedelta(days=1)


def reap() -> dict[str, int]:
    """Queue again what a killed worker or a lost task left behind. Returns how many requests
    or edits each step touched."""
    now = timezone.now()
    stale = now - timedelta(seconds=settings.REAP_STALE_AFTER)
    given_up = stale - timedelta(seconds=settings.CALLBACK_GIVE_UP_AFTER)
    counts = dict.fromkeys(
        (
            "worker_lost", "requeued_edits", "requeued_requests", "late_checks", "settled",
            "released", "requeued_preparations",
        ),
        0,
    )  # fmt: skip
    # A worker stopped while it had the request: read its answer or send it again.
    for submission in Submission.objects.filter(
        status=Submission.Status.RUNNING, lease_expires_at__lt=now
    ).select_related("edit"):
        pipeline.recover_lost(submission)
        counts["worker_lost"] += 1
    # An edit never started: its task was lost between the commit and the queue (an edit of
    # a batch still held is not lost: it waits for its turn, below).
    for edit in (
        Edit.objects.filter(status=Edit.Status.QUEUED)
        .filter(models.Q(enqueued_at__lt=stale) | models.Q(enqueued_at=None, created_at__lt=stale))
        .exclude(batch__isnull=False, enqueued_at=None)
        .exclude(PREPARING)
    ):
        services.enqueue_start(edit)
        counts["requeued_edits"] += 1
    # An image of a batch still waits to be read long after its task was queued: the task was
    # lost, or its worker died. Queued again after a conditional update (one reaper wins); a
    # cancelled edit's task then only deletes the image as it came.
    for edit in Edit.objects.filter(PREPARING, enqueued_at__lt=stale):
        if Edit.objects.filter(pk=edit.pk, enqueued_at=edit.enqueued_at).update(enqueued_at=now):
            batches.prepare_image.enqueue(edit.pk)
            counts["requeued_preparations"] += 1
    # A request waits in the queue of a running edit, but its task was lost.
    for submission in Submission.objects.filter(
        status=Submission.Status.QUEUED, edit__status=Edit.Status.RUNNING
    ).filter(models.Q(retry_at__lt=stale) | models.Q(retry_at=None, edit__started_at__lt=stale)):
        if Submission.objects.filter(pk=submission.pk, status=Submission.Status.QUEUED).update(
            retry_at=now
        ):
            pipeline.run_submission.enqueue(submission.pk)
            counts["requeued_requests"] += 1
    # A request waits for a callback long after giving up: its chain of checks was lost.
    for submission in Submission.objects.filter(
        status=Submission.Status.RUNNING, lease_expires_at=None, submitted_at__lt=given_up
    ):
        pipeline.check_submission.enqueue(submission.pk, submission.task_id)
        counts["late_checks"] += 1
    # Every request ended, but the edit was not told (its worker died in between).
    for edit in Edit.objects.filter(status=Edit.Status.RUNNING, started_at__lt=stale).exclude(
        submissions__status__in=Edit.ACTIVE
    ):
        counts["settled"] += edit.settle()
    # A batch whose edits wait while there is room: an edit ended without releasing the next
    # (its worker died between settling it and releasing, say).
    for batch_id in (
        Batch.objects.filter(edits__status=Edit.Status.QUEUED, edits__enqueued_at=None)
        .order_by()
        .distinct()
        .values_list("pk", flat=True)
    ):
        counts["released"] += pipeline.release(batch_id)
    return counts


def sweep_orphans(older_than: timedelta) -> int:
    """Delete stored files no row refers to, once they are older than `older_than` (younger
    ones may belong to an edit whose transaction has not committed yet). They are left behind
    only when a process is killed between storing a file and committing its row."""
    referenced = set()
    for row in InputImage.objects.values_list("file", "preview"):
        referenced.update(name for name in row if name)
    for row in Edit.objects.values_list("mask", "pending_file"):
        referenced.update(name for name in row if name)
    for row in ResultImage.objects.values_list("file", "raw_file", "thumbnail", "preview"):
        referenced.update(name for name in row if name)
    cutoff = timezone.now() - older_than
    deleted = 0
    for name in storage.all_names():
        if name not in referenced and default_storage.get_modified_time(name) < cutoff:
            default_storage.delete(name)
            deleted += 1
    return deleted


def tidy_task_rows() -> dict[str, int]:
    """Close the queue rows of tasks whose worker died, and prune finished rows once old (with
    django-tasks-db's own command). Other backends keep their own records."""
    if settings.TASKS["default"]["BACKEND"] != "django_tasks_db.DatabaseBackend":
        return {}
    from django_tasks_db.models import DBTaskResult

    now = timezone.now()
    closed = DBTaskResult.objects.running().filter(started_at__lt=now - TASK_ROW_DEAD_AFTER)
    closed = closed.update(
        status=TaskResultStatus.FAILED,
        finished_at=now,
        exception_class_path="imageedits.edits.housekeeping.WorkerLost",
        traceback="The worker running this task stopped; the reaper took over its edit.",
    )
    kept_since = now - timedelta(days=TASK_ROWS_KEPT_DAYS)
    old = DBTaskResult.objects.finished().filter(finished_at__lte=kept_since).count()
    call_command(
        "prune_db_task_results", min_age_days=TASK_ROWS_KEPT_DAYS, queue_name="*", verbosity=0
    )
    return {"task_rows_closed": closed, "task_rows_deleted": old}


class WorkerLost(Exception):
    """What a closed row says its task ended with."""
