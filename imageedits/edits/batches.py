"""Batches and comparisons: many edits made in one go, grouped by a models.Batch.

A batch is one instruction, model and settings over many images (files, a ZIP or URLs), an Edit
for each image. A comparison is one image and instruction over several models, an Edit for each
model with the model's defaults. Either way the edits are created held (a batch's once its
image is read, by the task prepare_image, after the request) and the pipeline releases them a
few at a time (pipeline.release, BATCH_CONCURRENCY); the person's limits count
the whole group as one edit (throttle), and their budgets are checked for the whole group.
"""

import io
import logging
import posixpath
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from functools import partial

from django import forms
from django.conf import settings
from django.db import models, transaction
from django.tasks import task
from django.template.defaultfilters import filesizeformat
from django.utils import timezone
from django.utils.text import slugify

from . import catalog, fetch, images, pipeline, services, storage, throttle, usage
from .forms import fitted_input
from .models import ACTIVE, PREPARING, Batch, Edit, InputImage, Status

logger = logging.getLogger(__name__)

# All the images of one batch together, from their headers: each is then decoded by a task,
# and decoding costs CPU by the pixel (200 photos of 5 megapixels).
BATCH_MAX_PIXELS = 1_000_000_000
# Enough of a ZIP member to read an image's width and height from its header.
HEADER_BYTES = 64 * 1024


class BatchRefused(ValueError):
    """The batch's images cannot be used; the message says why, naming the image."""


@dataclass(frozen=True)
class NamedImage:
    name: str
    image: images.EncodedImage


@dataclass(frozen=True)
class Settings:
    """What every edit of a batch asks for."""

    prompt: str
    model: str
    size: str
    params: dict
    candidates: int


# --- Taking a batch's images in ------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """One image of a batch as it was given, not yet read: an uploaded file, an entry of the
    ZIP, or a URL. Its name is the file's, the entry's or the URL's last part."""

    name: str
    upload: object = None
    entry: tuple[zipfile.ZipFile, zipfile.ZipInfo] | None = None
    url: str = ""

    def open(self):
        """Its bytes, as a file (a ZIP entry read now, never past what it declares)."""
        if self.entry:
            return _zip_read(*self.entry)
        return self.upload


def collect_images(uploads: list, archive, urls: list[str]) -> list[Source]:
    """Every image of a batch, as given: uploaded files, the images in a ZIP, then the URLs.
    Only what needs no decoding is checked here, in the request, every refusal at once: the
    count, each image's bytes (a ZIP's from its directory), and the pixels of all of them from
    their headers. Decoding, fitting to the model and fetching are prepare_image's, later."""
    opened, members = _zip_members(archive) if archive else (None, [])
    count = len(uploads) + len(members) + len(urls)
    if count == 0:
        raise BatchRefused("Add at least one image: files, a ZIP of images, or URLs.")
    if count > settings.BATCH_MAX_IMAGES:
        raise BatchRefused(
            f"A batch holds at most {settings.BATCH_MAX_IMAGES} images; you gave {count}."
        )
    for upload in uploads:
        _check_bytes(upload.name, upload.size)
    sized = [header_size(upload.file) for upload in uploads]
    sized += [_zip_header_size(opened, info) for _, info in members]
    pixels = sum(width * height for width, height in sized)
    if pixels > BATCH_MAX_PIXELS:
        raise BatchRefused(
            f"These images have {pixels / 1_000_000:,.0f} megapixels in all; a batch takes at "
            f"most {BATCH_MAX_PIXELS // 1_000_000:,}. Send fewer or smaller ones."
        )
    sources = [Source(upload.name, upload=upload.file) for upload in uploads]
    sources += [Source(name, entry=(opened, info)) for name, info in members]
    sources += [Source(_url_name(url), url=url) for url in urls]
    return sources


def read_one(upload, url: str) -> NamedImage:
    """A comparison's image: the uploaded file decoded, or the image at the URL fetched."""
    if upload:
        _check_bytes(upload.name, upload.size)
        return _decoded(upload.name, upload.file, None)
    try:
        return NamedImage(_url_name(url), fetch.fetch_image(url))
    except fetch.FetchRefused as error:
        raise BatchRefused(f"“{url[:80]}” cannot be used: {error}") from error


def _url_name(url: str) -> str:
    return posixpath.basename(url.split("?", 1)[0].rstrip("/"))[:200] or url[:200]


def header_size(file) -> tuple[int, int]:
    return images.header_size(file) or (0, 0)  # not an image: decoding says so by name


def _check_bytes(name: str, size: int) -> None:
    if size > settings.EDIT_MAX_UPLOAD_BYTES:
        raise BatchRefused(
            f"“{name[:80]}” is {filesizeformat(size)}; the limit is "
            f"{filesizeformat(settings.EDIT_MAX_UPLOAD_BYTES)} per image."
        )


def _decoded(name: str, data, model: catalog.ImageModel | None) -> NamedImage:
    """The image decoded and re-encoded, and made fit for `model` if one is given."""
    try:
        image = images.reencode(data, max_pixels=images.EDIT_MAX_PIXELS)
    except images.InvalidImage as error:
        raise BatchRefused(f"“{name[:80]}” cannot be used: {error}") from error
    return NamedImage(name, _fitted(model, image, name) if model else image)


def _fetched(name: str, url: str, model: catalog.ImageModel) -> NamedImage:
    """The image at the URL, fetched with a budget of its own (time, bytes, pixels): a batch
    of many URLs does not share one deadline."""
    try:
        image = fetch.fetch_image(url, fetch.Budget())
    except fetch.FetchRefused as error:
        raise BatchRefused(f"“{url[:80]}” cannot be used: {error}") from error
    return NamedImage(name, _fitted(model, image, name))


def _fitted(model: catalog.ImageModel, image: images.EncodedImage, name: str):
    try:
        return fitted_input(model, image, name[:80])
    except forms.ValidationError as error:
        raise BatchRefused(error.messages[0]) from error


def _zip_members(archive) -> tuple[zipfile.ZipFile, list[tuple[str, zipfile.ZipInfo]]]:
    """The opened ZIP and its files as (name, entry), judged by what its directory declares
    before anything is read: names that climb out of a folder or start at the root, encrypted
    entries, more bytes than an image or the whole batch may have. Folders and the metadata
    macOS adds (__MACOSX/, dot files) are passed over. Nothing is ever written to disk."""
    try:
        opened = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as error:
        raise BatchRefused(f"“{archive.name[:80]}” is not a ZIP file that can be read.") from error
    members, declared = [], 0
    for info in opened.infolist():
        name = info.filename.replace("\\", "/")
        parts = name.split("/")
        if name.startswith("/") or ".." in parts or ":" in parts[0]:
            raise BatchRefused(f"The ZIP holds a file with an unsafe name, “{name[:80]}”.")
        if info.is_dir() or parts[0] == "__MACOSX" or parts[-1].startswith("."):
            continue
        if info.flag_bits & 0x1:
            raise BatchRefused(f"“{name[:80]}” in the ZIP is encrypted; send it unencrypted.")
        _check_bytes(name, info.file_size)
        declared += info.file_size
        if declared > settings.BATCH_MAX_REQUEST_BYTES:
            raise BatchRefused(
                "The ZIP's images add up to more than "
                f"{filesizeformat(settings.BATCH_MAX_REQUEST_BYTES)} once unpacked."
            )
        members.append((name, info))
    return opened, members


def _zip_read(opened, info: zipfile.ZipInfo, limit: int | None = None) -> io.BytesIO:
    """One ZIP entry's bytes, never more than it declares (zipfile stops there, and a
    mismatched checksum or length raises): a bomb that lies about its size is cut short."""
    try:
        with opened.open(info) as member:
            data = member.read(info.file_size if limit is None else min(limit, info.file_size))
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, ValueError) as error:
        name = info.filename[:80]
        raise BatchRefused(f"“{name}” in the ZIP cannot be read: it is damaged.") from error
    return io.BytesIO(data)


def _zip_header_size(opened, info: zipfile.ZipInfo) -> tuple[int, int]:
    return header_size(_zip_read(opened, info, limit=HEADER_BYTES))


# --- Starting ----------------------------------------------------------------------------------


def batch_cost(model_name: str, candidates: int, count: int) -> Decimal | None:
    """What a batch costs: images x candidates x the model's unit price."""
    price = services.total_price(model_name, candidates)
    return None if price is None else price * count


def start_batch(owner, wanted: Settings, sources: list[Source]) -> Batch:
    """Create the batch and an edit for each image, if the person's limits (the batch counts
    as one edit) and budgets (its whole cost) allow it: throttle.LimitReached or
    usage.BudgetExceeded if not. Each image is stored as it came and its edit waits for it
    (Edit.pending_file, Edit.pending_url) while prepare_image reads it, after the commit. If
    anything fails on the way, nothing is kept: no row, no stored file."""
    cost = batch_cost(wanted.model, wanted.candidates, len(sources))
    what = f"This batch of {len(sources)} edits"
    stored: list[str] = []
    try:
        with transaction.atomic():
            throttle.hold_edit_limits(owner)
            usage.hold_budgets(owner, cost, what)
            batch = Batch.objects.create(owner=owner, kind=Batch.Kind.BATCH, prompt=wanted.prompt)
            for source in sources:
                new = services.NewEdit(
                    prompt=wanted.prompt, model=wanted.model, size=wanted.size, uploads=[],
                    urls=[], params=wanted.params, candidates=wanted.candidates,
                )  # fmt: skip
                edit = services.create_edit(owner, new, batch=batch)
                pending_file = "" if source.url else storage.save_upload(source.open())
                if pending_file:
                    stored.append(pending_file)
                # Queued now: should the task be lost, the reaper queues it again.
                Edit.objects.filter(pk=edit.pk).update(
                    batch_name=source.name[:200], pending_file=pending_file,
                    pending_url=source.url, enqueued_at=timezone.now(),
                )  # fmt: skip
                transaction.on_commit(partial(prepare_image.enqueue, edit.pk))
    except BaseException:
        storage.delete(stored)  # the rows were rolled back: their files go too
        raise
    return batch


# An image of a batch that cannot be used: its edit fails with this code and the reason.
UNUSABLE_IMAGE = "unusable_image"


@task
def prepare_image(edit_id: int) -> None:
    """Read one image of a batch as the new-edit form reads an image: decode and re-encode it,
    or fetch its URL, and fit it to the model; store it as the edit's input and release the
    edit (pipeline.release). An image that cannot be used fails its edit, with the reason
    naming the image; the batch's other images go ahead. The image as it came is deleted."""
    edit = Edit.objects.filter(PREPARING, pk=edit_id).first()
    if edit is None:
        return  # deleted, or prepared by another run of this task
    if edit.status != Status.QUEUED:
        _drop_pending(edit)  # cancelled while it waited
        return
    try:
        named = _read_pending(edit)
    except BatchRefused as refusal:
        edit.mark_failed(UNUSABLE_IMAGE, str(refusal))
        _drop_pending(edit)
        return
    except Exception:
        logger.exception("Preparing the image of edit %s failed", edit.pk)
        edit.mark_failed("internal_error", pipeline.INTERNAL_ERROR)
        _drop_pending(edit)
        return
    stored = [storage.save("inputs", named.image)]
    try:
        stored.append(storage.save("previews", images.preview(named.image.content)))
        with transaction.atomic():
            # Only the run that clears the pending image stores the input, and the edit is then
            # held; a second run of this task, or a cancel in between, leaves it as it is.
            ready = Edit.objects.filter(
                pk=edit.pk, status=Status.QUEUED, pending_file=edit.pending_file.name,
                pending_url=edit.pending_url,
            ).update(pending_file="", pending_url="", enqueued_at=None)  # fmt: skip
            if ready:
                InputImage.objects.create(
                    edit=edit, position=0, file=stored[0], preview=stored[1],
                    width=named.image.width, height=named.image.height,
                )  # fmt: skip
    except BaseException:
        storage.delete(stored)
        raise
    if not ready:
        storage.delete(stored)
        _drop_pending(edit)
        return
    storage.delete([edit.pending_file.name] if edit.pending_file else [])
    pipeline.release(edit.batch_id)


def _read_pending(edit: Edit) -> NamedImage:
    if edit.pending_url:
        return _fetched(edit.batch_name, edit.pending_url, edit.image_model)
    with edit.pending_file.open("rb") as data:
        return _decoded(edit.batch_name, data, edit.image_model)


def _drop_pending(edit: Edit) -> None:
    """The edit will never use the image as it came: forget it, and delete its file."""
    if Edit.objects.filter(
        pk=edit.pk, pending_file=edit.pending_file.name, pending_url=edit.pending_url
    ).update(pending_file="", pending_url="", enqueued_at=None):
        storage.delete([edit.pending_file.name] if edit.pending_file else [])


def compare_problems(model_names: list[str], prompt: str, named: NamedImage) -> list[str]:
    """Why each model cannot take this image and instruction, one line a model; empty if all
    can. Nothing is sent while any cannot."""
    problems = []
    for name in model_names:
        model = catalog.MODELS[name]
        if len(prompt) > model.max_prompt_chars:
            problems.append(
                f"{name} takes instructions of at most {model.max_prompt_chars:,} characters; "
                f"this one has {len(prompt):,}."
            )
            continue
        try:
            fitted_input(model, named.image, named.name[:80])
        except forms.ValidationError as error:
            problems.append(error.messages[0])
    return problems


def start_compare(owner, prompt: str, model_names: list[str], named: NamedImage) -> Batch:
    """An edit of the image for each model, with the model's defaults, grouped as one
    comparison (compare_problems first). Limits and budgets as for a batch."""
    prices = [services.unit_price(name) for name in model_names]
    cost = None if None in prices else sum(prices, Decimal(0))
    what = f"This comparison of {len(model_names)} models"
    with transaction.atomic():
        throttle.hold_edit_limits(owner)
        usage.hold_budgets(owner, cost, what)
        batch = Batch.objects.create(owner=owner, kind=Batch.Kind.COMPARE, prompt=prompt)
        for name in model_names:
            model = catalog.MODELS[name]
            image = fitted_input(model, named.image, named.name[:80])
            new = services.NewEdit(prompt=prompt, model=name, size="", uploads=[image], urls=[])
            edit = services.create_edit(owner, new, batch=batch)
            Edit.objects.filter(pk=edit.pk).update(batch_name=named.name[:200])
        transaction.on_commit(lambda: pipeline.release(batch.pk))
    return batch


# --- While it runs, and after ------------------------------------------------------------------


@dataclass(frozen=True)
class Progress:
    """How far a batch has come: its edits by status, and how many of its images are still
    being read (their edits queued meanwhile)."""

    counts: dict[str, int]
    # Moves whenever any of its edits moves (their progress counters summed, with the counts).
    signature: str
    preparing: int = 0

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def done(self) -> int:
        return self.total - sum(self.counts.get(status, 0) for status in ACTIVE)

    @property
    def percent(self) -> int:
        return round(100 * self.done / self.total) if self.total else 100

    @property
    def finished(self) -> bool:
        return self.done == self.total

    def __getattr__(self, status: str) -> int:
        if status in Status.values:
            return self.counts.get(status, 0)
        raise AttributeError(status)


def progress(batch: Batch) -> Progress:
    rows = batch.edits.values("status").annotate(
        count=models.Count("pk"),
        moves=models.Sum("progress"),
        preparing=models.Count("pk", filter=PREPARING),
    )
    counts = {row["status"]: row["count"] for row in rows}
    moves = sum(row["moves"] or 0 for row in rows)
    preparing = sum(row["preparing"] for row in rows if row["status"] == Status.QUEUED)
    signature = f"{moves}-{preparing}-" + "-".join(
        f"{counts.get(status, 0)}" for status in Status.values
    )
    return Progress(counts, signature, preparing)


def retry_failed(batch: Batch) -> int:
    """Run the batch's failed edits again, held and released like the first time, if the
    person's limits and budgets allow it (throttle.LimitReached if not). Returns how many."""
    # An image that could not be used would fail again: it has no input to send.
    failed = list(batch.edits.filter(status=Status.FAILED).exclude(error_code=UNUSABLE_IMAGE))
    if not failed:
        return 0
    cost = sum((edit.credits or Decimal(0) for edit in failed), Decimal(0))
    with transaction.atomic():
        throttle.hold_edit_limits(batch.owner)
        usage.hold_budgets(batch.owner, cost, f"Retrying {len(failed)} failed edits")
        retried = [edit.pk for edit in failed if edit.rerun()]
        Edit.objects.filter(pk__in=retried).update(enqueued_at=None)  # held again
        transaction.on_commit(lambda: pipeline.release(batch.pk))
    return len(retried)


def cancel(batch: Batch) -> int:
    """Cancel every edit of the batch still under way (held ones are never sent)."""
    return sum(edit.cancel() for edit in batch.edits.filter(status__in=ACTIVE))


def choose(batch: Batch, edit_id: int) -> bool:
    """Make one of a comparison's edits (one with a result) its pick."""
    edit = batch.edits.filter(pk=edit_id, results__isnull=False).distinct().first()
    if edit is None:
        return False
    Batch.objects.filter(pk=batch.pk).update(chosen_edit=edit)
    batch.chosen_edit = edit
    return True


def zip_name(number: int, edit: Edit, extension: str) -> str:
    """A result's name in the batch's ZIP: its place in the batch and its image's name,
    like 007-holiday-photo.png (the number keeps names apart)."""
    stem = slugify(posixpath.splitext(posixpath.basename(edit.batch_name))[0])[:60]
    return f"{number:03d}-{stem or f'edit-{edit.pk}'}.{extension}"


class _Chunks(io.RawIOBase):
    """Where zipfile writes the archive: what it wrote is taken out piece by piece, so the
    archive streams without ever being whole in memory or on disk."""

    def __init__(self) -> None:
        self.written: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.written.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        data = b"".join(self.written)
        self.written.clear()
        return data


def results_zip(batch: Batch) -> Iterator[bytes]:
    """The chosen result of every edit of the batch that has one, as a ZIP, streamed."""
    chunks = _Chunks()
    edits = batch.edits.order_by("pk")
    with zipfile.ZipFile(chunks, "w", compression=zipfile.ZIP_STORED) as archive:
        for number, edit in enumerate(edits, start=1):
            result = edit.results.filter(position=edit.chosen_position).first()
            if result is None:
                continue
            extension = result.file.name.rsplit(".", 1)[-1]
            with (
                archive.open(zip_name(number, edit, extension), "w") as entry,
                result.file.open("rb") as stored,
            ):
                while data := stored.read(1024 * 1024):
                    entry.write(data)
                    yield chunks.take()
    yield chunks.take()
