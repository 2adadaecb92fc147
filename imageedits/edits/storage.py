"""Stored image files: inputs, masks, results and thumbnails, under names the server makes.

Images are stored by the services and the pipeline (already re-encoded), never uploaded through
a model form, so no name a user sent ever reaches the storage.
"""

import uuid

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone

from .images import EncodedImage

KINDS = ("inputs", "results", "thumbnails", "masks")


def new_name(kind: str, extension: str) -> str:
    return f"{kind}/{timezone.now():%Y/%m}/{uuid.uuid4().hex}.{extension}"


def save(kind: str, image: EncodedImage) -> str:
    """Store the image; returns its name."""
    return default_storage.save(new_name(kind, image.extension), ContentFile(image.content))


def read(stored) -> bytes:
    """The bytes of a stored file (a FieldFile)."""
    with stored.open("rb") as handle:
        return handle.read()


def delete(names: list[str]) -> None:
    for name in names:
        default_storage.delete(name)


def all_names(folder: str = ""):
    """Every stored image's name, folder by folder."""
    if not folder:
        for kind in KINDS:
            if default_storage.exists(kind):
                yield from all_names(kind)
        return
    folders, files = default_storage.listdir(folder)
    for name in files:
        yield f"{folder}/{name}"
    for sub in folders:
        yield from all_names(f"{folder}/{sub}")
