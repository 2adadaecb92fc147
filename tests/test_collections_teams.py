"""Stars, collections, bulk actions (delete after asking, file into a collection, one ZIP of
results) and team galleries: exactly the edits shared with my team, read-only."""

import io
import zipfile

import pytest
from django.urls import reverse

from imageedits.edits import images, services
from imageedits.edits.models import Collection, Edit, Team

from .conftest import get_image, make_png, run_edit

pytestmark = pytest.mark.django_db


def finished(owner, prompt="make it sepia") -> Edit:
    upload = images.reencode(make_png())
    edit = services.create_edit(owner, services.NewEdit(prompt, "gpt-image-2", "", [upload], []))
    run_edit(edit)
    return Edit.objects.get(pk=edit.pk)


def cards(client, **query) -> list[int]:
    page = client.get(reverse("edit-list"), query).content.decode()
    return [int(part.split('"', 1)[0]) for part in page.split('id="card-')[1:]]


def test_star_an_edit_and_filter_by_stars(logged_in, alice):
    one, two = finished(alice, "one"), finished(alice, "two")
    response = logged_in.post(reverse("edit-star", args=[one.pk]), headers={"HX-Request": "true"})
    assert 'aria-pressed="true"' in response.content.decode()
    assert cards(logged_in, starred="on") == [one.pk]
    logged_in.post(reverse("edit-star", args=[one.pk]))
    assert cards(logged_in, starred="on") == []
    assert two.pk in cards(logged_in)


def test_collections_hold_edits_and_can_be_picked_before_submitting(logged_in, alice):
    response = logged_in.post(reverse("collection-new"), {"name": "Spring campaign"})
    board = Collection.objects.get(owner=alice, name="Spring campaign")
    assert response.url == reverse("edit-list")  # back to the edits to file into it
    image = make_png()
    from django.core.files.uploadedfile import SimpleUploadedFile

    logged_in.post(reverse("edit-new"), {
        "prompt": "for the campaign", "model": "gpt-image-2", "size": "auto",
        "images": [SimpleUploadedFile("a.png", image, "image/png")], "collection": board.pk,
    })  # fmt: skip
    other = finished(alice, "not in it")
    filed = Edit.objects.get(prompt="for the campaign")
    assert cards(logged_in, collection=board.pk) == [filed.pk]
    assert other.pk not in cards(logged_in, collection=board.pk)


def test_someone_elses_collection_cannot_be_used(client, alice, bob):
    board = Collection.objects.create(owner=alice, name="Alice's")
    edit = finished(bob)
    client.force_login(bob)
    response = client.post(reverse("edit-bulk"), {"selected": [edit.pk], "action": "collect",
                                                  "collection": board.pk})  # fmt: skip
    assert response.status_code == 404
    assert not board.edits.exists()


def test_bulk_file_into_a_collection(logged_in, alice):
    board = Collection.objects.create(owner=alice, name="Board")
    a, b, c = finished(alice, "a"), finished(alice, "b"), finished(alice, "c")
    logged_in.post(reverse("edit-bulk"), {"selected": [a.pk, c.pk], "action": "collect",
                                          "collection": board.pk})  # fmt: skip
    assert set(board.edits.values_list("pk", flat=True)) == {a.pk, c.pk}
    assert b.pk not in cards(logged_in, collection=board.pk)


def test_bulk_download_is_one_zip_of_their_results(logged_in, alice, bob):
    mine = [finished(alice, f"edit {n}") for n in range(3)]
    theirs = finished(bob, "bob's")
    response = logged_in.post(reverse("edit-bulk"), {
        "selected": [e.pk for e in mine] + [theirs.pk], "action": "zip",
    })  # fmt: skip
    assert response["Content-Type"] == "application/zip"
    assert 'filename="imageedits-results.zip"' in response["Content-Disposition"]
    bundle = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    assert sorted(bundle.namelist()) == sorted(
        f"edit-{e.pk}-edit-{n}-1.png" for n, e in enumerate(mine)
    )
    with mine[0].results.get().file.open("rb") as stored:
        assert bundle.read(f"edit-{mine[0].pk}-edit-0-1.png") == stored.read()


def test_bulk_delete_asks_first_then_deletes_with_files(
    logged_in, alice, bob, stored_files, django_capture_on_commit_callbacks
):
    doomed = [finished(alice, "x"), finished(alice, "y")]
    kept = finished(bob, "bob keeps this")
    selected = [e.pk for e in doomed] + [kept.pk]
    asking = logged_in.post(reverse("edit-bulk"), {"selected": selected, "action": "delete"})
    assert "Delete 2 edits?" in asking.content.decode()
    assert Edit.objects.count() == 3
    with django_capture_on_commit_callbacks(execute=True):
        logged_in.post(reverse("edit-bulk"), {"selected": selected, "action": "delete",
                                              "confirmed": "1"})  # fmt: skip
    assert list(Edit.objects.all()) == [kept]
    assert len(stored_files()) == 5  # bob's input, result, thumbnail and two previews


def test_nothing_ticked_says_so(logged_in):
    response = logged_in.post(reverse("edit-bulk"), {"action": "zip"}, follow=True)
    assert '<li class="message error" role="alert">Tick at least one edit first.</li>' in (
        response.content.decode()
    )


# --- Teams ------------------------------------------------------------------------------------


@pytest.fixture
def team(alice, bob):
    crew = Team.objects.create(name="Design")
    crew.members.add(alice, bob)
    return crew


def test_the_team_tab_shows_exactly_what_the_team_shared(client, alice, bob, team,
                                                         django_user_model):  # fmt: skip
    shared = finished(bob, "bob shares this")
    finished(bob, "bob keeps this")
    outsider = django_user_model.objects.create_user("carol", password="x")
    carol_edit = finished(outsider, "carol is not in the team")
    Edit.objects.filter(pk__in=[shared.pk, carol_edit.pk]).update(shared_with_team=True)
    mine = finished(alice, "alice's own")
    Edit.objects.filter(pk=mine.pk).update(shared_with_team=True)

    client.force_login(alice)
    assert cards(client, tab="team") == [mine.pk, shared.pk]
    page = client.get(reverse("edit-list"), {"tab": "team"}).content.decode()
    assert "by bob" in page and "by you" in page
    assert f'href="{mine.get_absolute_url()}"' in page  # her own opens as hers
    assert f'href="{reverse("team-edit", args=[shared.pk])}"' in page
    assert "Design: alice, bob." in page  # who sees what is shared with the team
    detail = client.get(reverse("team-edit", args=[shared.pk]))
    assert f"Edit {shared.pk} by bob" in detail.content.decode()
    assert (
        get_image(client, reverse("team-image", args=[shared.pk, "result", 0])).status_code == 200
    )
    # Read-only: the owner's own pages stay the owner's.
    assert client.get(shared.get_absolute_url()).status_code == 404


def test_without_a_team_nothing_of_anyone_else_is_visible(client, alice, bob):
    shared = finished(bob, "shared, but alice has no team")
    Edit.objects.filter(pk=shared.pk).update(shared_with_team=True)
    client.force_login(alice)
    assert cards(client, tab="team") == []
    assert client.get(reverse("team-edit", args=[shared.pk])).status_code == 404
    assert client.get(reverse("team-image", args=[shared.pk, "result", 0])).status_code == 404


def test_the_owner_switches_team_sharing(client, alice, bob, team):
    edit = finished(alice, "to share")
    client.force_login(alice)
    client.post(reverse("edit-team-share", args=[edit.pk]))
    assert Edit.objects.get(pk=edit.pk).shared_with_team
    assert cards(client, tab="team") == [edit.pk]  # the owner sees what the team sees
    client.force_login(bob)
    assert client.post(reverse("edit-team-share", args=[edit.pk])).status_code == 404
    assert cards(client, tab="team") == [edit.pk]


@pytest.mark.parametrize("name", ["edit-star", "edit-team-share"])
def test_another_persons_star_and_team_urls_are_404(client, alice, bob, name):
    edit = finished(alice)
    client.force_login(bob)
    assert client.post(reverse(name, args=[edit.pk])).status_code == 404
