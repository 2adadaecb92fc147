"""Making edits: price them, store them with their inputs and upstream requests, and hand
them to the pipeline (pipeline.py), which runs them.

An edit asks for one or more candidates. A model that takes `n` (dall-e-2) gets one request for
all of them; any other model gets one request per candidate, sent side by side. Each request is
a Submission with its own state; the edit settles once none is under way.
"""

import logging
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from . import catalog, images, pipeline, storage, throttle, usage
from .models import Collection, Edit, InputImage, Submission

logger = logging.getLogger(__name__)


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


def submit(owner, new: NewEdit) -> Edit:
    """Create the edit if the person's limits and monthly budgets allow it (throttle.LimitReached,
    or its usage.BudgetExceeded, if not), counted and created in one transaction."""
    with transaction.atomic():
        throttle.hold_edit_limits(owner)
        usage.hold_budgets(owner, total_price(new.model, new.candidates))
        return create_edit(owner, new)


def create_edit(owner, new: NewEdit, batch=None) -> Edit:
    """Store the edit, its inputs and its requests in one transaction, and queue its run once
    committed; an edit of a batch is held instead, for pipeline.release to queue."""
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
                batch=batch,
            )
            if new.collection:
                edit.collections.add(new.collection)
            if mask:
                edit.mask = storage.save("masks", mask)
                stored.append(edit.mask.name)
                edit.save(update_fields=["mask"])
            for position, upload in enumerate(new.uploads):
                name = storage.save("inputs", upload)
                stored.append(name)
                preview = storage.save("previews", images.preview(upload.content))
                stored.append(preview)
                InputImage.objects.create(
                    edit=edit, position=position, file=name, preview=preview,
                    width=upload.width, height=upload.height,
                )  # fmt: skip
            for position, url in enumerate(new.urls, start=len(new.uploads)):
                InputImage.objects.create(edit=edit, position=position, url=url)
            if model.native_n:
                requests = [Submission(edit=edit, index=0, n=new.candidates)]
            else:
                requests = [Submission(edit=edit, index=i) for i in range(new.candidates)]
            Submission.objects.bulk_create(requests)
            if batch is None:
                transaction.on_commit(lambda: enqueue_start(edit))
    except BaseException:
        storage.delete(stored)  # the rows were rolled back: their files go too
        raise
    return edit


class NoInput(ValueError):
    """The edit has no image to run again (a batch's image that could not be used)."""


def run_again(edit: Edit) -> Edit:
    """A new edit with everything of `edit`: instruction, model, size, parameters, inputs, mask."""
    if not edit.inputs.exists():
        raise NoInput("This edit has no image to run again: its image could not be used.")
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
    return submit(edit.owner, new)


def stored_image(stored) -> images.EncodedImage:
    with stored.open("rb") as handle:
        return images.stored(handle)


def enqueue_start(edit: Edit) -> None:
    """Queue the edit's start once it is committed; an edit whose task cannot be queued fails
    visibly."""
    try:
        pipeline.start_edit.enqueue(edit.pk)
        Edit.objects.filter(pk=edit.pk).update(enqueued_at=timezone.now())
    except Exception:
        logger.exception("Could not queue edit %s", edit.pk)
        edit.mark_failed("enqueue_failed", "The edit could not be queued. Try again in a moment.")


def rerun_edit(edit: Edit) -> bool:
    """Run a failed edit again, every request of it from the start, if the person's limit of
    edits under way and their budgets allow it (throttle.LimitReached if not). An edit with no
    input (a batch's image that could not be used) has nothing to run."""
    if not edit.inputs.exists():
        return False
    with transaction.atomic():
        throttle.hold_edit_limits(edit.owner)
        usage.hold_budgets(edit.owner, edit.credits)
        if not edit.rerun():
            return False
        transaction.on_commit(lambda: enqueue_start(edit))
    return True
