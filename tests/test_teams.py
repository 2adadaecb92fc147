"""Teams in the app: making one, inviting by a link that expires and works once, roles, remixing
a teammate's edit, reviewing with comments and @mentions, the feed, and notifications.

alice owns the team, bob is a member, charlie is in no team."""

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from imageedits.edits import images, services, teams
from imageedits.edits.models import (
    Activity,
    Comment,
    Edit,
    Invitation,
    Membership,
    Notification,
    Review,
    Team,
)

from .conftest import get_image, make_png, run_edit

pytestmark = pytest.mark.django_db


def finished(owner, prompt="make it sepia", shared=False) -> Edit:
    upload = images.reencode(make_png())
    edit = services.create_edit(owner, services.NewEdit(prompt, "gpt-image-2", "", [upload], []))
    run_edit(edit)
    Edit.objects.filter(pk=edit.pk).update(shared_with_team=shared)
    return Edit.objects.get(pk=edit.pk)


@pytest.fixture
def charlie(django_user_model):
    return django_user_model.objects.create_user("charlie", "charlie@example.com", "c-password")


@pytest.fixture
def team(alice, bob):
    crew = Team.objects.create(name="Design")
    Membership.objects.create(team=crew, user=alice, role=Membership.Role.OWNER)
    crew.members.add(bob)  # the plain M2M still works: a member
    return crew


def membership(team, user) -> Membership:
    return Membership.objects.get(team=team, user=user)


def messages_of(response) -> str:
    return response.content.decode()


# --- Making a team and its roles --------------------------------------------------------------


def test_a_person_makes_a_team_and_owns_it(client, alice):
    client.force_login(alice)
    response = client.post(reverse("team-list"), {"name": "  Brand   team "})
    team = Team.objects.get(name="Brand team")
    assert response.url == reverse("team-detail", args=[team.pk])
    assert membership(team, alice).role == "owner"
    page = client.get(response.url).content.decode()
    assert "alice (you)" in page and "owner" in page
    assert list(alice.teams.all()) == [team]  # user.teams works through the memberships


def test_a_team_needs_a_free_name(client, alice, team):
    client.force_login(alice)
    response = client.post(reverse("team-list"), {"name": "Design"}, follow=True)
    assert "There is already a team called “Design”" in messages_of(response)
    response = client.post(reverse("team-list"), {"name": "   "}, follow=True)
    assert "Give the team a name." in messages_of(response)
    assert Team.objects.count() == 1


def test_the_team_page_lists_members_with_roles(client, alice, bob, team):
    client.force_login(bob)
    page = client.get(reverse("team-detail", args=[team.pk])).content.decode()
    assert "<td>alice</td>\n          <td>owner</td>" in page
    assert "<td>bob (you)</td>\n          <td>member</td>" in page
    assert "Invite someone" not in page  # owners' controls only for owners


def test_an_owner_promotes_and_removes_members(client, alice, bob, team):
    client.force_login(alice)
    client.post(
        reverse("team-member-role", args=[team.pk, membership(team, bob).pk]), {"role": "owner"}
    )
    assert membership(team, bob).is_owner
    client.post(reverse("team-member-remove", args=[team.pk, membership(team, bob).pk]))
    assert list(team.members.all()) == [alice]


def test_a_member_leaves(client, bob, team):
    client.force_login(bob)
    response = client.post(reverse("team-leave", args=[team.pk]))
    assert response.url == reverse("team-list")
    assert not team.members.filter(pk=bob.pk).exists()


def test_the_last_owner_cannot_leave_without_handing_over(client, alice, bob, team):
    client.force_login(alice)
    response = client.post(reverse("team-leave", args=[team.pk]), follow=True)
    assert "The team&#x27;s last owner cannot leave" in messages_of(response)
    response = client.post(
        reverse("team-member-role", args=[team.pk, membership(team, alice).pk]),
        {"role": "member"},
        follow=True,
    )
    assert "The team needs an owner" in messages_of(response)
    assert membership(team, alice).is_owner
    client.post(
        reverse("team-member-role", args=[team.pk, membership(team, bob).pk]), {"role": "owner"}
    )
    client.post(reverse("team-leave", args=[team.pk]))
    assert list(team.members.all()) == [bob]


def test_an_owner_sets_the_monthly_budget(client, alice, team):
    client.force_login(alice)
    client.post(reverse("team-budget", args=[team.pk]), {"monthly_budget": "25.50"})
    team.refresh_from_db()
    assert str(team.monthly_budget) == "25.50"
    response = client.post(reverse("team-budget", args=[team.pk]), {"monthly_budget": "-3"})
    assert response.status_code == 400
    assert "greater than or equal to 0" in messages_of(response)
    client.post(reverse("team-budget", args=[team.pk]), {"monthly_budget": ""})
    team.refresh_from_db()
    assert team.monthly_budget is None  # no limit


# --- Scoping: non-members get 404 everywhere, members 403 for owners' actions ----------------


def team_urls(team, member) -> list[tuple[str, str]]:
    """(method, url) of every team URL."""
    return [
        ("get", reverse("team-detail", args=[team.pk])),
        ("get", reverse("team-feed", args=[team.pk])),
        ("post", reverse("team-leave", args=[team.pk])),
        *owner_urls(team, member),
    ]


def owner_urls(team, member) -> list[tuple[str, str]]:
    return [
        ("post", reverse("team-invite", args=[team.pk])),
        ("post", reverse("team-budget", args=[team.pk])),
        ("post", reverse("team-member-remove", args=[team.pk, member.pk])),
        ("post", reverse("team-member-role", args=[team.pk, member.pk])),
    ]


def test_every_team_url_is_404_for_a_non_member(client, alice, bob, charlie, team):
    client.force_login(charlie)
    for method, url in team_urls(team, membership(team, bob)):
        assert getattr(client, method)(url, {"who": "charlie", "role": "owner"}).status_code == (
            404
        ), url
    assert team.members.count() == 2


def test_owners_actions_are_403_for_a_member(client, alice, bob, charlie, team):
    client.force_login(bob)
    for method, url in owner_urls(team, membership(team, alice)):
        response = getattr(client, method)(
            url, {"who": "charlie", "role": "member", "monthly_budget": "1"}
        )
        assert response.status_code == 403, url
    assert membership(team, alice).is_owner and not Invitation.objects.exists()


def test_a_member_of_another_team_cannot_touch_this_ones_members(client, alice, bob, charlie, team):
    other = teams.create_team(charlie, "Other")
    client.force_login(charlie)
    url = reverse("team-member-remove", args=[other.pk, membership(team, bob).pk])
    assert client.post(url).status_code == 404
    assert team.members.filter(pk=bob.pk).exists()


def test_review_urls_are_404_for_someone_who_cannot_see_the_edit(client, bob, charlie, team):
    edit = finished(bob, shared=True)
    client.force_login(charlie)
    assert client.get(reverse("edit-review", args=[edit.pk])).status_code == 404
    url = reverse("edit-comment", args=[edit.pk])
    assert client.post(url, {"text": "hi"}).status_code == 404
    url = reverse("edit-review-status", args=[edit.pk])
    assert client.post(url, {"status": "approved"}).status_code == 404
    assert not Comment.objects.exists() and not Review.objects.exists()


def test_review_urls_are_404_for_a_teammate_once_the_edit_is_unshared(client, alice, bob, team):
    edit = finished(bob, shared=False)
    client.force_login(alice)
    assert client.get(reverse("edit-review", args=[edit.pk])).status_code == 404
    assert client.post(reverse("edit-comment", args=[edit.pk]), {"text": "x"}).status_code == 404


def test_team_urls_need_a_log_in(client, team, bob):
    for method, url in team_urls(team, membership(team, bob)):
        response = getattr(client, method)(url)
        assert response.status_code == 302 and response.url.startswith("/login/"), url
    assert client.get(reverse("notifications")).status_code == 302


# --- Invitations ------------------------------------------------------------------------------


def invite(client, team, who) -> str:
    """Invite `who` as the logged-in owner; the link's path."""
    response = client.post(reverse("team-invite", args=[team.pk]), {"who": who})
    page = response.content.decode()
    assert response.status_code == 200, page
    url = page.split('id="new-invite-url" type="text" readonly value="', 1)[1].split('"', 1)[0]
    return url.removeprefix("http://testserver")


def test_an_invitation_by_username_is_accepted_once(client, alice, charlie, team):
    client.force_login(alice)
    link = invite(client, team, "charlie")
    invitation = Invitation.objects.get()
    assert invitation.token_hash != link.split("/")[-2]  # only the hash is kept
    assert invitation.expires_at - timezone.now() > timedelta(days=6, hours=23)
    note = Notification.objects.get(recipient=charlie)
    assert note.text == "alice invited you to join Design." and link not in note.url

    client.force_login(charlie)
    assert "Join Design?" in client.get(link).content.decode()
    response = client.post(link, {"answer": "accept"})
    assert response.url == reverse("team-detail", args=[team.pk])
    assert membership(team, charlie).role == "member"
    again = client.post(link, {"answer": "accept"}, follow=True)
    assert "This invitation has already been used." in messages_of(again)
    assert "already been used" in client.get(link).content.decode()


def test_an_invitation_for_one_account_is_404_for_another(client, alice, bob, charlie, team):
    client.force_login(alice)
    Membership.objects.filter(team=team, user=bob).delete()
    link = invite(client, team, "bob")
    client.force_login(charlie)
    assert client.get(link).status_code == 404
    assert client.post(link, {"answer": "accept"}).status_code == 404
    assert not team.members.filter(pk=charlie.pk).exists()


def test_an_invitation_by_email_without_an_account_is_the_links_holders(
    client, alice, team, django_user_model
):
    client.force_login(alice)
    link = invite(client, team, "dora@example.org")
    assert Invitation.objects.get().invitee is None
    dora = django_user_model.objects.create_user("dora", password="x")
    client.force_login(dora)
    client.post(link, {"answer": "accept"})
    assert team.members.filter(pk=dora.pk).exists()


def test_an_invitation_by_email_finds_the_account(client, alice, charlie, team):
    client.force_login(alice)
    invite(client, team, "Charlie@Example.com")
    assert Invitation.objects.get().invitee == charlie


def test_an_expired_invitation_says_so(client, alice, charlie, team):
    client.force_login(alice)
    link = invite(client, team, "charlie")
    client.force_login(charlie)
    Invitation.objects.update(expires_at=timezone.now() - timedelta(seconds=1))  # 7 days on
    assert "This invitation has expired" in client.get(link).content.decode()
    response = client.post(link, {"answer": "accept"}, follow=True)
    assert "This invitation has expired: ask for a new one." in messages_of(response)
    assert not team.members.filter(pk=charlie.pk).exists()


def test_an_unknown_invitation_link_is_404(client, charlie):
    client.force_login(charlie)
    assert client.get(reverse("invitation", args=["not-a-token"])).status_code == 404
    assert client.get(reverse("invitation", args=["x" * 101])).status_code == 404


def test_a_declined_invitation_cannot_be_accepted(client, alice, charlie, team):
    client.force_login(alice)
    link = invite(client, team, "charlie")
    client.force_login(charlie)
    client.post(link, {"answer": "decline"})
    response = client.post(link, {"answer": "accept"}, follow=True)
    assert "already been used" in messages_of(response)
    assert not team.members.filter(pk=charlie.pk).exists()


def test_the_invitee_answers_from_the_teams_page(client, alice, charlie, bob, team):
    client.force_login(alice)
    invite(client, team, "charlie")
    invitation = Invitation.objects.get()
    client.force_login(bob)  # not for bob: 404
    url = reverse("invitation-answer", args=[invitation.pk])
    assert client.post(url, {"answer": "accept"}).status_code == 404
    client.force_login(charlie)
    assert "alice invited you to" in client.get(reverse("team-list")).content.decode()
    client.post(url, {"answer": "accept"})
    assert team.members.filter(pk=charlie.pk).exists()


@pytest.mark.parametrize(
    ("who", "problem"),
    [
        ("", "Type the username or e-mail address"),
        ("nobody", "Nobody has the username “nobody”"),
        ("bob", "bob is already in Design."),
        ("not@an", "“not@an” is not an e-mail address."),
    ],
)
def test_bad_invitations_are_refused_with_a_reason(client, alice, bob, team, who, problem):
    client.force_login(alice)
    response = client.post(reverse("team-invite", args=[team.pk]), {"who": who}, follow=True)
    assert problem in messages_of(response)
    assert not Invitation.objects.exists()


# --- Remix ------------------------------------------------------------------------------------


def test_a_teammates_edit_shows_its_inputs_results_and_downloads(client, alice, bob, team):
    edit = finished(bob, "bob's sepia", shared=True)
    client.force_login(alice)
    page = client.get(reverse("team-edit", args=[edit.pk])).content.decode()
    assert reverse("team-image", args=[edit.pk, "input-preview", 0]) in page
    assert f"{reverse('team-image', args=[edit.pk, 'result', 0])}?download=1" in page
    assert f"?from_result={edit.pk}&amp;position=0" in page and f"?reuse={edit.pk}" in page
    served = get_image(client, reverse("team-image", args=[edit.pk, "result", 0]) + "?download=1")
    assert served.status_code == 200
    assert f"edit-{edit.pk}-bobs-sepia-1.png" in served.disposition
    assert get_image(client, reverse("team-image", args=[edit.pk, "input", 0])).status_code == 200
    # Only the model's output as shown: never the raw output of a masked edit.
    assert client.get(reverse("team-image", args=[edit.pk, "raw", 0])).status_code == 404


def test_edit_this_result_of_a_teammate_makes_an_own_edit_with_its_lineage(
    client, alice, bob, team
):
    original = finished(bob, "bob's original", shared=True)
    client.force_login(alice)
    form = client.get(reverse("edit-new"), {"from_result": original.pk, "position": 0})
    page = form.content.decode()
    assert f'value="result-{original.pk}-0"' in page
    assert reverse("team-image", args=[original.pk, "result", 0]) in page  # the preview shows
    client.post(
        reverse("edit-new"),
        {
            "prompt": "alice's take",
            "model": "gpt-image-2",
            "size": "auto",
            "carry": [f"result-{original.pk}-0"],
        },
    )
    remix = Edit.objects.get(prompt="alice's take")
    assert remix.owner == alice and remix.parent == original
    detail = client.get(remix.get_absolute_url()).content.decode()
    assert f'<a href="{reverse("team-edit", args=[original.pk])}">Edit {original.pk}</a>' in detail


def test_reuse_settings_of_a_teammates_edit_carries_its_inputs_and_records_it(
    client, alice, bob, team
):
    original = finished(bob, "bob's settings", shared=True)
    client.force_login(alice)
    page = client.get(reverse("edit-new"), {"reuse": original.pk}).content.decode()
    assert "bob&#x27;s settings" in page
    assert f'value="input-{original.pk}-0"' in page
    assert f'name="reused_from" value="{original.pk}"' in page
    client.post(
        reverse("edit-new"),
        {
            "prompt": "bob's settings",
            "model": "gpt-image-2",
            "size": "auto",
            "carry": [f"input-{original.pk}-0"],
            "reused_from": original.pk,
        },
    )
    remix = Edit.objects.get(owner=alice)
    assert remix.parent == original


@pytest.mark.parametrize("reused_from", ["hidden", "99999999999999999999", "abc"])
def test_reuse_of_an_edit_one_cannot_see_records_nothing(client, alice, bob, team, reused_from):
    hidden = finished(bob, "not shared")
    client.force_login(alice)
    client.post(
        reverse("edit-new"),
        {
            "prompt": "mine",
            "model": "gpt-image-2",
            "size": "auto",
            "images": [SimpleUploadedFile("a.png", make_png(), "image/png")],
            "reused_from": hidden.pk if reused_from == "hidden" else reused_from,
        },
    )
    assert Edit.objects.get(owner=alice).parent is None


def test_an_unshared_edit_cannot_be_remixed(client, alice, bob, team, charlie):
    kept = finished(bob, "bob keeps this")
    shared = finished(bob, "shared", shared=True)
    for person, edit in [(alice, kept), (charlie, shared)]:
        client.force_login(person)
        page = client.get(reverse("edit-new"), {"reuse": edit.pk}).content.decode()
        assert "bob keeps this" not in page and f"input-{edit.pk}-0" not in page
        response = client.post(
            reverse("edit-new"),
            {
                "prompt": "steal",
                "model": "gpt-image-2",
                "size": "auto",
                "carry": [f"result-{edit.pk}-0"],
            },
        )
        assert "An image carried over from another edit is gone." in response.content.decode()
    assert not Edit.objects.filter(prompt="steal").exists()


def test_the_lineage_hides_edits_the_viewer_cannot_see(client, alice, bob, team):
    original = finished(bob, "bob's secret original", shared=True)
    client.force_login(alice)
    client.post(
        reverse("edit-new"),
        {
            "prompt": "alice's remix",
            "model": "gpt-image-2",
            "size": "auto",
            "carry": [f"result-{original.pk}-0"],
        },
    )
    remix = Edit.objects.get(prompt="alice's remix")
    Edit.objects.filter(pk=original.pk).update(shared_with_team=False)
    detail = client.get(remix.get_absolute_url()).content.decode()
    assert "bob&#x27;s secret original" not in detail and f"Edit {original.pk}<" not in detail
    # Nor does bob's page show alice's remix, which she has not shared.
    client.force_login(bob)
    detail = client.get(original.get_absolute_url()).content.decode()
    assert "alice&#x27;s remix" not in detail


# --- Review -----------------------------------------------------------------------------------


def test_owner_and_teammates_comment_and_the_text_is_escaped(client, alice, bob, team):
    edit = finished(bob, shared=True)
    client.force_login(alice)
    response = client.post(
        reverse("edit-comment", args=[edit.pk]),
        {"text": "<b>nice</b> work"},
        headers={"HX-Request": "true"},
    )
    fragment = response.content.decode()
    assert fragment.strip().startswith('<section id="review"')  # the fragment alone
    assert "&lt;b&gt;nice&lt;/b&gt; work" in fragment
    client.force_login(bob)
    client.post(reverse("edit-comment", args=[edit.pk]), {"text": "thanks"})
    page = client.get(reverse("edit-review", args=[edit.pk])).content.decode()
    assert page.index("nice") < page.index("thanks")
    assert [c.author for c in Comment.objects.all()] == [alice, bob]


def test_an_empty_comment_is_refused(client, alice, bob, team):
    edit = finished(bob, shared=True)
    client.force_login(alice)
    response = client.post(
        reverse("edit-comment", args=[edit.pk]), {"text": "  "}, headers={"HX-Request": "true"}
    )
    assert "Write something first." in response.content.decode()
    response = client.post(
        reverse("edit-comment", args=[edit.pk]),
        {"text": "x" * 2001},
        headers={"HX-Request": "true"},
    )
    assert "at most 2000 characters" in response.content.decode()
    assert not Comment.objects.exists()


def test_the_review_status_records_who_and_when(client, alice, bob, team):
    edit = finished(bob, shared=True)
    client.force_login(alice)
    assert "Draft" in client.get(reverse("edit-review", args=[edit.pk])).content.decode()
    response = client.post(
        reverse("edit-review-status", args=[edit.pk]),
        {"status": "approved"},
        headers={"HX-Request": "true"},
    )
    assert "Approved, set by alice" in response.content.decode()
    review = Review.objects.get(edit=edit)
    assert review.changed_by == alice and timezone.now() - review.changed_at < timedelta(1)
    client.force_login(bob)
    client.post(reverse("edit-review-status", args=[edit.pk]), {"status": "in_review"})
    assert Review.objects.get(edit=edit).status == "in_review"
    response = client.post(
        reverse("edit-review-status", args=[edit.pk]), {"status": "done"}, follow=True
    )
    assert "Choose draft, in review or approved." in messages_of(response)


def test_the_owner_reviews_an_unshared_edit_of_their_own(client, alice):
    edit = finished(alice)
    client.force_login(alice)
    client.post(reverse("edit-comment", args=[edit.pk]), {"text": "note to self"})
    assert Comment.objects.get().edit == edit


def test_the_feed_shows_shares_comments_and_statuses_the_reader_may_see(
    client, alice, bob, charlie, team
):
    edit = finished(bob, "to review")
    client.force_login(bob)
    client.post(reverse("edit-team-share", args=[edit.pk]))
    client.force_login(alice)
    client.post(reverse("edit-comment", args=[edit.pk]), {"text": "looks good"})
    client.post(reverse("edit-review-status", args=[edit.pk]), {"status": "approved"})
    page = client.get(reverse("team-feed", args=[team.pk])).content.decode()
    assert "bob\n      shared" in page
    assert "alice\n      commented on" in page and "“looks good”" in page
    assert "set the review status of" in page and "to Approved" in page
    assert reverse("team-edit", args=[edit.pk]) in page
    assert Activity.objects.count() == 3
    # Unshared, it leaves the feed.
    Edit.objects.filter(pk=edit.pk).update(shared_with_team=False)
    assert "looks good" not in client.get(reverse("team-feed", args=[team.pk])).content.decode()


def test_a_feed_shows_only_its_teams_edits(client, alice, bob, charlie, team):
    other = teams.create_team(charlie, "Other")
    edit = finished(charlie, "charlie's", shared=True)
    teams.record_shared(edit)
    client.force_login(alice)
    assert "charlie" not in client.get(reverse("team-feed", args=[team.pk])).content.decode()
    assert client.get(reverse("team-feed", args=[other.pk])).status_code == 404


# --- Mentions and notifications ---------------------------------------------------------------


def test_a_mention_notifies_only_people_who_can_see_the_edit(client, alice, bob, charlie, team):
    edit = finished(bob, shared=True)
    client.force_login(alice)
    client.post(
        reverse("edit-comment", args=[edit.pk]),
        {"text": "@bob @charlie @alice @nobody look (mail@bob.example)"},
    )
    note = Notification.objects.get()
    assert note.recipient == bob and note.url == edit.get_absolute_url()
    assert note.text.startswith(f"alice mentioned you on edit {edit.pk}: @bob")


def test_notifications_count_list_and_are_marked_read(client, alice, bob, team):
    edit = finished(alice, shared=True)
    client.force_login(bob)
    client.post(reverse("edit-comment", args=[edit.pk]), {"text": "@alice one"})
    client.post(reverse("edit-comment", args=[edit.pk]), {"text": "@alice two"})
    client.force_login(alice)
    page = client.get(reverse("notifications")).content.decode()
    assert "Notifications (2)" in page
    assert f'href="{reverse("team-edit", args=[edit.pk])}"' not in page  # her own edit
    assert f'href="{edit.get_absolute_url()}"' in page
    first = Notification.objects.filter(recipient=alice).last()
    client.post(reverse("notifications"), {"notification": first.pk})
    assert "Notifications (1)" in client.get(reverse("notifications")).content.decode()
    client.post(reverse("notifications"))
    page = client.get(reverse("notifications")).content.decode()
    assert 'aria-label="Notifications"' in page and "New:" not in page


def test_someone_elses_notification_cannot_be_marked_read(client, alice, bob):
    note = teams.notify(alice, "for alice", "")
    client.force_login(bob)
    client.post(reverse("notifications"), {"notification": note.pk})
    note.refresh_from_db()
    assert note.read_at is None
    assert "for alice" not in client.get(reverse("notifications")).content.decode()


# --- What uses team.members keeps working -----------------------------------------------------


def test_the_gallery_team_tab_lists_members_through_memberships(client, alice, bob, team):
    finished(bob, shared=True)
    client.force_login(alice)
    page = client.get(reverse("edit-list"), {"tab": "team"}).content.decode()
    assert "Design: alice, bob." in page


def test_a_new_edit_form_still_posts_for_a_team_member(client, alice, team):
    client.force_login(alice)
    client.post(
        reverse("edit-new"),
        {
            "prompt": "plain",
            "model": "gpt-image-2",
            "size": "auto",
            "images": [SimpleUploadedFile("a.png", make_png(), "image/png")],
        },
    )
    assert Edit.objects.filter(owner=alice, prompt="plain").exists()


def test_first_members_become_owners_in_the_migration(transactional_db, django_user_model):
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    executor.migrate([("edits", "0010_spend_and_budgets")])
    old = executor.loader.project_state([("edits", "0010_spend_and_budgets")]).apps
    user_model = old.get_model("auth", "User")
    first = user_model.objects.create(username="first")
    second = user_model.objects.create(username="second")
    old_team = old.get_model("edits", "Team").objects.create(name="Old")
    old_team.members.add(first)  # one at a time: add() of several inserts them in any order
    old_team.members.add(second)
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())
    roles = dict(
        Membership.objects.filter(team_id=old_team.pk).values_list("user__username", "role")
    )
    assert roles == {"first": "owner", "second": "member"}
    assert Team.objects.get(pk=old_team.pk).members.count() == 2
