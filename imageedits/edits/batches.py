"""Batches and comparisons: many edits made in one go, grouped by a models.Batch.

A batch is one instruction, model and settings over many images (files, a ZIP or URLs), an Edit
for each image. A comparison is one image and instruction over several models, an Edit for each
model with the model's defaults. Either way the edits are created held and the pipeline
releases them a few at a time (pipeline.release, BATCH_CONCURRENCY); the person's limits count
the whole group as one edit (throttle), and their budgets are checked for the whole group.
"""

import io
import posixpath
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

from django import forms
from django.conf import settings
from django.db import models, transaction
from django.template.defaultfilters import filesizeformat
from django.utils.text import slugify

from . import catalog, fetch, images, pipeline, services, throttle, usage
from .forms import fitted_input
from .models import ACTIVE, Batch, Edit, Status

# All the images of one batch together: each is decoded in the request that brings it, and
# decoding costs CPU by the pixel (200 photos of 5 megapixels).
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


# --- Reading a batch's images ------------------------------------------------------------------


def collect_images(
    model: catalog.ImageModel, uploads: list, archive, urls: list[str]
) -> list[NamedImage]:
    """Every image of a batch, decoded and re-encoded as `model` takes it: uploaded files, the
    images in a ZIP, then the images at the URLs. Counted first, then sized from their headers
    (a ZIP from what it declares), and only then read, decoded or fetched."""
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
    sized = [(upload.name, header_size(upload.file)) for upload in uploads]
    sized += [(name, _zip_header_size(opened, info)) for name, info in members]
    pixels = sum(width * height for _, (width, height) in sized)
    if pixels > BATCH_MAX_PIXELS:
        raise BatchRefused(
            f"These images have {pixels / 1_000_000:,.0f} megapixels in all; a batch takes at "
            f"most {BATCH_MAX_PIXELS // 1_000_000:,}. Send fewer or smaller ones."
        )
    named = [_decoded(upload.name, upload.file, model) for upload in uploads]
    named += [_decoded(name, _zip_read(opened, info), model) for name, info in members]
    budget = fetch.Budget(
        bytes_left=settings.BATCH_MAX_REQUEST_BYTES, pixels_left=BATCH_MAX_PIXELS - pixels
    )
    problems = []
    for url in urls:
        name = _url_name(url)
        try:
            named.append(NamedImage(name, _fitted(model, fetch.fetch_image(url, budget), name)))
        except fetch.FetchRefused as error:
            problems.append(f"“{url[:80]}” cannot be used: {error}")
    if problems:  # every bad URL at once
        raise BatchRefused(" ".join(problems))
    return named


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


def start_batch(owner, wanted: Settings, named: list[NamedImage]) -> Batch:
    """Create the batch and an edit for each image, held for pipeline.release, if the person's
    limits (the batch counts as one edit) and budgets (its whole cost) allow it:
    throttle.LimitReached or usage.BudgetExceeded if not, and nothing is created."""
    cost = batch_cost(wanted.model, wanted.candidates, len(named))
    what = f"This batch of {len(named)} edits"
    with transaction.atomic():
        throttle.hold_edit_limits(owner)
        usage.hold_budgets(owner, cost, what)
        batch = Batch.objects.create(owner=owner, kind=Batch.Kind.BATCH, prompt=wanted.prompt)
        for item in named:
            new = services.NewEdit(
                prompt=wanted.prompt, model=wanted.model, size=wanted.size, uploads=[item.image],
                urls=[], params=wanted.params, candidates=wanted.candidates,
            )  # fmt: skip
            edit = services.create_edit(owner, new, batch=batch)
            Edit.objects.filter(pk=edit.pk).update(batch_name=item.name[:200])
        transaction.on_commit(lambda: pipeline.release(batch.pk))
    return batch


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
    """How far a batch has come: its edits by status."""

    counts: dict[str, int]
    # Moves whenever any of its edits moves (their progress counters summed, with the counts).
    signature: str

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
        count=models.Count("pk"), moves=models.Sum("progress")
    )
    counts = {row["status"]: row["count"] for row in rows}
    moves = sum(row["moves"] or 0 for row in rows)
    signature = f"{moves}-" + "-".join(f"{counts.get(status, 0)}" for status in Status.values)
    return Progress(counts, signature)


def retry_failed(batch: Batch) -> int:
    """Run the batch's failed edits again, held and released like the first time, if the
    person's limits and budgets allow it (throttle.LimitReached if not). Returns how many."""
    failed = list(batch.edits.filter(status=Status.FAILED))
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
