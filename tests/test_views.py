"""The edit form, the edit page and its status fragment, the image files, and who may see what."""

import io
import os
import re
import tracemalloc
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django.utils.datastructures import MultiValueDict
from PIL import Image

from imageedits.edits import images, services
from imageedits.edits.forms import EditForm
from imageedits.edits.models import Edit

from .conftest import get_image, make_png, queued, run_edit

pytestmark = pytest.mark.django_db


def png_upload(name="photo.png", **kwargs) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, make_png(**kwargs), content_type="image/png")


def post_edit(client, **overrides):
    data = {"prompt": "make it grayscale", "model": "gpt-image-2", "size": "", "image_urls": ""}
    data.setdefault("images", [png_upload()])
    data.update(overrides)
    return client.post(reverse("edit-new"), data)


@pytest.fixture
def alices_edit(alice) -> Edit:
    upload = images.reencode(make_png())
    edit = services.create_edit(
        alice, services.NewEdit("make it grayscale", "gpt-image-2", "", [upload], [])
    )
    run_edit(edit)
    edit.refresh_from_db()
    return edit


def test_the_form_needs_a_login(client):
    response = client.get(reverse("edit-new"))
    assert response.status_code == 302 and response.url.startswith(reverse("login"))


def test_a_valid_submission_creates_the_edit_and_its_task_then_redirects(
    client, alice, django_capture_on_commit_callbacks
):
    client.force_login(alice)
    with django_capture_on_commit_callbacks(execute=True):
        response = post_edit(client, size="1024x1536")
    edit = Edit.objects.get()
    assert response.status_code == 302 and response.url == edit.get_absolute_url()
    assert (edit.owner, edit.prompt, edit.size) == (alice, "make it grayscale", "1024x1536")
    assert edit.inputs.count() == 1
    assert [(task.name, task.args) for task in queued()] == [("start_edit", [edit.pk])]


def test_auto_is_stored_as_no_size(client, alice):
    client.force_login(alice)
    post_edit(client, size="auto")
    assert Edit.objects.get().size == ""


def test_image_urls_are_accepted_one_per_line(client, alice, simulator):
    client.force_login(alice)
    first, second = f"{simulator.url}/samples/square.png", f"{simulator.url}/samples/portrait.png"
    post_edit(client, images=[], image_urls=f"{first}\n\n  {second}  \n")
    edit = Edit.objects.get()
    assert [i.url for i in edit.inputs.all()] == [first, second]
    run_edit(edit)  # fetched when the edit was made, to check them; sent as URLs
    assert simulator.received[-1]["content_type"] == "json"


@pytest.mark.parametrize(
    ("model", "size"), [("gpt-image-1", "1024x1024"), ("dall-e-2", "1024x1024")]
)
def test_urls_for_a_model_that_takes_files_only_are_fetched_and_stored_once(
    client, alice, simulator, model, size
):
    client.force_login(alice)
    url = f"{simulator.url}/samples/square.png"
    post_edit(client, images=[], image_urls=url, model=model, size=size)
    stored = Edit.objects.get().inputs.get()
    assert stored.file and not stored.url and (stored.width, stored.height) == (1024, 1024)
    run_edit(stored.edit)
    sent = simulator.received[-1]
    assert sent["content_type"] == "multipart" and sent["files"]["image"][0]["width"] == 1024


def test_an_upload_that_is_not_an_image_is_refused_and_nothing_is_stored(
    client, alice, stored_files
):
    client.force_login(alice)
    fake = SimpleUploadedFile("notes.png", b"these are not pixels", content_type="image/png")
    response = post_edit(client, images=[fake])
    assert response.status_code == 400
    assert "“notes.png” cannot be used" in response.content.decode()
    assert Edit.objects.count() == 0 and queued() == []
    assert stored_files() == []


def test_a_truncated_png_is_refused(client, alice):
    client.force_login(alice)
    truncated = SimpleUploadedFile("cut.png", make_png(width=200, height=200)[:300])
    response = post_edit(client, images=[truncated])
    assert "“cut.png” cannot be used" in response.content.decode()
    assert Edit.objects.count() == 0


def test_a_size_the_rule_rejects_is_refused_with_its_reason(client, alice, stored_files):
    client.force_login(alice)
    response = post_edit(client, size="1000x1024")
    assert response.status_code == 400
    assert "multiples of 16 (1000 is not)" in response.content.decode()
    custom = post_edit(client, size="custom", custom_size="1000x1024").content.decode()
    # Once in the summary at the top of the form, once under the field: not twice under it.
    assert custom.count("multiples of 16 (1000 is not)") == 2
    assert '<li><a href="#id_custom_size">Custom size</a>: Width and height' in custom
    assert Edit.objects.count() == 0
    assert stored_files() == []


def test_a_size_another_model_does_not_take_is_refused(client, alice):
    client.force_login(alice)
    response = post_edit(client, model="gpt-image-1", size="2048x2048")
    assert "gpt-image-1 accepts these sizes only" in response.content.decode()


def test_nano_banana_drops_the_size(client, alice):
    client.force_login(alice)
    post_edit(client, model="nano-banana", size="2048x2048")
    assert Edit.objects.get().size == ""


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"images": []}, "Add at least one image"),
        ({"prompt": ""}, "This field is required"),
        ({"model": "gpt-image-9"}, "Select a valid choice"),
        ({"image_urls": "ftp://example.com/a.png"}, "must start with http:// or https://"),
        ({"image_urls": "not a url"}, "is not a valid web address"),
        ({"model": "dall-e-2", "images": [png_upload(), png_upload()]}, "at most 1 image"),
        ({"model": "dall-e-2", "prompt": "x" * 1001}, "at most 1,000 characters"),
    ],
)
def test_bad_input_gets_a_specific_message(client, alice, overrides, message):
    client.force_login(alice)
    response = post_edit(client, **overrides)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert Edit.objects.count() == 0


def test_every_bad_image_url_is_named_at_once(client, alice):
    client.force_login(alice)
    urls = "ftp://example.com/a.png\nhttp://127.0.0.1/b.png\nnot a url"
    page = post_edit(client, images=[], image_urls=urls).content.decode()
    assert "“ftp://example.com/a.png” must start with http:// or https://." in page
    assert "“http://127.0.0.1/b.png” cannot be used" in page
    assert "“not a url” is not a valid web address." in page


def test_the_form_needs_a_csrf_token(alice):
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(alice)
    response = post_edit(strict)
    assert response.status_code == 403
    assert Edit.objects.count() == 0


def test_the_edit_page_shows_the_result(client, alice, alices_edit):
    client.force_login(alice)
    page = client.get(alices_edit.get_absolute_url()).content.decode()
    # A WebP preview, linking to the stored result at full size.
    preview_url = reverse("edit-image", args=[alices_edit.pk, "preview", 0])
    result_url = reverse("edit-image", args=[alices_edit.pk, "result", 0])
    assert re.search(rf'<a href="{result_url}">\s*<img src="{preview_url}"', page)
    assert "make it grayscale" in page
    assert 'hx-get="' not in page  # a finished edit does not poll


def test_the_status_fragment_polls_while_active_and_stops_with_286(client, alice):
    client.force_login(alice)
    edit = services.create_edit(
        alice, services.NewEdit("blur", "gpt-image-2", "", [images.reencode(make_png())], [])
    )
    url = reverse("edit-status", args=[edit.pk])
    active = client.get(url, headers={"HX-Request": "true"})
    assert active.status_code == 200
    assert f'hx-get="{url}?seen=' in active.content.decode()
    assert "<html" not in active.content.decode()

    run_edit(edit)
    finished = client.get(url, headers={"HX-Request": "true"})
    assert finished.status_code == 286
    assert "hx-get" not in finished.content.decode()
    assert reverse("edit-image", args=[edit.pk, "result", 0]) in finished.content.decode()


def polled_url(html: str) -> str:
    return re.search(r'hx-get="([^"]+/status/[^"]*)"', html)[1].replace("&amp;", "&")


def test_the_poll_hears_nothing_new_from_one_query_until_the_edit_moves(
    client, alice, django_assert_num_queries
):
    client.force_login(alice)
    edit = services.create_edit(
        alice, services.NewEdit("blur", "gpt-image-2", "", [images.reencode(make_png())], [])
    )
    poll = polled_url(client.get(edit.get_absolute_url()).content.decode())
    with django_assert_num_queries(1):  # the edit; not even the session is read
        unchanged = client.get(poll, headers={"HX-Request": "true"})
    assert unchanged.status_code == 204 and unchanged.content == b""

    edit.mark_running()
    assert client.get(poll, headers={"HX-Request": "true"}).status_code == 200
    submission = edit.submissions.get()
    submission.mark_running()
    moved = client.get(poll, headers={"HX-Request": "true"})
    assert moved.status_code == 200 and "Running since" in moved.content.decode()
    assert polled_url(moved.content.decode()) != poll
    poll = polled_url(moved.content.decode())
    assert client.get(poll, headers={"HX-Request": "true"}).status_code == 204

    submission.mark_retrying("server_error", "The image service failed.", timezone.now())
    retrying = client.get(poll, headers={"HX-Request": "true"})
    assert "retrying" in retrying.content.decode()


def test_only_a_token_the_server_signed_for_that_edit_hears_nothing_new(client, alice, bob):
    client.force_login(alice)
    edit = services.create_edit(
        alice, services.NewEdit("blur", "gpt-image-2", "", [images.reencode(make_png())], [])
    )
    poll = polled_url(client.get(edit.get_absolute_url()).content.decode())
    token = poll.split("?seen=", 1)[1]
    forged = token.replace("queued", "running")
    other = reverse("edit-status", args=[edit.pk + 1])
    for url in (
        f"{poll}x",
        poll.replace(token, forged),
        f"{other}?seen={token}",
        poll.split("?")[0],
    ):
        assert client.get(url, headers={"HX-Request": "true"}).status_code != 204, url

    # Someone else gets the full way, and so a 404 for alice's edit whatever they send...
    client.force_login(bob)
    assert client.get(poll.replace(token, forged)).status_code == 404
    # ...and once her edit moves, her own token no longer answers for it without her.
    client.logout()
    assert client.get(poll).status_code == 204  # still as the page shows it: 1 bit, no data
    edit.mark_running()
    assert client.get(poll).url.startswith(reverse("login"))


def test_a_failed_edit_shows_its_message(client, alice, simulator):
    client.force_login(alice)
    simulator.inject("forbidden")
    edit = services.create_edit(
        alice, services.NewEdit("blur", "gpt-image-2", "", [images.reencode(make_png())], [])
    )
    run_edit(edit)
    response = client.get(reverse("edit-status", args=[edit.pk]))
    assert response.status_code == 286
    assert "refused this edit under its content rules" in response.content.decode()
    page = client.get(edit.get_absolute_url()).content.decode()
    assert "Create share link" not in page  # nothing to share


def test_result_files_are_served_to_the_owner_with_a_download_name(client, alice, alices_edit):
    client.force_login(alice)
    url = reverse("edit-image", args=[alices_edit.pk, "result", 0])
    served = get_image(client, url + "?download=1")
    assert served.status_code == 200
    assert served.content_type == "image/png"
    assert served.app["X-Content-Type-Options"] == "nosniff"
    assert f'filename="edit-{alices_edit.pk}-make-it-grayscale-1.png"' in served.disposition
    thumb = get_image(client, reverse("edit-image", args=[alices_edit.pk, "thumbnail", 0]))
    assert thumb.content_type == "image/webp"
    source = get_image(client, reverse("edit-image", args=[alices_edit.pk, "input", 0]))
    assert source.status_code == 200


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("edit-detail", []),
        ("edit-status", []),
        ("edit-image", ["result", 0]),
        ("edit-image", ["thumbnail", 0]),
        ("edit-image", ["preview", 0]),
        ("edit-image", ["input", 0]),
        ("edit-image", ["input-preview", 0]),
        ("edit-review", []),
        ("team-edit", []),
        ("team-image", ["result", 0]),
        ("team-image", ["input", 0]),
        ("team-image", ["mask", 0]),
    ],
)
def test_another_users_edit_is_404_everywhere(client, bob, alices_edit, name, args):
    client.force_login(bob)
    assert client.get(reverse(name, args=[alices_edit.pk, *args])).status_code == 404


def test_nobody_logged_out_sees_an_edit(client, alices_edit):
    response = client.get(reverse("edit-image", args=[alices_edit.pk, "result", 0]))
    assert response.status_code == 302


def test_an_unknown_image_kind_is_404(client, alice, alices_edit):
    client.force_login(alice)
    assert client.get(reverse("edit-image", args=[alices_edit.pk, "secret", 0])).status_code == 404


def test_the_api_token_never_reaches_a_page(client, alice, alices_edit, settings):
    client.force_login(alice)
    for url in [reverse("edit-new"), alices_edit.get_absolute_url()]:
        assert settings.OPENAI_API_KEY not in client.get(url).content.decode()


def test_pages_carry_a_content_security_policy_with_a_script_nonce(client, alice):
    client.force_login(alice)
    response = client.get(reverse("edit-new"))
    policy = response["Content-Security-Policy"]
    assert "script-src 'self' 'nonce-" in policy
    assert "htmx" in response.content.decode()
    # Every script, style sheet and icon comes from this site, none from a CDN. (Not "no 'cdn'
    # anywhere": the page's random CSRF token spells it now and then.)
    assert not re.search(r'(src|href)="(https?:)?//', response.content.decode())


def test_dall_e_2_needs_a_square_image(client, alice):
    client.force_login(alice)
    response = post_edit(client, model="dall-e-2", images=[png_upload(width=64, height=48)])
    assert "dall-e-2 needs square images; “photo.png” is 64x48" in response.content.decode()
    assert Edit.objects.count() == 0


def test_dall_e_2_gets_its_input_as_png(client, alice):
    client.force_login(alice)
    jpeg = SimpleUploadedFile("sq.jpg", make_png(64, 64, image_format="JPEG"), "image/jpeg")
    post_edit(client, model="dall-e-2", images=[jpeg])
    assert Edit.objects.get().inputs.get().file.name.endswith(".png")


def test_too_many_files_are_refused_before_any_is_decoded(client, alice):
    client.force_login(alice)
    response = post_edit(client, images=[png_upload(f"{n}.png") for n in range(17)])
    assert "At most 16 images can go into one edit; you gave 17" in response.content.decode()
    assert Edit.objects.count() == 0


def noise_png(side: int) -> bytes:
    """Random pixels: a PNG that weighs what its pixels do, before and after re-encoding."""
    image = Image.frombytes("RGB", (side, side), os.urandom(side * side * 3))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=0)
    return buffer.getvalue()


@pytest.mark.local_files  # moto's bucket would keep what is stored in this process's memory
def test_an_edits_images_are_checked_and_stored_without_holding_them_all(alice):
    """One edit may bring 16 images of many megabytes each. tracemalloc sees Python's memory
    (bytes, not Pillow's pixels): what it sees must stay below two images' worth."""
    uploads = [SimpleUploadedFile(f"{n}.png", noise_png(512), "image/png") for n in range(8)]
    data = {"prompt": "make it grayscale", "model": "gpt-image-2", "size": "", "image_urls": ""}
    tracemalloc.start()
    try:
        form = EditForm(data, MultiValueDict({"images": uploads}), owner=alice)
        assert form.is_valid(), form.errors
        edit = services.submit(alice, form.new_edit())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert edit.inputs.count() == 8
    assert peak < 2 * uploads[0].size, f"peak {peak:,} bytes; one image is {uploads[0].size:,}"


def test_the_edit_page_shows_what_the_upstream_reports_it_used(
    client, alice, settings, openai_simulator
):
    openai_simulator.reset()
    settings.OPENAI_BASE_URL = f"{openai_simulator.url}/v1"
    settings.OPENAI_FLAVOUR = "openai"
    upload = images.reencode(make_png())
    edit = services.create_edit(alice, services.NewEdit(
        "blur", "gpt-image-2", "1024x1024", [upload], [], params={"quality": "high"}
    ))  # fmt: skip
    run_edit(edit)
    assert edit.submissions.get().reported["size"] == "1024x1024"

    client.force_login(alice)
    page = client.get(edit.get_absolute_url()).content.decode()
    details = page.split('id="details-heading"', 1)[1]
    assert '<th scope="row">Quality</th><td>high</td><td>high</td>' in details
    assert '<th scope="row">Size</th><td>1024x1024</td><td>1024x1024</td>' in details
    assert "Requests to the image service" in details


def test_an_unexpected_error_gets_a_page_of_its_own(rf):
    from django.views.defaults import server_error

    response = server_error(rf.get("/edits/"))  # rendered without the request's context
    assert response.status_code == 500
    assert "Something went wrong" in response.content.decode()


def test_before_and_after_is_offered_only_for_an_edit_of_one_image(client, alice, alices_edit):
    client.force_login(alice)
    assert "data-compare-handle" in client.get(alices_edit.get_absolute_url()).content.decode()
    two = [images.reencode(make_png()), images.reencode(make_png(80, 60))]
    combined = services.create_edit(alice, services.NewEdit("combine", "gpt-image-2", "", two, []))
    run_edit(combined)
    page = client.get(combined.get_absolute_url()).content.decode()
    assert "Edited image 1" in page and "data-compare-handle" not in page


def test_no_template_syntax_leaks_into_pages(client, alice, alices_edit):
    pages = [client.get(reverse("login"))]
    client.force_login(alice)
    for url in [reverse("edit-new"), reverse("edit-list"), alices_edit.get_absolute_url()]:
        pages.append(client.get(url))
    for page in pages:
        text = page.content.decode()
        assert "{#" not in text and "{%" not in text and "{{" not in text, page.request["PATH_INFO"]


def test_recent_edits_say_how_long_ago_in_words(client, alice, alices_edit):
    # Three minutes back, so a slow fixture cannot move the words on ("a second ago").
    Edit.objects.filter(pk=alices_edit.pk).update(created_at=timezone.now() - timedelta(minutes=3))
    client.force_login(alice)
    page = client.get(reverse("edit-new")).content.decode()
    assert "gpt-image-2 · 3\xa0minutes ago</span>" in page, "not '0 minutes ago' nor a timestamp"


def test_the_top_bar_names_nothing_the_page_uses(logged_in, alice):
    """The top bar's links are named apart from the page's own variables: an edit's page shows
    no "new share link" before one is made."""
    upload = images.reencode(make_png())
    edit = services.create_edit(alice, services.NewEdit("blur", "gpt-image-2", "", [upload], []))
    run_edit(edit)
    page = logged_in.get(edit.get_absolute_url()).content.decode()
    assert "New share link" not in page
    assert f'<a class="nav-link" href="{reverse("edit-new")}">' in page
    current = f'href="{reverse("edit-list")}" aria-current="page"'
    assert current in logged_in.get(reverse("edit-list")).content.decode()
