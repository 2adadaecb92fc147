"""The steps of an edit, as plain functions: create, run, finish from an answer or a callback,
and check on an edit whose callback is late."""

import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from . import images, tasks, upstream
from .models import Edit, InputImage, ResultImage, storage_name

logger = logging.getLogger(__name__)

# How often to ask the task query endpoint once a callback is late.
CHECK_INTERVAL = timedelta(seconds=60)


@dataclass(frozen=True)
class NewEdit:
    prompt: str
    model: str
    size: str
    uploads: list[images.EncodedImage]
    urls: list[str]


def create_edit(owner, new: NewEdit) -> Edit:
    """Store the edit and its inputs in one transaction, and queue its run once committed."""
    stored: list[str] = []
    try:
        with transaction.atomic():
            edit = Edit.objects.create(
                owner=owner, prompt=new.prompt, model=new.model, size=new.size
            )
            position = 0
            for upload in new.uploads:
                name = _store("inputs", upload)
                stored.append(name)
                InputImage.objects.create(
                    edit=edit,
                    position=position,
                    file=name,
                    width=upload.width,
                    height=upload.height,
                )
                position += 1
            for url in new.urls:
                InputImage.objects.create(edit=edit, position=position, url=url)
                position += 1
            transaction.on_commit(lambda: _enqueue_run(edit))
    except BaseException:
        _delete_files(stored)  # the rows were rolled back: their files go too
        raise
    return edit


def _enqueue_run(edit: Edit) -> None:
    """Runs once the edit is committed; an edit whose task cannot be queued fails visibly."""
    try:
        tasks.run_edit.enqueue(edit.pk)
    except Exception:
        logger.exception("Could not queue edit %s", edit.pk)
        edit.mark_failed("enqueue_failed", "The edit could not be queued. Try again in a moment.")


def run_edit(edit_id: int) -> None:
    """The worker's part: send the edit, then either finish it or wait for its callback."""
    edit = Edit.objects.filter(pk=edit_id).first()
    if edit is None or not edit.mark_running():
        return  # deleted, or already taken by another run of this task
    try:
        request = _upstream_request(edit)
        if _use_callbacks():
            secret = secrets.token_urlsafe(32)
            edit.set_callback_secret(secret)
            request.callback_url = callback_url(edit, secret)
        answer = upstream.submit(request)
        if isinstance(answer, upstream.Submitted):
            edit.mark_submitted(answer.task_id, answer.trace_id)
            _schedule_check(edit, settings.CALLBACK_CHECK_AFTER)
            return
        finish(edit, answer)
    except upstream.UpstreamError as error:
        edit.mark_failed(error.code, error.message, error.trace_id)
    except Exception:
        logger.exception("Edit %s failed unexpectedly", edit.pk)
        edit.mark_failed("internal_error", "Something went wrong on our side. Try again.")
        raise


def handle_callback(edit: Edit, payload: dict) -> None:
    """The upstream's POST to our callback URL: finish the edit from it."""
    if not edit.is_active:
        return  # a second callback, or one for an edit already finished another way
    try:
        answer = upstream.parse_answer(payload)
    except upstream.UpstreamError as error:
        edit.mark_failed(error.code, error.message, error.trace_id)
        return
    finish(edit, answer)


def check_edit(edit_id: int) -> None:
    """An edit's callback is late: ask the task query endpoint, and give up eventually."""
    edit = Edit.objects.filter(pk=edit_id).first()
    if edit is None or not edit.is_active or not edit.upstream_task_id:
        return
    try:
        answer = upstream.retrieve_task(edit.upstream_task_id)
        if answer is not None:
            finish(edit, answer)
            return
    except upstream.UpstreamError as error:
        if not error.retryable:
            edit.mark_failed(error.code, error.message, error.trace_id)
            return
    except Exception:
        # Whatever broke (storage, database), the chain of checks must go on, or the edit
        # would stay running for good.
        logger.exception("Checking edit %s failed; checking again later", edit.pk)
    waited = timezone.now() - (edit.submitted_at or edit.created_at)
    if waited.total_seconds() >= settings.CALLBACK_GIVE_UP_AFTER:
        edit.mark_failed(
            "callback_timeout",
            "The image service never reported back on this edit. Try again.",
        )
    else:
        _schedule_check(edit, CHECK_INTERVAL.total_seconds())


def finish(edit: Edit, answer: upstream.EditAnswer) -> None:
    """Store every result image, then mark the edit succeeded, unless something else finished it
    first (then the files just stored are removed again)."""
    stored: list[str] = []
    try:
        results = []
        for position, data in enumerate(answer.images):
            try:
                image = images.reencode(upstream.result_bytes(data))
            except images.InvalidImage as error:
                raise upstream.MalformedAnswer(
                    "The image service sent a result that is not a readable image.",
                    code="bad_image_data",
                ) from error
            name = _store("results", image)
            stored.append(name)
            thumb = _store("thumbnails", images.thumbnail(image.content))
            stored.append(thumb)
            results.append(
                ResultImage(
                    edit=edit,
                    position=position,
                    file=name,
                    thumbnail=thumb,
                    width=image.width,
                    height=image.height,
                    revised_prompt=data.revised_prompt,
                )
            )
        with transaction.atomic():
            won = edit.mark_succeeded(answer.task_id, answer.trace_id, answer.elapsed)
            if won:
                ResultImage.objects.bulk_create(results)
        if not won:  # another callback or check finished the edit first
            _delete_files(stored)
    except upstream.UpstreamError as error:
        _delete_files(stored)
        edit.mark_failed(error.code, error.message, error.trace_id or answer.trace_id)
    except BaseException:
        _delete_files(stored)
        raise


def callback_url(edit: Edit, secret: str) -> str:
    path = reverse("edit-callback", args=[edit.pk, secret])
    return settings.PUBLIC_BASE_URL + path


def _use_callbacks() -> bool:
    return bool(settings.PUBLIC_BASE_URL) and upstream.supports_callbacks()


def _schedule_check(edit: Edit, after_seconds: float) -> None:
    run_after = timezone.now() + timedelta(seconds=after_seconds)
    tasks.check_edit.using(run_after=run_after).enqueue(edit.pk)


def _upstream_request(edit: Edit) -> upstream.EditRequest:
    request = upstream.EditRequest(model=edit.model, prompt=edit.prompt, size=edit.size)
    for item in edit.inputs.all():
        if item.url:
            request.images.append(item.url)
            continue
        with item.file.open("rb") as handle:
            content = handle.read()
        extension = item.file.name.rsplit(".", 1)[-1]
        request.images.append(
            upstream.InputFile(
                f"input-{item.position + 1}.{extension}",
                content,
                images.content_type_for(item.file.name),
            )
        )
    return request


def _store(kind: str, image: images.EncodedImage) -> str:
    return default_storage.save(storage_name(kind, image.extension), ContentFile(image.content))


def _delete_files(names: list[str]) -> None:
    for name in names:
        default_storage.delete(name)
