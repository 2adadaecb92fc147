"""The steps of an edit, as plain functions: create it, run its requests, finish each from an
answer or a callback, and check on a request whose callback is late.

An edit asks for one or more candidates. A model that takes `n` (dall-e-2) gets one request for
all of them; any other model gets one request per candidate, sent at the same time. Each request
is a Submission with its own state; the edit settles once none is under way.
"""

import logging
import random
import secrets
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connections, models, transaction
from django.tasks import TaskResultStatus
from django.urls import reverse
from django.utils import timezone

from . import catalog, images, tasks, upstream
from .models import Collection, Edit, InputImage, ResultImage, Submission, storage_name

logger = logging.getLogger(__name__)

# How often to ask the task query endpoint once a callback is late.
CHECK_INTERVAL = timedelta(seconds=60)
# When a callback arrives but the task query does not confirm it yet.
CONFIRM_AGAIN_AFTER = timedelta(seconds=5)
INTERNAL_ERROR = "Something went wrong on our side. Try again."


@dataclass(frozen=True)
class NewEdit:
    prompt: str
    model: str
    size: str
    uploads: list[images.EncodedImage]
    urls: list[str]
    params: dict[str, str] = field(default_factory=dict)
    candidates: int = 1
    mask: images.EncodedImage | None = None
    keep_unmasked: bool = False
    # The edit whose result this edit starts from ("edit this result").
    parent: Edit | None = None
    collection: Collection | None = None


def unit_price(model_name: str) -> Decimal | None:
    """Credits per result: the reference's price, or the one configured in MODEL_CREDITS."""
    value = settings.MODEL_CREDITS.get(model_name, catalog.MODELS[model_name].credits)
    return None if value is None else Decimal(str(value))


def total_price(model_name: str, candidates: int) -> Decimal | None:
    price = unit_price(model_name)
    return None if price is None else price * candidates


def create_edit(owner, new: NewEdit) -> Edit:
    """Store the edit, its inputs and its requests in one transaction, and queue its run once
    committed."""
    model = catalog.MODELS[new.model]
    mask = new.mask if model.takes_mask else None
    stored: list[str] = []
    try:
        with transaction.atomic():
            edit = Edit.objects.create(
                owner=owner,
                prompt=new.prompt,
                model=new.model,
                size=new.size,
                params=catalog.params_for(model, new.params),
                candidates=new.candidates,
                keep_unmasked=new.keep_unmasked and mask is not None,
                credits=total_price(new.model, new.candidates),
                parent=new.parent,
            )
            if new.collection:
                edit.collections.add(new.collection)
            if mask:
                edit.mask = _store("masks", mask)
                stored.append(edit.mask.name)
                edit.save(update_fields=["mask"])
            for position, upload in enumerate(new.uploads):
                name = _store("inputs", upload)
                stored.append(name)
                InputImage.objects.create(
                    edit=edit, position=position, file=name, width=upload.width,
                    height=upload.height,
                )  # fmt: skip
            for position, url in enumerate(new.urls, start=len(new.uploads)):
                InputImage.objects.create(edit=edit, position=position, url=url)
            if model.native_n:
                requests = [Submission(edit=edit, index=0, n=new.candidates)]
            else:
                requests = [Submission(edit=edit, index=i) for i in range(new.candidates)]
            Submission.objects.bulk_create(requests)
            transaction.on_commit(lambda: _enqueue_run(edit))
    except BaseException:
        _delete_files(stored)  # the rows were rolled back: their files go too
        raise
    return edit


def run_again(edit: Edit) -> Edit:
    """A new edit with everything of `edit`: instruction, model, size, parameters, inputs, mask."""
    uploads = [stored_image(item.file) for item in edit.inputs.all() if item.file]
    new = NewEdit(
        prompt=edit.prompt,
        model=edit.model,
        size=edit.size,
        uploads=uploads,
        urls=[item.url for item in edit.inputs.all() if item.url],
        params=dict(edit.params),
        candidates=edit.candidates,
        mask=stored_image(edit.mask) if edit.mask else None,
        keep_unmasked=edit.keep_unmasked,
        parent=edit.parent,
    )
    return create_edit(edit.owner, new)


def stored_image(stored) -> images.EncodedImage:
    return images.stored(_read(stored))


def _enqueue_run(edit: Edit) -> None:
    """Runs once the edit is committed; an edit whose task cannot be queued fails visibly."""
    try:
        tasks.run_edit.enqueue(edit.pk)
        Edit.objects.filter(pk=edit.pk).update(enqueued_at=timezone.now())
    except Exception:
        logger.exception("Could not queue edit %s", edit.pk)
        edit.mark_failed("enqueue_failed", "The edit could not be queued. Try again in a moment.")


def run_edit(edit_id: int) -> None:
    """The worker's part: send every request of the edit at once, then finish each from its
    answer or leave it to its callback."""
    edit = Edit.objects.filter(pk=edit_id).first()
    if edit is None or not edit.mark_running():
        return  # deleted, or already taken by another run of this task
    try:
        request = _upstream_request(edit)
    except upstream.UpstreamError as error:  # e.g. an input URL that can no longer be fetched
        edit.mark_failed(error.code, error.message)
        return
    except Exception:
        logger.exception("Edit %s could not be prepared", edit.pk)
        edit.mark_failed("internal_error", INTERNAL_ERROR)
        raise
    queued = list(edit.submissions.filter(status=Edit.Status.QUEUED))
    if len(queued) == 1:
        _run_submission(queued[0], request)
        return
    with ThreadPoolExecutor(max_workers=len(queued)) as pool:
        for submission in queued:
            pool.submit(_run_in_thread, submission, request)


def _run_in_thread(submission: Submission, request: upstream.EditRequest) -> None:
    try:
        _run_submission(submission, request)
    finally:
        connections.close_all()  # this thread's own connections


def retry_submission(submission_id: int) -> None:
    """Send a request again after a failure worth retrying (or a worker that died)."""
    submission = Submission.objects.select_related("edit").filter(pk=submission_id).first()
    if submission is None or submission.status != Submission.Status.QUEUED:
        return
    try:
        request = _upstream_request(submission.edit)
    except upstream.UpstreamError as error:
        fail(submission, error.code, error.message)
        return
    except Exception:
        logger.exception("Request %s could not be prepared", submission.pk)
        fail(submission, "internal_error", INTERNAL_ERROR)
        raise
    _run_submission(submission, request)


def rerun_edit(edit: Edit) -> bool:
    """Run a failed edit again, every request of it from the start."""
    if not edit.rerun():
        return False
    transaction.on_commit(lambda: _enqueue_run(edit))
    return True


def _run_submission(submission: Submission, request: upstream.EditRequest) -> None:
    if not submission.mark_running():
        return
    try:
        request = replace(request, n=submission.n)
        if _use_callbacks():
            secret = secrets.token_urlsafe(32)
            submission.set_callback_secret(secret)
            request = replace(request, callback_url=callback_url(submission, secret))
        answer = upstream.submit(request)
        if isinstance(answer, upstream.Submitted):
            submission.mark_submitted(answer.task_id, answer.trace_id)
            _schedule_check(submission, settings.CALLBACK_CHECK_AFTER)
            return
        finish(submission, answer)
    except upstream.UpstreamError as error:
        failed(submission, error)
    except Exception:
        logger.exception("Request %s failed unexpectedly", submission.pk)
        fail(submission, "internal_error", INTERNAL_ERROR)


def failed(submission: Submission, error: upstream.UpstreamError) -> None:
    """Send the request again later if the failure is worth it and tries remain; else fail."""
    if error.retryable and submission.tries < settings.UPSTREAM_ATTEMPTS:
        _retry_later(submission, error)
    else:
        fail(submission, error.code, error.message, error.trace_id)


def _retry_later(submission: Submission, error: upstream.UpstreamError) -> None:
    """Exponential backoff with jitter, and never sooner than the upstream's Retry-After."""
    backoff = settings.RETRY_BASE_DELAY * 2 ** max(submission.tries - 1, 0)
    delay = min(backoff, settings.RETRY_MAX_DELAY) * random.uniform(0.5, 1.5)
    retry_after = getattr(error, "retry_after", None)
    if retry_after is not None:
        delay = max(delay, retry_after)
    run_after = timezone.now() + timedelta(seconds=delay)
    if submission.mark_retrying(error.code, error.message, run_after):
        tasks.retry_submission.using(run_after=run_after).enqueue(submission.pk)


def handle_callback(submission: Submission, payload: dict) -> None:
    """The upstream's POST to our callback URL. It is only a hint: the result is taken from the
    task record, so a forged or garbled callback changes nothing. (Only the Ace flavour calls
    back, and it has the task query.)"""
    if not submission.is_active:
        return  # a second callback, or one for a request already finished another way
    # The callback may overtake the worker recording the task id: then use the payload's.
    task_id = submission.task_id or str(payload.get("task_id") or "")
    if task_id:
        _confirm(submission, task_id)
    else:
        _schedule_check(submission, CONFIRM_AGAIN_AFTER.total_seconds())


def _confirm(submission: Submission, task_id: str) -> None:
    """Finish or fail the request from its task record, or look again soon."""
    try:
        answer = upstream.retrieve_task(task_id)
    except upstream.TaskFailed as failure:
        failed(submission, failure.error)
        return
    except upstream.UpstreamError:  # not known yet, or the query failed: look again soon
        answer = None
    if answer is None:
        _schedule_check(submission, CONFIRM_AGAIN_AFTER.total_seconds())
    else:
        finish(submission, answer)


def check_submission(submission_id: int, task_id: str = "") -> None:
    """A request's callback is late: ask the task query endpoint, and give up eventually.

    `task_id` is the task this check was scheduled for: after a re-run it is not the request's
    task any more, and the check has nothing to do."""
    submission = Submission.objects.filter(pk=submission_id).first()
    if submission is None or not submission.is_active or not submission.task_id:
        return
    if task_id and task_id != submission.task_id:
        return
    try:
        answer = upstream.retrieve_task(submission.task_id)
        if answer is not None:
            finish(submission, answer)
            return
    except upstream.TaskFailed as failure:
        failed(submission, failure.error)
        return
    except upstream.TaskUnknown as error:
        if (timezone.now() - submission.submitted_at) < CONFIRM_AGAIN_AFTER * 3:
            _schedule_check(submission, CONFIRM_AGAIN_AFTER.total_seconds())
            return  # a task record can take a moment to appear
        fail(submission, error.code, error.message, error.trace_id)
        return
    except upstream.UpstreamError as error:
        if not error.retryable:
            fail(submission, error.code, error.message, error.trace_id)
            return
    except Exception:
        # Whatever broke (storage, database), the chain of checks must go on, or the edit
        # would stay running for good.
        logger.exception("Checking request %s failed; checking again later", submission.pk)
    waited = timezone.now() - (submission.submitted_at or submission.edit.created_at)
    if waited.total_seconds() >= settings.CALLBACK_GIVE_UP_AFTER:
        fail(
            submission,
            "callback_timeout",
            "The image service never reported back on this edit. Try again.",
        )
    else:
        _schedule_check(submission, CHECK_INTERVAL.total_seconds())


def reap() -> dict[str, int]:
    """Recover what a killed worker or a lost task left behind; safe to run at any time, by
    any number of processes, because every step is a conditional update or an idempotent
    task. Returns how many requests or edits each step touched."""
    now = timezone.now()
    stale = now - timedelta(seconds=settings.REAP_STALE_AFTER)
    given_up = stale - timedelta(seconds=settings.CALLBACK_GIVE_UP_AFTER)
    counts = {
        "worker_lost": 0, "requeued_edits": 0, "requeued_requests": 0, "late_checks": 0,
        "settled": 0,
    }  # fmt: skip
    # A worker died waiting for the upstream: send the request again, or give up.
    for submission in Submission.objects.filter(
        status=Submission.Status.RUNNING, lease_expires_at__lt=now
    ).select_related("edit"):
        lost = upstream.ServiceUnreachable(
            "The worker running this edit stopped before the image service answered.",
            code="worker_lost",
        )
        failed(submission, lost)
        counts["worker_lost"] += 1
    # An edit's run never started: its task was lost between the commit and the queue.
    for edit in Edit.objects.filter(status=Edit.Status.QUEUED).filter(
        models.Q(enqueued_at__lt=stale) | models.Q(enqueued_at=None, created_at__lt=stale)
    ):
        _enqueue_run(edit)
        counts["requeued_edits"] += 1
    # A request waits in the queue of a running edit, but its task was lost.
    for submission in Submission.objects.filter(
        status=Submission.Status.QUEUED, edit__status=Edit.Status.RUNNING
    ).filter(models.Q(retry_at__lt=stale) | models.Q(retry_at=None, edit__started_at__lt=stale)):
        if Submission.objects.filter(pk=submission.pk, status=Submission.Status.QUEUED).update(
            retry_at=now
        ):
            tasks.retry_submission.enqueue(submission.pk)
            counts["requeued_requests"] += 1
    # A request waits for a callback long after giving up: its chain of checks was lost.
    for submission in Submission.objects.filter(
        status=Submission.Status.RUNNING, lease_expires_at=None, submitted_at__lt=given_up
    ):
        check_submission(submission.pk)
        counts["late_checks"] += 1
    # Every request ended, but the edit was not told (its worker died in between).
    for edit in Edit.objects.filter(status=Edit.Status.RUNNING, started_at__lt=stale).exclude(
        submissions__status__in=Edit.ACTIVE
    ):
        counts["settled"] += edit.settle()
    return counts


STORED_KINDS = ("inputs", "results", "thumbnails", "masks")


def sweep_orphans(older_than: timedelta) -> int:
    """Delete stored files no row refers to, once they are older than `older_than` (younger
    ones may belong to an edit whose transaction has not committed yet). They are left behind
    only when a process is killed between storing a file and committing its row."""
    referenced = {name for name in InputImage.objects.values_list("file", flat=True) if name}
    referenced.update(name for name in Edit.objects.values_list("mask", flat=True) if name)
    for row in ResultImage.objects.values_list("file", "raw_file", "thumbnail"):
        referenced.update(name for name in row if name)
    cutoff = timezone.now() - older_than
    deleted = 0
    for name in _stored_names():
        if name not in referenced and default_storage.get_modified_time(name) < cutoff:
            default_storage.delete(name)
            deleted += 1
    return deleted


# django-tasks-db keeps a row for every task for ever, and the row of a task whose worker was
# killed stays RUNNING for ever (the reaper recovers the edit, not the row). No task runs for a
# day: every upstream request has a total deadline.
TASK_ROWS_KEPT = timedelta(days=14)
TASK_ROW_DEAD_AFTER = timedelta(days=1)


def tidy_task_rows() -> dict[str, int]:
    """Close the queue rows of tasks whose worker died, and delete finished rows once old."""
    if settings.TASKS["default"]["BACKEND"] != "django_tasks_db.DatabaseBackend":
        return {}
    from django_tasks_db.models import DBTaskResult

    now = timezone.now()
    closed = DBTaskResult.objects.running().filter(started_at__lt=now - TASK_ROW_DEAD_AFTER)
    closed = closed.update(
        status=TaskResultStatus.FAILED,
        finished_at=now,
        exception_class_path="imageedits.edits.services.WorkerLost",
        traceback="The worker running this task stopped; the reaper took over its edit.",
    )
    old = DBTaskResult.objects.finished().filter(finished_at__lt=now - TASK_ROWS_KEPT)
    deleted, _ = old.delete()
    return {"task_rows_closed": closed, "task_rows_deleted": deleted}


def _stored_names(folder: str = ""):
    if not folder:
        for kind in STORED_KINDS:
            if default_storage.exists(kind):
                yield from _stored_names(kind)
        return
    folders, files = default_storage.listdir(folder)
    for name in files:
        yield f"{folder}/{name}"
    for sub in folders:
        yield from _stored_names(f"{folder}/{sub}")


def fail(submission: Submission, code: str, message: str, trace_id: str = "") -> None:
    submission.mark_failed(code, message, trace_id)
    submission.edit.settle()


def finish(submission: Submission, answer: upstream.EditAnswer) -> None:
    """Store every result image of one request, then mark it succeeded, unless something else
    finished it first (then the files just stored are removed again)."""
    edit = submission.edit
    stored: list[str] = []
    try:
        keep = _KeepUnmasked.for_edit(edit)
        results = []
        for offset, data in enumerate(answer.images[: submission.n]):
            try:
                raw = images.reencode(upstream.result_bytes(data))
                shown = keep.apply(raw) if keep else raw
            except images.InvalidImage as error:
                raise upstream.MalformedAnswer(
                    "The image service sent a result that is not a readable image.",
                    code="bad_image_data",
                ) from error
            name = _store("results", shown)
            stored.append(name)
            raw_name = ""
            if keep:
                raw_name = _store("results", raw)
                stored.append(raw_name)
            thumb = _store("thumbnails", images.thumbnail(shown.content))
            stored.append(thumb)
            results.append(
                ResultImage(
                    edit=edit,
                    submission=submission,
                    position=submission.first_position + offset,
                    file=name,
                    raw_file=raw_name,
                    thumbnail=thumb,
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
        if not won:  # another callback or check finished this request first
            _delete_files(stored)
    except upstream.UpstreamError as error:
        _delete_files(stored)
        error.trace_id = error.trace_id or answer.trace_id
        failed(submission, error)  # e.g. a result download that timed out: send it again
        return
    except BaseException:
        _delete_files(stored)
        raise
    edit.settle()


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
        return cls(_read(first.file), _read(edit.mask))

    def apply(self, result: images.EncodedImage) -> images.EncodedImage:
        return images.keep_outside_mask(result, self.original, self.mask)


def callback_url(submission: Submission, secret: str) -> str:
    path = reverse("edit-callback", args=[submission.pk, secret])
    return settings.PUBLIC_BASE_URL + path


def _use_callbacks() -> bool:
    return bool(settings.PUBLIC_BASE_URL) and upstream.supports_callbacks()


def _schedule_check(submission: Submission, after_seconds: float) -> None:
    run_after = timezone.now() + timedelta(seconds=after_seconds)
    tasks.check_submission.using(run_after=run_after).enqueue(submission.pk, submission.task_id)


def _upstream_request(edit: Edit) -> upstream.EditRequest:
    request = upstream.EditRequest(
        model=edit.model, prompt=edit.prompt, size=edit.size, params=dict(edit.params)
    )
    for item in edit.inputs.all():
        request.images.append(item.url or _input_file(f"input-{item.position + 1}", item.file))
    if edit.mask:
        request.mask = _input_file("mask", edit.mask)
    urls = [image for image in request.images if isinstance(image, str)]
    has_files = len(urls) < len(request.images)
    if urls and not upstream.urls_pass_through(edit.model, has_files, request.mask is not None):
        # Once for all the candidates, not once in each of their threads.
        request = upstream.download_inputs(request)
    return request


def _input_file(stem: str, stored) -> upstream.InputFile:
    extension = stored.name.rsplit(".", 1)[-1]
    return upstream.InputFile(
        f"{stem}.{extension}", _read(stored), images.content_type_for(stored.name)
    )


def _read(stored) -> bytes:
    with stored.open("rb") as handle:
        return handle.read()


def _store(kind: str, image: images.EncodedImage) -> str:
    return default_storage.save(storage_name(kind, image.extension), ContentFile(image.content))


def _delete_files(names: list[str]) -> None:
    for name in names:
        default_storage.delete(name)
