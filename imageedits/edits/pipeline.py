"""An edit's whole life after it is created, as three tasks that take ids only.

    services.create_edit ──on commit──▶ start_edit(edit)
    start_edit        marks the edit running, queues one run_submission per upstream request
    run_submission    sends the request, then
                        · an answer came: stores its results (finish) and settles the edit
                        · the upstream will call back: schedules a check_submission, returns
                        · a failure worth retrying: queues itself again with run_after (backoff,
                          Retry-After), up to UPSTREAM_ATTEMPTS tries; else fails the request
    check_submission  reads the upstream's task record, then finishes, fails, or looks again
                      later; queued by the callback view the moment a callback comes, and
                      scheduled after CALLBACK_CHECK_AFTER in case it never does

An edit of a batch (models.Batch) is created held, once its image is prepared
(batches.prepare_image); release() queues its start once fewer than
BATCH_CONCURRENCY of the batch are under way, and is called again whenever one of them ends.

A worker that dies, or whose RQ job runs out of time, leaves its request running past its lease;
the reaper (housekeeping.py) hands it to recover_lost, which reads an answer already given (and
paid for) from the task record, or sends the request again as a try of its own.

The queue is the only way an edit moves forward: views and the reaper only queue these tasks.
Every state change is a conditional update on the row (models.StateMachine), so a task that
runs twice, late, or after its edit was deleted does nothing.
"""

import logging
import random
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta
from functools import partial

from django.conf import settings
from django.db import transaction
from django.tasks import task
from django.urls import reverse
from django.utils import timezone

from . import images, storage, upstream
from .models import ACTIVE, PREPARING, Batch, Edit, ResultImage, Submission

try:  # RQ stops a job that outlives its timeout by raising this inside it.
    from rq.timeouts import JobTimeoutException as JobTimedOut
except ImportError:  # without RQ nothing stops a job early

    class JobTimedOut(Exception):
        pass


logger = logging.getLogger(__name__)

# How often to read the task record again while the upstream is still working.
CHECK_INTERVAL = timedelta(seconds=60)
# After a callback the task record may lag a moment behind it.
CONFIRM_AGAIN_AFTER = timedelta(seconds=5)
INTERNAL_ERROR = "Something went wrong on our side. Try again."


@task
def start_edit(edit_id: int) -> None:
    """Mark the edit running and queue each of its requests; they run side by side."""
    edit = Edit.objects.filter(pk=edit_id).first()
    if edit is None or not edit.mark_running():
        return  # deleted, or already started by another run of this task
    for submission_id in edit.submissions.filter(status=Submission.Status.QUEUED).values_list(
        "pk", flat=True
    ):
        run_submission.enqueue(submission_id)


@task
def run_submission(submission_id: int) -> None:
    """Send one request to the upstream and deal with whatever comes back."""
    submission = Submission.objects.select_related("edit").filter(pk=submission_id).first()
    if submission is None or not submission.mark_running():
        return  # deleted, finished, or taken by another run of this task
    try:
        answer = upstream.submit(_upstream_request(submission))
        if isinstance(answer, upstream.Submitted):
            submission.mark_submitted(answer.task_id, answer.trace_id)
            _check_later(submission, settings.CALLBACK_CHECK_AFTER)
            return
        submission.mark_answered(answer.task_id, answer.trace_id)
        finish(submission, answer)
    except upstream.UpstreamError as error:
        _retry_or_fail(submission, error)
    except JobTimedOut:
        recover_lost(submission)  # as if the worker had died; nothing was stored
        raise
    except Exception:
        logger.exception("Request %s failed unexpectedly", submission.pk)
        _fail(submission, "internal_error", INTERNAL_ERROR)


@task
def check_submission(submission_id: int, task_id: str = "") -> None:
    """Read the request's task record: finish, fail, or look again later.

    `task_id` is the task this check was queued for ("" for whatever task the request has):
    after a "Try again" the old task's checks find a different one and do nothing."""
    submission = Submission.objects.select_related("edit").filter(pk=submission_id).first()
    if submission is None or not submission.is_active:
        return
    if task_id and task_id != submission.task_id:
        return
    if not submission.task_id:  # a callback overtook the worker recording the task id
        _check_later(submission, CONFIRM_AGAIN_AFTER.total_seconds())
        return
    waited = timezone.now() - (submission.submitted_at or submission.started_at or timezone.now())
    try:
        answer = upstream.retrieve_task(submission.task_id)
        if answer is not None:
            finish(submission, answer)
            return
    except upstream.TaskFailed as failure:
        _retry_or_fail(submission, failure.error)
        return
    except upstream.TaskUnknown as error:
        if waited < CONFIRM_AGAIN_AFTER * 3:
            _check_later(submission, CONFIRM_AGAIN_AFTER.total_seconds())
        else:  # the upstream lost it: send the request again
            _retry_or_fail(submission, error)
        return
    except upstream.UpstreamError as error:
        if not error.retryable:
            _fail(submission, error.code, error.message, error.trace_id)
            return
    except Exception:
        # Whatever broke (storage, database), the checks must go on, or the edit would stay
        # running for good.
        logger.exception("Checking request %s failed; checking again later", submission.pk)
    if waited.total_seconds() >= settings.CALLBACK_GIVE_UP_AFTER:
        message = "The image service never reported back on this edit. Try again."
        _fail(submission, "callback_timeout", message)
    elif _called_back_lately(submission):  # the record lags a moment behind its callback
        _check_later(submission, CONFIRM_AGAIN_AFTER.total_seconds())
    else:
        _check_later(submission, CHECK_INTERVAL.total_seconds())


def _called_back_lately(submission: Submission) -> bool:
    called = submission.callback_received_at
    return called is not None and timezone.now() - called < CONFIRM_AGAIN_AFTER * 6


# --- Recovering -------------------------------------------------------------------------------


def recover_lost(submission: Submission) -> None:
    """The worker running this request stopped (killed, or its job timed out).

    If the upstream had already answered, the answer is read from its task record rather than
    paid for again; otherwise the request is sent again, as a try of its own."""
    if submission.task_id and upstream.supports_callbacks():
        if submission.mark_submitted(submission.task_id, submission.trace_id):
            check_submission.enqueue(submission.pk, submission.task_id)
        return
    lost = upstream.ServiceUnreachable(
        "The worker running this edit stopped before the image service answered.",
        code="worker_lost",
    )
    _retry_or_fail(submission, lost)


# --- Ending a request -------------------------------------------------------------------------


def _retry_or_fail(submission: Submission, error: upstream.UpstreamError) -> None:
    """Queue the request again later if the failure is worth it and tries remain; else fail."""
    if not (error.retryable and submission.tries < settings.UPSTREAM_ATTEMPTS):
        _fail(submission, error.code, error.message, error.trace_id)
        return
    # Exponential backoff with jitter, and never sooner than the upstream's Retry-After.
    backoff = settings.RETRY_BASE_DELAY * 2 ** max(submission.tries - 1, 0)
    delay = min(backoff, settings.RETRY_MAX_DELAY) * random.uniform(0.5, 1.5)
    retry_after = getattr(error, "retry_after", None)
    if retry_after is not None:
        delay = max(delay, retry_after)
    run_after = timezone.now() + timedelta(seconds=delay)
    if submission.mark_retrying(error.code, error.message, run_after):
        run_submission.using(run_after=run_after).enqueue(submission.pk)


def _fail(submission: Submission, code: str, message: str, trace_id: str = "") -> None:
    submission.mark_failed(code, message, trace_id)
    _settle(submission.edit)


def _settle(edit: Edit) -> None:
    """End the edit if none of its requests is under way; an edit of a batch that ends makes
    room for the batch's next one."""
    if edit.settle() and edit.batch_id:
        release(edit.batch_id)


def release(batch_id: int) -> int:
    """Queue the start of the batch's next held edits, so that at most BATCH_CONCURRENCY of
    them are under way; returns how many were released. The batch's row is locked, so two
    edits ending at once cannot both fill the same free place."""
    with transaction.atomic():
        batch = Batch.objects.select_for_update().filter(pk=batch_id).first()
        if batch is None:
            return 0
        # Under way: released and not ended (an edit being prepared is not released yet).
        released = batch.edits.filter(status__in=ACTIVE).exclude(enqueued_at=None)
        released = released.exclude(PREPARING)
        free = settings.BATCH_CONCURRENCY - released.count()
        if free <= 0:
            return 0
        edit_ids = list(batch.held().order_by("pk").values_list("pk", flat=True)[:free])
        # Marked as queued now: should the task be lost, the reaper queues it again.
        Edit.objects.filter(pk__in=edit_ids).update(enqueued_at=timezone.now())
        for edit_id in edit_ids:
            transaction.on_commit(partial(start_edit.enqueue, edit_id))
    return len(edit_ids)


def finish(submission: Submission, answer: upstream.EditAnswer) -> None:
    """Store every result image of one answer, then mark the request succeeded, unless
    something else finished it first (then the files just stored are removed again)."""
    edit = submission.edit
    stored: list[str] = []
    downloads_end = time.monotonic() + settings.RESULT_DOWNLOAD_TIMEOUT
    try:
        keep = _KeepUnmasked.for_edit(edit)
        results = []
        for offset, data in enumerate(answer.images[: submission.n]):
            try:
                raw, thumbnail, preview = images.reencode_with_previews(
                    upstream.result_bytes(data, downloads_end)
                )
                if keep:  # the previews show what the page shows
                    shown = keep.apply(raw)
                    thumbnail, preview = (
                        images.thumbnail(shown.content),
                        images.preview(shown.content),
                    )
                else:
                    shown = raw
            except images.InvalidImage as error:
                raise upstream.MalformedAnswer(
                    "The image service sent a result that is not a readable image.",
                    code="bad_image_data",
                ) from error
            name = storage.save("results", shown)
            stored.append(name)
            raw_name = ""
            if keep:
                raw_name = storage.save("results", raw)
                stored.append(raw_name)
            thumbnail_name = storage.save("thumbnails", thumbnail)
            stored.append(thumbnail_name)
            preview_name = storage.save("previews", preview)
            stored.append(preview_name)
            results.append(
                ResultImage(
                    edit=edit,
                    submission=submission,
                    position=submission.first_position + offset,
                    file=name,
                    raw_file=raw_name,
                    thumbnail=thumbnail_name,
                    preview=preview_name,
                    width=shown.width,
                    height=shown.height,
                    revised_prompt=data.revised_prompt,
                )  # fmt: skip
            )
        with transaction.atomic():
            won = submission.mark_succeeded(
                answer.task_id, answer.trace_id, answer.elapsed, answer.reported
            )
            if won:
                ResultImage.objects.bulk_create(results)
        if not won:  # another check or a second run of this task finished the request first
            storage.delete(stored)
    except upstream.UpstreamError as error:
        storage.delete(stored)
        error.trace_id = error.trace_id or answer.trace_id
        _retry_or_fail(submission, error)  # e.g. a result download that timed out
        return
    except BaseException:
        storage.delete(stored)
        raise
    _settle(edit)


@dataclass(frozen=True)
class _KeepUnmasked:
    """The first input and the mask, to put the original's pixels back outside the mask."""

    original: bytes
    mask: bytes

    @classmethod
    def for_edit(cls, edit: Edit) -> "_KeepUnmasked | None":
        first = edit.inputs.filter(position=0).exclude(file="").first()
        if not (edit.keep_unmasked and edit.mask and first):
            return None
        return cls(storage.read(first.file), storage.read(edit.mask))

    def apply(self, result: images.EncodedImage) -> images.EncodedImage:
        return images.keep_outside_mask(result, self.original, self.mask)


# --- Building the request ---------------------------------------------------------------------


def _upstream_request(submission: Submission) -> upstream.EditRequest:
    """The request for one Submission: the edit's inputs as stored (image URLs were checked
    when the edit was created, and kept as URLs only where the upstream takes them)."""
    edit = submission.edit
    request = upstream.EditRequest(
        model=edit.model, prompt=edit.prompt, size=edit.size, params=dict(edit.params),
        n=submission.n,
    )  # fmt: skip
    for item in edit.inputs.all():
        request.images.append(item.url or _input_file(f"input-{item.position + 1}", item.file))
    if edit.mask:
        request.mask = _input_file("mask", edit.mask)
    if settings.PUBLIC_BASE_URL and upstream.supports_callbacks():
        secret = secrets.token_urlsafe(32)
        submission.set_callback_secret(secret)
        path = reverse("edit-callback", args=[submission.pk, secret])
        request.callback_url = settings.PUBLIC_BASE_URL + path
    return request


def _check_later(submission: Submission, after_seconds: float) -> None:
    run_after = timezone.now() + timedelta(seconds=after_seconds)
    check_submission.using(run_after=run_after).enqueue(submission.pk, submission.task_id)


def _input_file(stem: str, stored) -> upstream.InputFile:
    extension = stored.name.rsplit(".", 1)[-1]
    return upstream.InputFile(
        f"{stem}.{extension}", storage.read(stored), images.content_type_for(stored.name)
    )
