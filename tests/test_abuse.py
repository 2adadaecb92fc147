"""What people paste and upload that must be refused: each gets a clear message, nothing is
stored, and no request goes anywhere it should not."""

import io
import struct
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from imageedits.edits import fetch, images
from imageedits.edits.models import Edit

from .conftest import make_png

pytestmark = pytest.mark.django_db


def post(client, **fields):
    data = {"prompt": "blur it", "model": "gpt-image-2", "size": "auto", "image_urls": ""}
    data.update(fields)
    return client.post(reverse("edit-new"), data)


def png_claiming_size(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims a huge size: a decompression bomb's signature."""
    raw = make_png(1, 1)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + header
    ihdr = struct.pack(">I", len(header)) + chunk + struct.pack(">I", zlib.crc32(chunk))
    return raw[:8] + ihdr + raw[8 + 25 :]


def jpeg(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "orange").save(buffer, format="JPEG")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("notes.txt", b"just some text", "not a PNG, JPEG or WebP image"),
        ("page.png", b"<html><script>alert(1)</script></html>", "not a PNG, JPEG or WebP image"),
        ("bomb.png", png_claiming_size(30_000, 30_000), "more than 64 megapixels"),
        ("cut.jpg", jpeg(400, 300)[:600], "not a PNG, JPEG or WebP image"),
        ("wide.jpg", jpeg(20_000, 4), "sides of at most 16,384 pixels"),
        ("anim.gif", b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", "not a PNG, JPEG or WebP image"),
    ],
)
def test_uploads_that_are_not_acceptable_images_are_refused(
    logged_in, stored_files, name, content, message
):
    response = post(logged_in, images=[SimpleUploadedFile(name, content, "image/png")])
    assert response.status_code == 400
    assert f"“{name}” cannot be used" in response.content.decode()
    assert message in response.content.decode()
    assert Edit.objects.count() == 0 and stored_files() == []


def test_seventeen_inputs_are_refused(logged_in, stored_files, simulator):
    uploads = [SimpleUploadedFile(f"{n}.png", make_png(), "image/png") for n in range(16)]
    url = f"{simulator.url}/samples/square.png"
    response = post(logged_in, images=uploads, image_urls=url)
    assert "gpt-image-2 takes at most 16 images; you gave 17." in response.content.decode()
    assert Edit.objects.count() == 0 and stored_files() == []


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://127.0.0.1/cat.png", "127.0.0.1 is a private or local address"),
        ("http://10.0.0.1/cat.png", "10.0.0.1 is a private or local address"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a private or local"),
        ("http://[::1]:8080/cat.png", "::1 is a private or local address"),
        ("http://localhost/cat.png", "localhost (127.0.0.1) is a private or local address"),
        ("http://0.0.0.0/cat.png", "0.0.0.0 is a private or local address"),
        ("http://[::ffff:127.0.0.1]/cat.png", "is a private or local address"),
        ("file:///etc/passwd", "is not a valid web address"),
        ("ftp://example.com/cat.png", "must start with http:// or https://"),
        ("http://no-such-host.invalid/cat.png", "could not be resolved"),
    ],
)
def test_image_urls_into_our_own_network_are_refused(logged_in, url, message):
    response = post(logged_in, image_urls=url)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert Edit.objects.count() == 0


class Redirector(BaseHTTPRequestHandler):
    """A public-looking image host that redirects into the private network."""

    target = ""

    def do_GET(self):
        self.send_response(302)
        self.send_header("Location", self.target)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def redirector(settings):
    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host = f"127.0.0.1:{server.server_address[1]}"
    settings.IMAGE_FETCH_ALLOWED_HOSTS = [*settings.IMAGE_FETCH_ALLOWED_HOSTS, host]
    yield f"http://{host}"
    server.shutdown()


@pytest.mark.parametrize(
    "target", ["http://127.0.0.1:9/secret.png", "http://169.254.169.254/", "file:///etc/passwd"]
)
def test_a_redirect_into_the_private_network_is_refused_when_fetching(redirector, target):
    Redirector.target = target
    with pytest.raises(fetch.FetchRefused) as caught:
        fetch.fetch_image(f"{redirector}/cat.png")
    assert "private or local address" in str(caught.value) or "http and https" in str(caught.value)


def test_an_allowed_host_gives_a_decoded_image(simulator):
    fetched = fetch.fetch_image(f"{simulator.url}/samples/portrait.png")
    assert (fetched.width, fetched.height) == (768, 1024)


def test_a_url_that_is_not_an_image_is_refused_when_fetching(simulator):
    with pytest.raises(fetch.FetchRefused) as caught:
        fetch.fetch_image(f"{simulator.url}/healthz")
    assert "did not give an image" in str(caught.value)


def test_images_stored_have_their_orientation_applied_and_no_exif():
    photo = Image.new("RGB", (40, 20), "navy")
    exif = photo.getexif()
    exif[0x0112] = 6  # rotated 90 degrees: shown 20x40
    exif[0x010F] = "PhoneMaker"
    buffer = io.BytesIO()
    photo.save(buffer, format="JPEG", exif=exif)

    stored = images.reencode(buffer.getvalue())
    assert (stored.width, stored.height) == (20, 40)
    assert b"PhoneMaker" not in stored.content
    assert not Image.open(io.BytesIO(stored.content)).getexif()


def test_an_oversized_callback_body_is_refused(client, alice, monkeypatch):
    from imageedits.edits import services, views

    edit = services.create_edit(
        alice, services.NewEdit("blur", "gpt-image-2", "", [images.reencode(make_png())], [])
    )
    submission = edit.submissions.get()
    submission.mark_running()
    submission.set_callback_secret("s3cret")
    monkeypatch.setattr(views, "MAX_CALLBACK_BYTES", 1000)
    url = reverse("edit-callback", args=[submission.pk, "s3cret"])
    response = client.post(url, {"data": "x" * 5000}, "application/json")
    assert response.status_code == 413
    submission.refresh_from_db()
    assert submission.is_active


def test_a_request_larger_than_the_cap_is_refused_before_it_is_read(
    logged_in, settings, stored_files
):
    settings.EDIT_MAX_REQUEST_BYTES = 5000
    big = SimpleUploadedFile("big.png", make_png() + b"x" * 10_000, "image/png")
    response = post(logged_in, images=[big])
    assert response.status_code == 413
    assert "add up to more than 4.9" in response.content.decode()
    assert Edit.objects.count() == 0 and stored_files() == []


def test_an_upload_larger_than_the_per_file_cap_is_refused(logged_in, settings, stored_files):
    settings.EDIT_MAX_UPLOAD_BYTES = 1000
    response = post(
        logged_in, images=[SimpleUploadedFile("p.png", make_png(80, 80) + b"\0" * 2000)]
    )
    assert "the limit is 1000" in response.content.decode()
    assert Edit.objects.count() == 0 and stored_files() == []
