"""Pages show images as WebP at about the size they show them (issue 14: a history page of 48
edits under 1.5 MB); the stored images stay as they are, for the link and the download."""

import io
import re

import pytest
from django.urls import reverse
from PIL import Image

from imageedits.edits import images, services, sharing
from imageedits.edits.models import Edit, Team

from .conftest import get_image, make_png, run_edit

pytestmark = pytest.mark.django_db


@pytest.fixture
def large_edit(alice) -> Edit:
    upload = images.reencode(make_png(1024, 768))
    edit = services.create_edit(alice, services.NewEdit("sepia", "gpt-image-2", "", [upload], []))
    run_edit(edit)
    edit.refresh_from_db()
    assert edit.status == Edit.Status.SUCCEEDED, edit.error_message
    return edit


def served_image(client, url: str) -> Image.Image:
    served = get_image(client, url)
    assert served.status_code == 200
    return Image.open(io.BytesIO(served.content))


def test_the_gallery_shows_webp_thumbnails_no_larger_than_its_cards(logged_in, large_edit):
    page = logged_in.get(reverse("edit-list")).content.decode()
    thumbnail_url = reverse("edit-image", args=[large_edit.pk, "thumbnail", 0])
    assert f'<img src="{thumbnail_url}"' in page
    result = large_edit.results.get()
    assert f'width="{result.width}" height="{result.height}" loading="lazy"' in page
    thumbnail = served_image(logged_in, thumbnail_url)
    assert thumbnail.format == "WEBP" and max(thumbnail.size) == images.THUMBNAIL_SIDE


def test_the_edit_page_shows_webp_previews_linking_to_the_full_png(logged_in, large_edit):
    page = logged_in.get(large_edit.get_absolute_url()).content.decode()
    result_url = reverse("edit-image", args=[large_edit.pk, "result", 0])
    preview_url = reverse("edit-image", args=[large_edit.pk, "preview", 0])
    input_preview_url = reverse("edit-image", args=[large_edit.pk, "input-preview", 0])
    shown = re.search(r'<a href="([^"]+)">\s*<img src="([^"]+)" alt="Edited image 1"', page)
    assert shown.groups() == (result_url, preview_url)
    assert f'<img src="{input_preview_url}" alt="Input image 1"' in page
    assert f'<img src="{input_preview_url}" alt="" class="compare-before"' in page

    for url in (preview_url, input_preview_url):
        preview = served_image(logged_in, url)
        assert preview.format == "WEBP" and max(preview.size) == images.PREVIEW_SIDE
    full = served_image(logged_in, result_url)
    assert full.format == "PNG" and full.size == (1024, 768)
    download = get_image(logged_in, result_url + "?download=1")
    assert download.content_type == "image/png" and "attachment" in download.disposition


def test_images_stored_before_previews_existed_are_shown_as_stored(logged_in, large_edit):
    large_edit.results.update(preview="")
    large_edit.inputs.update(preview="")
    for kind, stored in (("preview", "result"), ("input-preview", "input")):
        shown = get_image(logged_in, reverse("edit-image", args=[large_edit.pk, kind, 0]))
        full = get_image(logged_in, reverse("edit-image", args=[large_edit.pk, stored, 0]))
        assert shown.status_code == 200 and shown.content == full.content


def test_a_shared_link_shows_webp_previews_linking_to_the_full_png(client, large_edit):
    _, token = sharing.create(large_edit, include_inputs=True, expires_in_days=None)
    page = client.get(reverse("shared", args=[token])).content.decode()
    result_url = reverse("shared-image", args=[token, "result", 0])
    preview_url = reverse("shared-image", args=[token, "preview", 0])
    input_preview_url = reverse("shared-image", args=[token, "input-preview", 0])
    shown = re.search(r'<a href="([^"]+)">\s*<img src="([^"]+)" alt="Edited image 1"', page)
    assert shown.groups() == (result_url, preview_url)
    assert f'<img src="{input_preview_url}" alt="Input image 1"' in page
    for url in (preview_url, input_preview_url):
        preview = served_image(client, url)
        assert preview.format == "WEBP" and max(preview.size) == images.PREVIEW_SIDE
    assert served_image(client, result_url).size == (1024, 768)


def test_a_link_without_inputs_serves_no_input_preview(client, large_edit):
    _, token = sharing.create(large_edit, include_inputs=False, expires_in_days=None)
    url = reverse("shared-image", args=[token, "input-preview", 0])
    assert client.get(url).status_code == 404


def test_a_teammate_sees_webp_previews_linking_to_the_full_png(client, bob, large_edit):
    Team.objects.create(name="Design").members.add(large_edit.owner, bob)
    Edit.objects.filter(pk=large_edit.pk).update(shared_with_team=True)
    client.force_login(bob)
    page = client.get(reverse("team-edit", args=[large_edit.pk])).content.decode()
    result_url = reverse("team-image", args=[large_edit.pk, "result", 0])
    preview_url = reverse("team-image", args=[large_edit.pk, "preview", 0])
    shown = re.search(r'<a href="([^"]+)">\s*<img src="([^"]+)" alt="Edited image 1"', page)
    assert shown.groups() == (result_url, preview_url)
    assert served_image(client, preview_url).format == "WEBP"
