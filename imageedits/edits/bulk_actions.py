"""Results of several edits as one ZIP, written to a temporary file (not memory)."""

import tempfile
import zipfile

from django.db.models import QuerySet

from .models import Edit


def results_zip(edits: QuerySet[Edit]):
    """A file object holding every result of `edits`, named after its edit and instruction."""
    # Returned open: FileResponse reads it and closes it.
    archive = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)  # noqa: SIM115
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_STORED) as bundle:
        for edit in edits.prefetch_related("results"):
            for result in edit.results.all():
                extension = result.file.name.rsplit(".", 1)[-1]
                with result.file.open("rb") as image:
                    bundle.writestr(
                        f"{edit.file_stem}-{result.position + 1}.{extension}", image.read()
                    )
    archive.seek(0)
    return archive
