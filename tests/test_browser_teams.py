"""People in Chromium make a team, invite and join it, remix a teammate's edit, comment with a
mention that notifies, and approve an edit."""

import re

import pytest
from playwright.sync_api import expect

from imageedits.edits import images, services
from imageedits.edits.models import Edit, Membership, Team

from .conftest import log_in, make_png, run_edit

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def shared_edit(owner, prompt: str) -> Edit:
    upload = images.reencode(make_png())
    edit = services.create_edit(owner, services.NewEdit(prompt, "gpt-image-2", "", [upload], []))
    run_edit(edit)
    Edit.objects.filter(pk=edit.pk).update(shared_with_team=True)
    return edit


@pytest.fixture
def team(alice, bob):
    crew = Team.objects.create(name="Design")
    Membership.objects.create(team=crew, user=alice, role=Membership.Role.OWNER)
    Membership.objects.create(team=crew, user=bob)
    return crew


@pytest.fixture
def bobs_page(browser, live_server):
    context = browser.new_context(base_url=live_server.url)
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()


def test_make_a_team_invite_and_the_invitee_accepts(page, bobs_page, alice, bob):
    log_in(page)
    page.get_by_role("link", name="Teams").click()
    page.get_by_label("New team's name").fill("Posters")
    page.get_by_role("button", name="Make team").click()
    expect(page.get_by_role("heading", name="Team Posters")).to_be_visible()
    page.get_by_label("Username or e-mail address").fill("bob")
    page.get_by_role("button", name="Invite").click()
    link = page.get_by_label(re.compile("^Invitation link")).input_value()
    assert "/invitations/" in link

    log_in(bobs_page, "bob", "bob-password")
    expect(bobs_page.get_by_role("link", name="Notifications (1)")).to_be_visible()
    bobs_page.goto(link)
    expect(bobs_page.get_by_role("heading", name="Join Posters?")).to_be_visible()
    bobs_page.get_by_role("button", name="Accept").click()
    expect(bobs_page.get_by_text("You joined Posters.")).to_be_visible()
    expect(bobs_page.get_by_role("cell", name="bob (you)")).to_be_visible()

    page.reload()
    members = page.get_by_role("table")
    expect(members).to_contain_text("bob")
    page.get_by_role("button", name="Make bob an owner").click()
    expect(page.get_by_role("button", name="Make bob a member")).to_be_visible()


def test_an_owner_removes_a_member_and_a_used_link_says_so(page, bobs_page, alice, bob, team):
    log_in(page)
    page.goto(f"/teams/{team.pk}/")
    page.get_by_role("button", name="Remove bob").click()
    expect(page.get_by_text("bob is no longer in Design.")).to_be_visible()
    page.get_by_label("Username or e-mail address").fill("bob@example.com")
    page.get_by_role("button", name="Invite").click()
    link = page.get_by_label(re.compile("^Invitation link")).input_value()
    log_in(bobs_page, "bob", "bob-password")
    bobs_page.goto(link)
    bobs_page.get_by_role("button", name="Decline").click()
    expect(bobs_page.get_by_text("Invitation to Design declined.")).to_be_visible()
    bobs_page.goto(link)
    expect(bobs_page.get_by_role("alert")).to_have_text("This invitation has already been used.")


def test_remix_a_teammates_edit_into_ones_own(page, alice, bob, team, live_server):
    original = shared_edit(bob, "bob's poster")
    log_in(page)
    page.get_by_role("link", name="History").click()
    page.get_by_role("link", name="Team", exact=True).click()
    page.get_by_role("link", name="bob's poster").click()
    expect(page.get_by_role("heading", name=f"Edit {original.pk} by bob")).to_be_visible()
    expect(page.get_by_role("img", name="Input image 1")).to_be_visible()
    with page.expect_download() as download:
        page.get_by_role("link", name="Download result 1").click()
    assert download.value.suggested_filename == f"edit-{original.pk}-bobs-poster-1.png"

    page.get_by_role("link", name="Edit this result").click()
    expect(page.get_by_role("heading", name="New edit")).to_be_visible()
    expect(page.get_by_text(f"result 1 of edit {original.pk}")).to_be_visible()
    page.get_by_label("Instruction").fill("alice's take on it")
    page.get_by_role("button", name="Submit edit").click()
    remix = Edit.objects.get(prompt="alice's take on it")
    expect(page).to_have_url(f"{live_server.url}{remix.get_absolute_url()}")
    assert remix.owner == alice and remix.parent_id == original.pk
    versions = page.get_by_role("region", name="Versions")
    versions.get_by_role("link", name=f"Edit {original.pk}").click()
    expect(page.get_by_role("heading", name=f"Edit {original.pk} by bob")).to_be_visible()


def test_comment_with_a_mention_and_the_teammate_is_notified(page, bobs_page, alice, bob, team):
    edit = shared_edit(bob, "bob's poster")
    log_in(page)
    page.goto(f"/team/edits/{edit.pk}/")
    page.get_by_label("Comment").fill("@bob the <b>red</b> is too loud")
    page.get_by_role("button", name="Add comment").click()
    comments = page.get_by_role("region", name="Review").get_by_role("list")
    expect(comments).to_contain_text("the <b>red</b> is too loud")  # shown as typed
    expect(page.get_by_label("Comment")).to_have_value("")  # a fresh form for the next

    log_in(bobs_page, "bob", "bob-password")
    bobs_page.get_by_role("link", name="Notifications (1)").click()
    bobs_page.get_by_role("link", name=re.compile("alice mentioned you on edit")).click()
    expect(bobs_page.get_by_role("heading", name=f"Edit {edit.pk}")).to_be_visible()
    expect(bobs_page.get_by_text("the <b>red</b> is too loud")).to_be_visible()
    bobs_page.get_by_role("link", name="Notifications").click()
    bobs_page.get_by_role("button", name="Mark all as read").click()
    expect(bobs_page.get_by_role("link", name="Notifications", exact=True)).to_be_visible()


def test_a_teammate_approves_and_the_feed_says_so(page, alice, bob, team):
    edit = shared_edit(bob, "bob's poster")
    log_in(page)
    page.goto(f"/team/edits/{edit.pk}/")
    page.get_by_label("Review status").select_option("Approved")
    page.get_by_role("button", name="Set status").click()
    expect(page.get_by_role("status").filter(has_text="set by alice")).to_contain_text(
        "Approved, set by alice"
    )
    page.goto(f"/teams/{team.pk}/")
    page.get_by_role("link", name="Feed").click()
    expect(page.get_by_role("list").filter(has_text="set the review status")).to_contain_text(
        "to Approved"
    )
