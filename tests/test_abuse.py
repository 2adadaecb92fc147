"""What people paste and upload that must be refused: each gets a clear message, nothing is
stored, and no request goes anywhere it should not."""

import io
import os
import struct
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from PIL import Image

from imageedits.edits import fetch, images
from imageedits.edits.models import Edit, ShareLink, Submission

from .conftest import make_png, queued, run_edit

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
    assert "At most 16 images can go into one edit; you gave 17." in response.content.decode()
    assert Edit.objects.count() == 0 and stored_files() == []


# --- Making the server read, fetch or decode too much -----------------------------------------


def test_a_hundred_carried_images_are_counted_before_any_is_read(logged_in, alice):
    """One stored 1.5 MB input named a hundred times: refused without reading it once."""
    import tracemalloc

    from imageedits.edits import services

    noise = Image.frombytes("RGB", (700, 700), os.urandom(700 * 700 * 3))
    buffer = io.BytesIO()
    noise.save(buffer, format="PNG")
    edit = services.create_edit(
        alice, services.NewEdit("p", "gpt-image-2", "", [images.reencode(buffer.getvalue())], [])
    )
    assert edit.inputs.get().file.size > 1_000_000
    tracemalloc.start()
    try:
        response = post(logged_in, carry=[f"input-{edit.pk}-0"] * 100)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "At most 16 images can go into one edit; you gave 100." in response.content.decode()
    assert peak < 20_000_000, f"{peak / 1e6:.0f} MB held while refusing"


class CountingImages(BaseHTTPRequestHandler):
    """An image host that counts what is asked of it; `drip` sends each byte 0.1 s apart."""

    served = 0
    drip = False
    body = make_png(32, 32)

    def do_GET(self):
        type(self).served += 1
        body = self.body
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            for start in range(0, len(body), 1 if self.drip else len(body)):
                self.wfile.write(body[start : start + 1 if self.drip else None])
                self.wfile.flush()
                if self.drip:
                    time.sleep(0.1)
        except OSError:
            pass  # the app gave up, as it should

    def log_message(self, *args):
        pass


def serve(handler, settings):
    """A local HTTP server with `handler`, let through the address check as a public host
    would be; yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host = f"127.0.0.1:{server.server_address[1]}"
    settings.IMAGE_FETCH_ALLOWED_HOSTS = [*settings.IMAGE_FETCH_ALLOWED_HOSTS, host]
    yield f"http://{host}"
    server.shutdown()


@pytest.fixture
def image_host(settings):
    CountingImages.served, CountingImages.drip, CountingImages.body = 0, False, make_png(32, 32)
    yield from serve(CountingImages, settings)


def test_forty_image_urls_are_counted_before_any_is_fetched(logged_in, image_host):
    urls = "\n".join(f"{image_host}/{n}.png" for n in range(40))
    response = post(logged_in, image_urls=urls)
    assert "At most 16 images can go into one edit; you gave 40." in response.content.decode()
    assert CountingImages.served == 0


def test_slow_image_urls_share_one_deadline(logged_in, image_host, monkeypatch):
    """Three hosts that drip their images: the edit waits for one deadline in all, not one
    each."""
    monkeypatch.setattr(fetch, "DEADLINE_SECONDS", 1.5)
    CountingImages.drip = True
    urls = "\n".join(f"{image_host}/{n}.png" for n in range(3))
    started = time.monotonic()
    response = post(logged_in, image_urls=urls)
    took = time.monotonic() - started
    assert "took too long to send the image (all the image URLs of one edit get 1.5 seconds" in (
        response.content.decode()
    )
    assert "there was no time left to fetch it" in response.content.decode()
    assert took < 3.5, f"{took:.1f} s: the deadline was not shared (one each takes 4.5 s)"


def test_image_urls_share_one_byte_budget(logged_in, image_host, monkeypatch):
    noise = Image.frombytes("RGB", (600, 600), os.urandom(600 * 600 * 3))
    buffer = io.BytesIO()
    noise.save(buffer, format="PNG")  # about 1 MB: two of them are more than the budget
    CountingImages.body = buffer.getvalue()
    monkeypatch.setattr(fetch, "BUDGET_BYTES", 3 * 2**20 // 2)
    urls = "\n".join(f"{image_host}/{n}.png" for n in range(2))
    page = post(logged_in, image_urls=urls).content.decode()
    assert "the image URLs of one edit may give 1 MB in all, and this one goes past that" in page
    assert Edit.objects.count() == 0


def test_a_pixel_budget_covers_all_the_images_of_one_edit(logged_in, stored_files):
    """Each 9000x6000 image is allowed alone (54 of 64 megapixels); two are too many to
    decode for one edit, and are refused from their headers, before decoding either."""
    big = Image.new("P", (9000, 6000))
    buffer = io.BytesIO()
    big.save(buffer, format="PNG")
    uploads = [SimpleUploadedFile(f"{n}.png", buffer.getvalue(), "image/png") for n in range(2)]
    response = post(logged_in, images=uploads)
    assert response.status_code == 400
    assert "These images have 108 megapixels in all; one edit takes at most 100." in (
        response.content.decode()
    )
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


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.216.34", True),
        ("2606:4700::1111", True),
        ("64:ff9b::808:808", True),  # NAT64 of 8.8.8.8: a public host
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),  # carrier-grade NAT
        ("192.88.99.1", False),  # 6to4 relay anycast, deprecated: Python calls it global
        ("224.0.0.1", False),
        ("::1", False),
        ("::", False),
        ("fe80::1", False),
        ("fc00::1", False),
        ("fec0::1", False),  # site-local, deprecated: Python calls it global
        ("3ffe::1", False),  # the 6bone, returned: Python calls it global
        ("::ffff:127.0.0.1", False),  # IPv4-mapped
        ("::127.0.0.1", False),  # IPv4-compatible: Python calls it global
        ("::10.0.0.1", False),
        ("::ffff:0:127.0.0.1", False),  # SIIT IPv4-translated: Python calls it global
        ("64:ff9b::7f00:1", False),  # NAT64 of 127.0.0.1: Python calls it global
        ("64:ff9b::a9fe:a9fe", False),  # NAT64 of 169.254.169.254
        ("64:ff9b:1::a00:1", False),  # NAT64 local use
        ("2002:7f00:1::", False),  # 6to4 of 127.0.0.1
        ("2002:808:808::", False),  # 6to4 at all: a relay, not a host
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", False),  # Teredo, client 127.0.0.1
        ("2606:4700::5efe:a00:1", False),  # ISATAP interface id carrying 10.0.0.1
    ],
)
def test_which_addresses_are_public(address, public):
    import ipaddress

    assert fetch.is_public(ipaddress.ip_address(address)) is public


@pytest.mark.parametrize("host", ["[::127.0.0.1]", "[64:ff9b::7f00:1]", "[::ffff:0:a00:1]"])
def test_an_ipv6_url_wrapping_a_private_ipv4_address_is_refused(logged_in, host):
    response = post(logged_in, image_urls=f"http://{host}/cat.png")
    assert response.status_code == 400
    assert "is a private or local address" in response.content.decode()
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
    yield from serve(Redirector, settings)


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


def callback_url_waiting(owner) -> tuple[Submission, str]:
    """A request sent with a callback URL (secret "s3cret"), and that URL's path."""
    from imageedits.edits import services

    edit = services.create_edit(
        owner, services.NewEdit("blur", "gpt-image-2", "", [images.reencode(make_png())], [])
    )
    submission = edit.submissions.get()
    submission.mark_running()
    submission.set_callback_secret("s3cret")
    return submission, reverse("edit-callback", args=[submission.pk, "s3cret"])


def test_an_oversized_callback_body_is_refused(client, alice, monkeypatch):
    from imageedits.edits import views

    submission, url = callback_url_waiting(alice)
    monkeypatch.setattr(views, "MAX_CALLBACK_BYTES", 1000)
    response = client.post(url, {"data": "x" * 5000}, "application/json")
    assert response.status_code == 413
    submission.refresh_from_db()
    assert submission.is_active and submission.callback_received_at is None
    assert queued("check_submission") == []


@pytest.mark.parametrize(
    "body",
    ["not json", "[1, 2]", "null", "[" * 100_000 + "]" * 100_000, '{"a": ' * 50_000 + "1"],
    ids=["not-json", "a-list", "null", "nested-too-deep", "unclosed"],
)
def test_a_malformed_callback_is_a_400_and_queues_nothing(client, alice, body):
    submission, url = callback_url_waiting(alice)
    response = client.post(url, body, "application/json")
    assert response.status_code == 400
    assert "error" in response.json()
    assert queued("check_submission") == []
    submission.refresh_from_db()
    assert submission.is_active and submission.callback_received_at is None


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


# --- Guessing passwords --------------------------------------------------------------------------


def test_the_admin_log_in_shares_the_apps_throttle(client, django_user_model, settings):
    settings.LOGIN_FAILURES_PER_USER = 3
    django_user_model.objects.create_superuser("root", "root@example.com", "root-password")
    admin_login = reverse("admin:login")
    for _ in range(2):
        assert client.post(admin_login, {"username": "root", "password": "x"}).status_code == 200
    client.post(reverse("login"), {"username": "root", "password": "x"})  # the third, elsewhere

    refused = client.post(admin_login, {"username": "root", "password": "root-password"})
    assert "Too many failed log-ins" in refused.content.decode()
    assert "_auth_user_id" not in client.session
    refused = client.post(reverse("login"), {"username": "root", "password": "root-password"})
    assert "Too many failed log-ins" in refused.content.decode()


@pytest.mark.parametrize("spelling", ["ALICE", "ａｌｉｃｅ", "𝐚𝐥𝐢𝐜𝐞", " alice "])
def test_other_spellings_of_a_username_count_as_that_person(client, alice, settings, spelling):
    settings.LOGIN_FAILURES_PER_USER = 3
    for _ in range(3):
        client.post(reverse("login"), {"username": "alice", "password": "wrong"})
    refused = client.post(reverse("login"), {"username": spelling, "password": "alice-password"})
    assert "Too many failed log-ins" in refused.content.decode()
    assert "_auth_user_id" not in client.session


# --- An image URL that gives no image -----------------------------------------------------------


def test_an_image_url_that_gives_no_image_is_refused_when_the_edit_is_made(logged_in, simulator):
    """Fetched once when the edit is made: said at once, and never sent upstream (where a
    "fetch failed" would be paid for, and is not retried)."""
    gone = f"{simulator.url}/files/no-such-image.png"
    response = post(logged_in, image_urls=gone)
    assert response.status_code == 400
    assert f"“{gone}” cannot be used: the address answered HTTP 404." in response.content.decode()
    assert Edit.objects.count() == 0 and simulator.received == []


# --- Share links that would escape their owner ------------------------------------------------


def finished_edit(owner) -> Edit:
    from imageedits.edits import services

    edit = services.create_edit(
        owner, services.NewEdit("p", "gpt-image-2", "", [images.reencode(make_png())], [])
    )
    run_edit(edit)
    return Edit.objects.get(pk=edit.pk)


def test_an_edit_without_a_result_cannot_be_shared(logged_in, alice, simulator):
    """The share form can stay open on a page whose edit then fails: the server refuses, so no
    link exists that the owner is never shown (and so could not revoke)."""
    simulator.inject("forbidden")
    edit = finished_edit(alice)
    assert edit.status == Edit.Status.FAILED
    url = reverse("edit-share", args=[edit.pk])
    section = logged_in.post(url, {}, headers={"HX-Request": "true"}).content.decode()
    assert "This edit has no result to share." in section
    assert "new-share-url" not in section and "Create share link" not in section
    followed = logged_in.post(url, follow=True).content.decode()
    assert "This edit has no result to share." in followed
    assert ShareLink.objects.count() == 0


def test_a_dead_share_link_is_our_own_page_even_in_debug(client, alice, settings):
    """Not Django's debug 404, which lists the site's URLs to whoever holds an old link."""
    from imageedits.edits import sharing

    link, token = sharing.create(finished_edit(alice), include_inputs=False, expires_in_days=None)
    link.revoke()
    settings.DEBUG = True
    for path in (f"/s/{token}/", f"/s/{token}/result/0/", "/s/nonsense/thumbnail/9/"):
        response = client.get(path)
        assert response.status_code == 404
        page = response.content.decode()
        assert "This share link does not work" in page and "URLconf" not in page
        assert response["X-Robots-Tag"] == "noindex, nofollow"


# --- Secrets in logs ----------------------------------------------------------------------------


SCRIPT = """
import django
django.setup()
from django.core.management import call_command
from django.test import Client
call_command("migrate", verbosity=0)
client = Client(HTTP_HOST="localhost")
share = client.get("/s/ShareTokenThatWasRevoked0123456789abcdefghijk/")
ours = b"This share link does not work" in share.content
print("STATUS", share.status_code, "OURS" if ours else "")
client.get("/s/ShareTokenThatWasRevoked0123456789abcdefghijk/result/0/")
client.post("/hooks/submissions/7/CallbackSecretValue0123456789/", "{}", "application/json")
"""


def test_no_log_handler_prints_a_token_or_a_secret_in_development_either(tmp_path):
    """Under `make run` (DEBUG=1) Django adds its own console handler to its loggers; the
    "Not Found" lines of an old share link or a probed callback URL must be redacted there."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "DATABASE_URL", "TASKS_", "AWS_"))
    }  # its own SQLite database and local files, whatever this run uses
    env.update(DEBUG="1", VAR_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="imageedits.settings")
    run = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=Path(__file__).resolve().parent.parent, env=env,
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "STATUS 404 OURS" in run.stdout  # our page, not Django's debug page with the URLs
    logged = run.stdout + run.stderr
    assert "Not Found: /s/[redacted]/" in logged
    assert "ShareTokenThatWasRevoked" not in logged
    assert "CallbackSecretValue" not in logged


# --- Malformed input is a 400 or a 404, never a 500 ------------------------------------------

# What a person or a script can put in a query or a form field: any text (Django refuses NUL
# characters in every field before our code), and the numbers that break naive parsing (too
# large for the database, negative, not ASCII digits). Text a request can carry: UTF-8, so no
# lone surrogates, which the test client cannot even put in a URL.
anything = st.one_of(
    st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), max_size=12),
    st.sampled_from(["9" * 30, "-1", "0", "1e5", "²", "１２", "abc", " 1", "1 ", "NaN", "[]"]),
    st.integers(min_value=2**62, max_value=2**80).map(str),
)


def get_params(view: str) -> dict[str, list[str]]:
    return {
        "edit-new": ["from_result", "position", "reuse", "model", "candidates", "size"],
        "edit-params": ["model", "size", "custom_size", "candidates", "quality"],
        "edit-size-check": ["model", "custom_size"],
        "edit-list": ["q", "model", "status", "since", "until", "starred", "collection", "page",
                      "tab"],
    }[view]  # fmt: skip


@hypothesis_settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    view=st.sampled_from(["edit-new", "edit-params", "edit-size-check", "edit-list"]),
    values=st.lists(anything, min_size=9, max_size=9),
)  # fmt: skip
def test_no_query_value_is_a_server_error(client, django_user_model, view, values):
    user, _ = django_user_model.objects.get_or_create(username="fuzz")
    client.force_login(user)
    query = dict(zip(get_params(view), values, strict=False))
    response = client.get(reverse(view), query)
    assert response.status_code < 500, (view, query)


@hypothesis_settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    action=st.one_of(st.sampled_from(["zip", "collect", "delete", ""]), anything),
    selected=st.lists(anything, max_size=3),
    collection=anything,
    carry=st.lists(st.one_of(anything, anything.map(lambda t: f"result-{t}-0")), max_size=3),
    candidates=anything,
    days=anything,
    name=anything,
)  # fmt: skip
def test_no_form_value_is_a_server_error(
    client, django_user_model, action, selected, collection, carry, candidates, days, name
):
    user, _ = django_user_model.objects.get_or_create(username="fuzz")
    client.force_login(user)
    edit, _ = Edit.objects.get_or_create(owner=user, prompt="p", model="gpt-image-2")
    posts = [
        ("edit-bulk", [], {"action": action, "selected": selected, "collection": collection,
                           "confirmed": "1"}),
        ("edit-new", [], {"prompt": "p", "model": "gpt-image-2", "carry": carry,
                          "candidates": candidates, "image_urls": name.replace(":", "")}),
        ("collection-new", [], {"name": name}),
        ("edit-share", [edit.pk], {"expires_in_days": days, "include_inputs": name}),
    ]  # fmt: skip
    for view, args, data in posts:
        response = client.post(reverse(view, args=args), data)
        assert response.status_code < 500, (view, data)
