"""Stored image files: inputs, masks, results and thumbnails, under names the server makes; and
a batch's images as they were uploaded, until they are prepared (uploads/).

Images are stored by the services and the pipeline (already re-encoded), never uploaded through
a model form, so no name a user sent ever reaches the storage.
"""

import uuid

from django.conf import settings
from django.core.files.base import File
from django.core.files.storage import FileSystemStorage, default_storage
from django.http import FileResponse, HttpResponse, HttpResponseRedirect
from django.utils import timezone

from .images import EncodedImage, content_type_for

KINDS = ("inputs", "results", "thumbnails", "previews", "masks", "uploads")


def new_name(kind: str, extension: str) -> str:
    return f"{kind}/{timezone.now():%Y/%m}/{uuid.uuid4().hex}.{extension}"


def save(kind: str, image: EncodedImage) -> str:
    """Store the image; returns its name."""
    return default_storage.save(new_name(kind, image.extension), File(image.file))


def save_upload(data) -> str:
    """Store a file of a batch as it came, not yet read (batches.prepare_image reads it, then
    deletes it); returns its name. The name says nothing of what the file claims to be."""
    data.seek(0)
    return default_storage.save(new_name("uploads", "bin"), File(data))


def read(stored) -> bytes:
    """The bytes of a stored file (a FieldFile)."""
    with stored.open("rb") as handle:
        return handle.read()


def delete(names: list[str]) -> None:
    for name in names:
        default_storage.delete(name)


def all_names(folder: str = ""):
    """Every stored image's name, folder by folder (a folder is a key prefix in a bucket,
    where nothing exists under the folder's own name)."""
    if not folder:
        for kind in KINDS:
            yield from all_names(kind)
        return
    try:
        folders, files = default_storage.listdir(folder)
    except FileNotFoundError:  # a local folder nothing was stored in yet
        return
    for name in files:
        yield f"{folder}/{name}"
    for sub in folders:
        yield from all_names(f"{folder}/{sub}")


def response(stored, download_name: str = "", stream: bool = False) -> HttpResponse:
    """The stored image for a browser: streamed from local files, or from a bucket a redirect
    to a URL signed for SIGNED_URL_SECONDS, with the content type and, for a download, the
    file name set by the signature (the bucket itself stays private). `stream` streams it from
    the bucket too, for the page's scripts, which read the pixels (same origin only)."""
    content_type = content_type_for(stored.name)
    disposition = f'attachment; filename="{download_name}"' if download_name else "inline"
    if stream or isinstance(stored.storage, FileSystemStorage):
        served = FileResponse(stored.open("rb"), content_type=content_type)
        served["Content-Disposition"] = disposition
        return served
    url = stored.storage.url(
        stored.name,
        parameters={"ResponseContentType": content_type, "ResponseContentDisposition": disposition},
        expire=settings.SIGNED_URL_SECONDS,
    )
    redirect = HttpResponseRedirect(url)
    redirect["Cache-Control"] = "private, no-store"  # the signature expires; the page does not
    return redirect
