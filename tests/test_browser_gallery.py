"""A person browsing their history: filter and search without reloading, open an edit, and
delete one after being asked."""

import re

import pytest
from playwright.sync_api import expect

from imageedits.edits import images, services
from imageedits.edits.models import Edit

from .conftest import log_in, make_png, run_edit

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def finished_edit(owner, prompt: str, model: str = "gpt-image-2") -> Edit:
    upload = images.reencode(make_png())
    edit = services.create_edit(owner, services.NewEdit(prompt, model, "", [upload], []))
    run_edit(edit)
    return edit


def test_browse_filter_and_search_the_history(page, alice):
    finished_edit(alice, "make it sepia")
    finished_edit(alice, "mirror the photo", model="nano-banana")
    finished_edit(alice, "blur the background")
    log_in(page)
    page.get_by_role("link", name="History").click()
    grid = page.get_by_role("list", name="Edits")
    expect(grid.get_by_role("listitem")).to_have_count(3)
    expect(grid.get_by_role("img", name="Result of edit")).to_have_count(3)
    page.evaluate("window.notReloaded = true")

    page.get_by_label("Model").select_option("nano-banana")
    expect(grid.get_by_role("listitem")).to_have_count(1)
    expect(page.get_by_role("status")).to_have_text("1 edit matches.")  # read out
    expect(grid).to_contain_text("mirror the photo")

    page.get_by_label("Model").select_option("")
    expect(page.get_by_role("list", name="Edits").get_by_role("listitem")).to_have_count(3)
    pages_back = page.evaluate("history.length")
    page.get_by_label("Search instructions").fill("blur")
    expect(page).to_have_url(re.compile(r"q=blur"))  # the filtered view has its own address
    page.get_by_label("Search instructions").press("Tab")
    expect(page.get_by_label("Search instructions")).not_to_be_focused()
    page.wait_for_load_state("networkidle")
    assert page.evaluate("history.length") == pages_back + 1  # one Back undoes one search
    expect(page.get_by_role("list", name="Edits").get_by_role("listitem")).to_have_count(1)
    expect(page.get_by_role("list", name="Edits")).to_contain_text("blur the background")

    page.get_by_label("Search instructions").fill("zebra")
    expect(page.get_by_text("No edit matches these filters.")).to_be_visible()
    assert page.evaluate("window.notReloaded") is True

    page.go_back()  # the list and the filter fields both go back to "blur"
    expect(page).to_have_url(re.compile(r"q=blur"))
    expect(page.get_by_label("Search instructions")).to_have_value("blur")
    expect(page.get_by_role("list", name="Edits")).to_contain_text("blur the background")
    expect(page.get_by_role("list", name="Edits").get_by_role("listitem")).to_have_count(1)

    page.get_by_label("Search instructions").fill("zebra")
    page.get_by_role("link", name="Show all edits").click()
    page.get_by_role("link", name="make it sepia").click()
    expect(page.get_by_role("img", name="Edited image 1")).to_be_visible()


def test_delete_an_edit_after_being_asked(page, alice, stored_files):
    edit = finished_edit(alice, "make it sepia")
    log_in(page)
    page.goto(edit.get_absolute_url())
    page.get_by_role("link", name="Delete…").click()
    expect(page.get_by_role("heading", name=f"Delete edit {edit.pk}?")).to_be_visible()
    page.get_by_role("button", name="Delete for good").click()
    expect(page.get_by_text(f"Edit {edit.pk} and its images were deleted.")).to_be_visible()
    expect(page.get_by_text("Start your first edit")).to_be_visible()
    assert not Edit.objects.exists() and stored_files() == []


def test_a_new_person_sees_what_to_do(page, alice):
    log_in(page)
    page.get_by_role("link", name="History").click()
    page.get_by_role("link", name="Start your first edit").click()
    expect(page.get_by_role("heading", name="New edit")).to_be_visible()


def test_share_a_result_open_it_logged_out_then_revoke_it(page, browser, live_server, alice):
    edit = finished_edit(alice, "make it sepia for the team")
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    log_in(page)
    page.goto(edit.get_absolute_url())
    page.get_by_role("button", name="Create share link").click()
    field = page.get_by_label("New share link")
    expect(field).to_be_focused()  # ready to copy, also from the keyboard
    url = field.input_value()
    assert url.startswith(f"{live_server.url}/s/")
    page.get_by_role("button", name="Copy link").click()
    expect(page.get_by_role("button", name="Copied")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == url
    expect(page.get_by_role("list", name="Share links")).to_contain_text("Active")

    stranger = browser.new_context()  # no login, no cookies
    other = stranger.new_page()
    other.goto(url)
    expect(other.get_by_role("heading", name="Shared edit")).to_be_visible()
    expect(other.get_by_text("make it sepia for the team")).to_be_visible()
    expect(other.get_by_role("img", name="Edited image 1")).to_be_visible()
    expect(other.get_by_role("link", name="Log out")).to_have_count(0)

    page.reload()
    links = page.get_by_role("list", name="Share links")
    expect(links).to_contain_text(f"Link …{url.rstrip('/')[-4:]}, made")  # told apart by its end
    expect(links).to_contain_text("1 view")
    asked = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.dismiss()))
    page.get_by_role("button", name="Revoke").click()
    expect(links).to_contain_text("Active")  # changed their mind
    assert asked == [f"Revoke the link ending in …{url.rstrip('/')[-4:]}? Whoever has it will "
                     "no longer see this edit."]  # fmt: skip
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Revoke").click()
    expect(links).to_contain_text("Revoked")
    assert other.goto(url).status == 404
    stranger.close()


def test_edit_a_result_then_walk_the_versions_back(page, alice, worker):
    original = finished_edit(alice, "first: make it sepia")
    log_in(page)
    page.goto(original.get_absolute_url())
    page.get_by_role("link", name="Edit this result").click()
    carried = page.get_by_role("list", name="Carried over")
    expect(
        carried.get_by_role("img", name=f"Preview of result 1 of edit {original.pk}")
    ).to_be_visible()
    page.get_by_label("Instruction").fill("second: now mirror it")
    page.get_by_role("button", name="Submit edit").click()
    expect(page.get_by_role("img", name="Edited image 1")).to_be_visible(timeout=20_000)

    versions = page.get_by_role("region", name="Versions")
    expect(versions).to_contain_text("first: make it sepia")
    expect(versions).to_contain_text("second: now mirror it")
    versions.get_by_role("link", name=f"Edit {original.pk}").click()
    expect(page.get_by_role("heading", name=f"Edit {original.pk}")).to_be_visible()
    expect(page.get_by_role("region", name="Versions")).to_contain_text("second: now mirror it")


def test_reuse_settings_and_run_again(page, alice, worker):
    past = finished_edit(alice, "dark mode please")
    log_in(page)
    page.goto(past.get_absolute_url())
    page.get_by_role("link", name="Reuse settings").click()
    expect(page.get_by_label("Instruction")).to_have_value("dark mode please")
    expect(page.get_by_role("list", name="Carried over").get_by_role("listitem")).to_have_count(1)
    page.get_by_role("button", name="Submit edit").click()
    expect(page.get_by_role("img", name="Edited image 1")).to_be_visible(timeout=20_000)

    page.get_by_role("button", name="Run again").click()
    expect(page.get_by_role("img", name="Edited image 1")).to_be_visible(timeout=20_000)
    assert Edit.objects.filter(prompt="dark mode please").count() == 3


def test_move_the_before_and_after_divider_with_the_keyboard(page, alice):
    edit = finished_edit(alice, "make it sepia")
    log_in(page)
    page.goto(edit.get_absolute_url())
    divider = page.get_by_role("slider", name=re.compile("Before and after"))
    before = page.locator("[data-compare-before]")
    expect(before).to_have_css("clip-path", "inset(0px 50% 0px 0px)")
    divider.focus()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    expect(divider).to_have_attribute("aria-valuenow", "60")
    expect(before).to_have_css("clip-path", "inset(0px 40% 0px 0px)")
    page.keyboard.press("End")
    expect(before).to_have_css("clip-path", "inset(0px 0% 0px 0px)")


def test_star_an_edit_and_find_it_in_a_collection(page, alice):
    keep = finished_edit(alice, "the keeper")
    finished_edit(alice, "another one")
    log_in(page)
    page.get_by_role("link", name="History").click()
    page.get_by_role("button", name=f"Star edit {keep.pk}").click()
    expect(page.get_by_role("button", name=f"Star edit {keep.pk}")).to_have_attribute(
        "aria-pressed", "true"
    )
    expect(page.get_by_role("button", name=f"Star edit {keep.pk}")).to_be_focused()
    page.get_by_label("Starred only").check()
    grid = page.get_by_role("list", name="Edits")
    expect(grid.get_by_role("listitem")).to_have_count(1)
    expect(grid).to_contain_text("the keeper")

    page.get_by_text("Make a collection").click()  # folded away until wanted
    page.get_by_label("New collection").fill("Spring campaign")
    page.get_by_role("button", name="Make collection").click()
    expect(page.get_by_text("Collection “Spring campaign” made.")).to_be_visible()
    page.get_by_role("link", name="Mine").click()
    page.get_by_label(f"Select edit {keep.pk}").check()
    page.get_by_label("Add to", exact=True).select_option(label="Spring campaign")
    page.get_by_role("button", name="Add to collection").click()
    expect(page.get_by_text("1 edit added to “Spring campaign”.")).to_be_visible()
    grid = page.get_by_role("list", name="Edits")
    expect(grid.get_by_role("listitem")).to_have_count(1)
    expect(grid).to_contain_text("the keeper")


def test_select_three_edits_and_download_their_results(page, alice):
    import zipfile

    edits = [finished_edit(alice, f"edit number {n}") for n in range(4)]
    log_in(page)
    page.get_by_role("link", name="History").click()
    for edit in edits[:3]:
        page.get_by_label(f"Select edit {edit.pk}").check()
    with page.expect_download() as download:
        page.get_by_role("button", name="Download results (ZIP)").click()
    bundle = zipfile.ZipFile(download.value.path())
    assert len(bundle.namelist()) == 3
    assert all(name.endswith("-1.png") for name in bundle.namelist())
    assert not any(f"edit-{edits[3].pk}-" in name for name in bundle.namelist())


def test_share_with_the_team_and_a_teammate_sees_it(page, browser, live_server, alice, bob):
    from imageedits.edits.models import Team

    crew = Team.objects.create(name="Design")
    crew.members.add(alice, bob)
    edit = finished_edit(bob, "bob's poster, dark mode")
    teammate = browser.new_context(base_url=live_server.url)
    bobs_page = teammate.new_page()
    log_in(bobs_page, "bob", "bob-password")
    bobs_page.goto(edit.get_absolute_url())
    bobs_page.get_by_role("button", name="Share with my team").click()
    expect(bobs_page.get_by_text("Shared with your team.")).to_be_visible()
    # Bob's own Team tab shows it as the team sees it.
    bobs_page.goto("/edits/?tab=team")
    expect(bobs_page.get_by_role("list", name="Edits")).to_contain_text("by you")
    bobs_page.get_by_role("link", name="bob's poster").click()
    expect(bobs_page).to_have_url(f"{live_server.url}{edit.get_absolute_url()}")  # his own page
    teammate.close()

    log_in(page)
    page.get_by_role("link", name="History").click()
    page.get_by_role("link", name="Team", exact=True).click()
    expect(page.get_by_text("Design: alice, bob.")).to_be_visible()
    grid = page.get_by_role("list", name="Edits")
    expect(grid).to_contain_text("bob's poster, dark mode")
    expect(grid).to_contain_text("by bob")
    grid.get_by_role("link", name="bob's poster").click()
    expect(page.get_by_role("heading", name=f"Edit {edit.pk} by bob")).to_be_visible()
    expect(page.get_by_role("img", name="Edited image 1")).to_be_visible()


def test_a_status_chip_filters_the_history(page, alice):
    finished_edit(alice, "make it sepia")
    Edit.objects.create(
        owner=alice, prompt="a failed one", model="gpt-image-2", status=Edit.Status.FAILED,
        error_message="The upstream said no.",
    )  # fmt: skip
    log_in(page)
    page.get_by_role("link", name="History").click()
    grid = page.get_by_role("list", name="Edits")
    expect(grid.get_by_role("listitem")).to_have_count(2)
    page.get_by_role("radio", name="Failed").check()
    expect(grid.get_by_role("listitem")).to_have_count(1)
    expect(grid).to_contain_text("a failed one")
    expect(page).to_have_url(re.compile(r"status=failed"))
    page.get_by_role("radio", name="All").check()
    expect(grid.get_by_role("listitem")).to_have_count(2)


def test_ticking_edits_shows_the_selection_bar_with_the_count(page, alice):
    edits = [finished_edit(alice, f"edit number {n}") for n in range(3)]
    log_in(page)
    page.get_by_role("link", name="History").click()
    bar = page.get_by_role("group", name="With the ticked edits")
    expect(bar).to_be_hidden()
    for edit in edits:
        page.get_by_label(f"Select edit {edit.pk}").check()
    expect(bar).to_be_visible()
    expect(bar).to_contain_text("3 selected")
    page.get_by_label(f"Select edit {edits[0].pk}").uncheck()
    expect(bar).to_contain_text("2 selected")
    bar.get_by_role("button", name="Clear").click()
    expect(bar).to_be_hidden()
    expect(page.get_by_label(f"Select edit {edits[1].pk}")).not_to_be_checked()


def test_a_failed_edit_shows_its_error_in_the_history(page, alice):
    Edit.objects.create(owner=alice, prompt="make it a famous painting", model="gpt-image-2",
                        status=Edit.Status.FAILED,
                        error_message="The prompt was rejected by content moderation.")  # fmt: skip
    log_in(page)
    page.get_by_role("link", name="History").click()
    card = page.get_by_role("list", name="Edits").get_by_role("listitem")
    expect(card).to_contain_text("The prompt was rejected by content moderation.")
    expect(card).to_contain_text("Failed")


def test_an_edit_made_in_another_tab_appears_at_the_top(page, alice):
    finished_edit(alice, "the older one")
    log_in(page)
    page.get_by_role("link", name="History").click()
    grid = page.get_by_role("list", name="Edits")
    expect(grid.get_by_role("listitem")).to_have_count(1)
    page.evaluate("window.notReloaded = true")
    newer = finished_edit(alice, "made in another tab")  # as the other tab's form would
    expect(grid.get_by_role("listitem")).to_have_count(2, timeout=10_000)
    expect(grid.get_by_role("listitem").first).to_contain_text("made in another tab")
    expect(grid.get_by_role("img", name=f"Result of edit {newer.pk}")).to_be_visible()
    third = finished_edit(alice, "and one more")  # the poll now asks after the newest shown
    expect(grid.get_by_role("listitem")).to_have_count(3, timeout=10_000)
    expect(grid.get_by_role("listitem").first).to_contain_text("and one more")
    assert third.pk > newer.pk
    assert page.evaluate("window.notReloaded") is True
