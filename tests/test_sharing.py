"""Share links: unguessable, read-only, showing only that edit's results (and its inputs when
the owner says so), revocable, expiring, counted, unindexed, and managed by the owner alone."""

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from imageedits.edits import images, services, sharing
from imageedits.edits.models import Edit, ShareLink

from .conftest import get_image, make_png, run_edit

pytestmark = pytest.mark.django_db


@pytest.fixture
def finished(alice) -> Edit:
    upload = images.reencode(make_png())
    edit = services.create_edit(
        alice, services.NewEdit("secret plan: make it sepia", "gpt-image-2", "", [upload], [])
    )
    run_edit(edit)
    return Edit.objects.get(pk=edit.pk)


def share(client, edit, **fields) -> str:
    response = client.post(reverse("edit-share", args=[edit.pk]), fields,
                           headers={"HX-Request": "true"})  # fmt: skip
    page = response.content.decode()
    return page.split('id="new-share-url" type="text" readonly value="', 1)[1].split('"', 1)[0]


@pytest.fixture
def owner(client, alice):
    client.force_login(alice)
    return client


def test_a_link_is_unguessable_and_only_its_hash_is_kept(owner, finished):
    url = share(owner, finished)
    token = url.rstrip("/").rsplit("/", 1)[1]
    assert len(token) >= 43  # 256 bits in URL-safe base64
    link = ShareLink.objects.get()
    assert link.token_hash == ShareLink.hash(token) and token not in link.token_hash
    assert link.token_end == token[-4:]  # enough to tell links apart, nothing to open one


def test_the_next_link_starts_with_the_same_choices(owner, finished):
    response = owner.post(reverse("edit-share", args=[finished.pk]),
                          {"include_inputs": "on", "expires_in_days": "7"},
                          headers={"HX-Request": "true"})  # fmt: skip
    section = response.content.decode()
    assert '<input type="checkbox" name="include_inputs" checked>' in section
    assert '<option value="7" selected>7 days</option>' in section


def test_anyone_with_the_link_sees_the_results_read_only(owner, finished, alice):
    url = share(owner, finished)
    anonymous = Client()
    response = anonymous.get(url)
    page = response.content.decode()
    assert response.status_code == 200
    assert "secret plan: make it sepia" in page
    assert 'alt="Edited image 1"' in page
    assert 'name="robots" content="noindex, nofollow"' in page
    assert 'property="og:image" content="http://testserver/s/' in page
    assert 'property="og:title" content="secret plan: make it sepia"' in page
    assert response["Referrer-Policy"] == "no-referrer"
    assert response["X-Robots-Tag"] == "noindex, nofollow"
    # Nothing else of the owner's: no name, no email, no other pages, no forms.
    for private in [alice.username, alice.email, "Delete", "Run again", "<form", "Share links"]:
        assert private not in page
    image = get_image(anonymous, f"{url}result/0/")
    assert image.status_code == 200 and image.content_type == "image/png"
    assert image.app["Referrer-Policy"] == "no-referrer"


def test_inputs_are_shown_only_when_the_owner_chose_so(owner, finished):
    without = share(owner, finished)
    assert "Input image 1" not in Client().get(without).content.decode()
    assert Client().get(f"{without}input/0/").status_code == 404
    with_inputs = share(owner, finished, include_inputs="on")
    assert "Input image 1" in Client().get(with_inputs).content.decode()
    assert get_image(Client(), f"{with_inputs}input/0/").status_code == 200


def test_a_link_shows_no_other_edit(owner, finished, alice):
    other = Edit.objects.create(owner=alice, prompt="another private edit", model="gpt-image-2")
    url = share(owner, finished)
    assert "another private edit" not in Client().get(url).content.decode()
    assert other.pk != finished.pk


def test_a_revoked_link_is_404(owner, finished):
    url = share(owner, finished)
    link = ShareLink.objects.get()
    owner.post(reverse("edit-share-revoke", args=[finished.pk, link.pk]))
    gone = Client().get(url)
    assert gone.status_code == 404
    assert "Its owner revoked it, or it expired" in gone.content.decode()
    assert Client().get(f"{url}result/0/").status_code == 404


def test_an_expired_link_is_404(owner, finished):
    url = share(owner, finished, expires_in_days="1")
    link = ShareLink.objects.get()
    assert link.expires_at > timezone.now() + timedelta(hours=23)
    assert Client().get(url).status_code == 200
    ShareLink.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert Client().get(url).status_code == 404


def test_views_are_counted(owner, finished):
    url = share(owner, finished)
    for _ in range(3):
        Client().get(url)
    assert ShareLink.objects.get().views == 3
    page = owner.get(finished.get_absolute_url()).content.decode()
    assert "3 views" in page and "Active" in page


def test_unknown_tokens_are_404(client):
    assert client.get(reverse("shared", args=["x" * 43])).status_code == 404
    assert client.get(reverse("shared", args=["x" * 500])).status_code == 404


def test_without_htmx_the_link_comes_back_in_a_message(owner, finished):
    response = owner.post(reverse("edit-share", args=[finished.pk]), follow=True)
    assert "Share link made (shown only now): http://testserver/s/" in response.content.decode()


def test_another_person_cannot_manage_my_links(client, bob, finished):
    link, _ = sharing.create(finished, include_inputs=False, expires_in_days=None)
    client.force_login(bob)
    assert client.post(reverse("edit-share", args=[finished.pk])).status_code == 404
    revoke = reverse("edit-share-revoke", args=[finished.pk, link.pk])
    assert client.post(revoke).status_code == 404
    link.refresh_from_db()
    assert link.is_active and ShareLink.objects.count() == 1


def test_managing_links_needs_a_csrf_token(alice, finished):
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(alice)
    assert strict.post(reverse("edit-share", args=[finished.pk])).status_code == 403
    assert ShareLink.objects.count() == 0


def test_every_live_link_of_an_edit_is_listed_whatever_became_of_the_edit(owner, finished):
    share(owner, finished)
    Edit.objects.filter(pk=finished.pk).update(status=Edit.Status.FAILED)  # e.g. run again
    finished.results.all().delete()
    page = owner.get(finished.get_absolute_url()).content.decode()
    assert 'aria-label="Share links"' in page and "Revoke" in page
    assert "This edit has no result to share." in page


def test_the_share_form_arrives_with_the_result(owner, alice):
    upload = images.reencode(make_png())
    edit = services.create_edit(alice, services.NewEdit("p", "gpt-image-2", "", [upload], []))
    page = owner.get(edit.get_absolute_url()).content.decode()
    assert "A link to share this edit can be made once it has a result." in page
    run_edit(edit)
    poll = owner.get(reverse("edit-status", args=[edit.pk]), headers={"HX-Request": "true"})
    fragment = poll.content.decode()
    assert (
        '<section id="share" class="share" aria-labelledby="share-heading" hx-swap-oob="true">'
        in (fragment)
    )
    assert "Create share link" in fragment
