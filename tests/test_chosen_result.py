"""The chosen result: of an edit's several results, the one its owner picked (the first to
arrive until then). The history card, share links and the team's view show it first."""

import pytest
from django.urls import reverse

from imageedits.edits import images, services, sharing
from imageedits.edits.models import Edit, Team

from .conftest import make_png, run_edit

pytestmark = pytest.mark.django_db(transaction=True)


def finished(owner, candidates=3) -> Edit:
    upload = images.reencode(make_png())
    new = services.NewEdit("make it sepia", "gpt-image-2", "", [upload], [], candidates=candidates)
    edit = services.create_edit(owner, new)
    run_edit(edit)
    return Edit.objects.get(pk=edit.pk)


def test_the_first_result_is_chosen_until_the_owner_picks_another(client, alice, simulator):
    edit = finished(alice)
    assert edit.chosen_position == 0
    client.force_login(alice)
    response = client.post(reverse("edit-choose", args=[edit.pk, 2]), follow=True)
    assert "Result 3 is now the chosen one." in response.content.decode()
    edit.refresh_from_db()
    assert edit.chosen_position == 2
    assert [result.position for result in edit.results_chosen_first()] == [2, 0, 1]

    history = client.get(reverse("edit-list")).content.decode()
    assert reverse("edit-image", args=[edit.pk, "thumbnail", 2]) in history
    assert reverse("edit-image", args=[edit.pk, "thumbnail", 0]) not in history


def test_the_history_card_follows_a_new_choice(client, alice, simulator):
    """The card is cached: its key has to change with the choice."""
    edit = finished(alice)
    client.force_login(alice)
    assert (
        reverse("edit-image", args=[edit.pk, "thumbnail", 0])
        in client.get(reverse("edit-list")).content.decode()
    )
    client.post(reverse("edit-choose", args=[edit.pk, 1]))
    history = client.get(reverse("edit-list")).content.decode()
    assert reverse("edit-image", args=[edit.pk, "thumbnail", 1]) in history


def test_a_failed_first_candidate_leaves_the_first_result_that_came_chosen(alice, simulator):
    simulator.inject("forbidden", times=1)  # the first request sent fails for good
    edit = finished(alice, candidates=2)
    positions = list(edit.results.values_list("position", flat=True))
    assert len(positions) == 1
    assert edit.chosen_position == positions[0]


def test_only_an_existing_result_can_be_chosen(client, alice, simulator):
    edit = finished(alice, candidates=2)
    client.force_login(alice)
    assert client.post(reverse("edit-choose", args=[edit.pk, 5])).status_code == 404
    assert client.get(reverse("edit-choose", args=[edit.pk, 1])).status_code == 405
    assert edit.choose(7) is False
    edit.refresh_from_db()
    assert edit.chosen_position == 0


def test_someone_else_cannot_choose(client, alice, bob, simulator):
    edit = finished(alice, candidates=2)
    client.force_login(bob)
    assert client.post(reverse("edit-choose", args=[edit.pk, 1])).status_code == 404
    edit.refresh_from_db()
    assert edit.chosen_position == 0


def test_share_links_and_the_team_show_the_chosen_result_first(client, alice, bob, simulator):
    edit = finished(alice)
    edit.choose(1)
    _, token = sharing.create(edit, include_inputs=False, expires_in_days=None)
    shared = client.get(reverse("shared", args=[token])).content.decode()
    first, second = (
        reverse("shared-image", args=[token, "result", 1]),
        reverse("shared-image", args=[token, "result", 0]),
    )
    # Each shown as its preview, linking to the full image.
    assert shared.index(f'<a href="{first}"') < shared.index(f'<a href="{second}"')
    assert f'<meta property="og:image" content="http://testserver{first}">' in shared

    team = Team.objects.create(name="studio")
    team.members.add(alice, bob)
    Edit.objects.filter(pk=edit.pk).update(shared_with_team=True)
    client.force_login(bob)
    page = client.get(reverse("team-edit", args=[edit.pk])).content.decode()
    first, second = (
        reverse("team-image", args=[edit.pk, "result", 1]),
        reverse("team-image", args=[edit.pk, "result", 0]),
    )
    assert page.index(f'<a href="{first}"') < page.index(f'<a href="{second}"')
    team_history = client.get(reverse("edit-list"), {"tab": "team"}).content.decode()
    assert reverse("team-image", args=[edit.pk, "thumbnail", 1]) in team_history
