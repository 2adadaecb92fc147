"""Stored images in an S3-compatible bucket (django-storages), against moto's S3 server over a
real socket: edits store and delete their objects there, the owner is redirected to a short-lived
signed URL, the orphan sweep lists keys by prefix, and /ready/ checks the bucket."""

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.urls import reverse

from imageedits.edits import housekeeping, images, services, sharing
from imageedits.edits.models import Edit

from .conftest import make_png, run_edit, use_new_bucket

pytestmark = pytest.mark.django_db


@pytest.fixture
def bucket(settings, s3_server):
    """A new bucket as the default storage; yields a function listing its keys."""
    s3, name = use_new_bucket(settings, s3_server)

    def keys() -> list[str]:
        listed = s3.list_objects_v2(Bucket=name).get("Contents", [])
        return sorted(item["Key"] for item in listed)

    return keys


def finished(owner) -> Edit:
    upload = images.reencode(make_png())
    edit = services.create_edit(owner, services.NewEdit("sepia", "gpt-image-2", "", [upload], []))
    run_edit(edit)
    return Edit.objects.get(pk=edit.pk)


def test_an_edit_keeps_its_images_in_the_bucket_and_takes_them_along(
    alice, bucket, settings, django_capture_on_commit_callbacks
):
    edit = finished(alice)
    assert edit.status == Edit.Status.SUCCEEDED, edit.error_message
    kinds = sorted(key.split("/")[0] for key in bucket())
    assert kinds == ["inputs", "previews", "previews", "results", "thumbnails"]
    assert not Path(settings.MEDIA_ROOT).exists()  # nothing on the local disk
    with django_capture_on_commit_callbacks(execute=True):
        edit.delete()
    assert bucket() == []


def test_the_owner_is_redirected_to_a_short_lived_signed_url(client, alice, bob, bucket):
    edit = finished(alice)
    client.force_login(alice)
    response = client.get(reverse("edit-image", args=[edit.pk, "result", 0]))
    assert response.status_code == 302
    assert response["Cache-Control"] == "private, no-store"
    signed = response["Location"]
    assert "X-Amz-Signature=" in signed and "X-Amz-Expires=300" in signed
    image = httpx.get(signed)
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    assert images.stored(image.content).format == "PNG"

    download = client.get(reverse("edit-image", args=[edit.pk, "result", 0]), {"download": "1"})
    named = httpx.get(download["Location"])
    assert named.headers["content-disposition"] == f'attachment; filename="{edit.file_stem}-1.png"'

    bucket_url = signed.split("?", 1)[0]
    assert httpx.get(bucket_url).status_code == 403  # the bucket itself stays private
    client.force_login(bob)
    assert client.get(reverse("edit-image", args=[edit.pk, "result", 0])).status_code == 404


def test_a_share_link_redirects_to_a_signed_url_too(client, alice, bucket):
    _, token = sharing.create(finished(alice), include_inputs=False, expires_in_days=None)
    response = client.get(reverse("shared-image", args=[token, "result", 0]))
    assert response.status_code == 302 and "X-Amz-Signature=" in response["Location"]
    assert response["Referrer-Policy"] == "no-referrer"
    assert httpx.get(response["Location"]).status_code == 200


def test_the_orphan_sweep_lists_the_bucket_by_prefix(alice, bucket):
    edit = finished(alice)
    kept = bucket()
    stray = default_storage.save("results/2026/01/stray.png", ContentFile(make_png()))
    default_storage.save("elsewhere/not-ours.txt", ContentFile(b"left alone"))

    assert housekeeping.sweep_orphans(timedelta(hours=1)) == 0  # too young to be an orphan
    assert housekeeping.sweep_orphans(timedelta(0)) == 1
    assert stray not in bucket() and set(kept) <= set(bucket())
    assert "elsewhere/not-ours.txt" in bucket()
    assert edit.results.count() == 1


def test_ready_checks_the_bucket(client, bucket):
    response = client.get("/ready/", {"format": "json"})
    assert response.status_code == 200
    assert bucket() == []


def test_the_bucket_is_configured_from_the_environment(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    env.update(
        VAR_DIR=str(tmp_path), AWS_STORAGE_BUCKET_NAME="edits",
        AWS_S3_ENDPOINT_URL="http://minio.internal:9000",
        DJANGO_SETTINGS_MODULE="imageedits.settings",
    )  # fmt: skip
    script = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.STORAGES['default']['BACKEND'], s.STORAGES['default']['OPTIONS']['bucket_name'],"
        " s.STORAGES['default']['OPTIONS']['addressing_style'], s.SECURE_CSP['img-src'])"
    )
    run = subprocess.run(
        [sys.executable, "-c", script], cwd=Path(__file__).resolve().parent.parent, env=env,
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("storages.backends.s3.S3Storage edits path")
    assert "'http://minio.internal:9000'" in run.stdout  # images load from there (CSP)

    del env["AWS_S3_ENDPOINT_URL"]  # AWS itself: us-east-1 signs with the global host name
    run = subprocess.run(
        [sys.executable, "-c", script], cwd=Path(__file__).resolve().parent.parent, env=env,
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert "virtual" in run.stdout
    assert "'https://edits.s3.amazonaws.com'" in run.stdout
    assert "'https://edits.s3.us-east-1.amazonaws.com'" in run.stdout


def test_the_forms_scripts_get_the_pixels_from_the_app_itself(client, alice, bucket):
    """The mask painter and the images carried into a new edit are read by the page's scripts,
    which may only read what comes from the app's own origin: ?stream=1 streams it."""
    edit = finished(alice)
    client.force_login(alice)
    response = client.get(reverse("edit-image", args=[edit.pk, "input", 0]), {"stream": "1"})
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert images.stored(b"".join(response.streaming_content)).format == "PNG"
