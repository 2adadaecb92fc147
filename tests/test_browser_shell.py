"""The app's frame and the edit form's shortcuts, as a person uses them: the theme toggle is
remembered, Ctrl+Enter submits the form, a recent instruction fills the field again, and the
top bar fits a phone's width on one line."""

import re

import pytest
from playwright.sync_api import expect

from imageedits.edits import images, services
from imageedits.edits.models import Edit

from .conftest import log_in, make_png, open_account_menu

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def background(page) -> str:
    return page.evaluate("getComputedStyle(document.body).backgroundColor")


def test_the_theme_toggle_is_remembered_across_pages(page, alice):
    page.emulate_media(color_scheme="light")
    log_in(page)
    toggle = page.get_by_role("button", name="Dark theme")
    expect(toggle).to_have_attribute("aria-pressed", "false")
    light = background(page)
    toggle.click()
    expect(toggle).to_have_attribute("aria-pressed", "true")
    dark = background(page)
    assert dark != light

    page.reload()  # remembered, and applied before the page is drawn
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    assert background(page) == dark
    page.get_by_role("link", name="History").click()
    expect(page.get_by_role("button", name="Dark theme")).to_have_attribute("aria-pressed", "true")

    page.get_by_role("button", name="Dark theme").click()  # and back
    page.reload()
    assert background(page) == light


def test_the_system_dark_theme_is_followed_until_a_choice_is_made(page, alice):
    page.emulate_media(color_scheme="dark")
    page.goto("/login/")
    expect(page.get_by_role("button", name="Dark theme")).to_have_attribute("aria-pressed", "true")
    dark = background(page)
    page.emulate_media(color_scheme="light")
    assert background(page) != dark


def test_ctrl_enter_submits_the_edit(page, alice, tmp_path):
    picture = tmp_path / "photo.png"
    picture.write_bytes(make_png())
    log_in(page)
    page.get_by_label("Images", exact=True).set_input_files(picture)
    page.get_by_label("Instruction").fill("make it sepia")
    page.get_by_label("Instruction").press("Control+Enter")
    page.wait_for_url(re.compile(r"/edits/\d+/$"))
    edit = Edit.objects.get()
    assert edit.prompt == "make it sepia" and edit.inputs.count() == 1
    expect(page.get_by_role("heading", name=f"Edit {edit.pk}")).to_be_visible()


def test_a_recent_instruction_fills_the_field(page, alice):
    for prompt in ("make it sepia", "mirror it", "make it sepia"):
        upload = images.reencode(make_png())
        services.create_edit(alice, services.NewEdit(prompt, "gpt-image-2", "", [upload], []))
    log_in(page)
    used = page.get_by_role("group", name="Used before")
    expect(used.get_by_role("button")).to_have_text(["make it sepia", "mirror it"])  # each once
    used.get_by_role("button", name="mirror it").click()
    expect(page.get_by_label("Instruction")).to_have_value("mirror it")
    expect(page.get_by_label("Instruction")).to_be_focused()


def test_the_top_bar_stays_on_one_line_on_a_phone(browser, live_server, alice):
    context = browser.new_context(base_url=live_server.url, viewport={"width": 390, "height": 844})
    phone = context.new_page()
    log_in(phone)
    bar = phone.get_by_role("banner")
    assert bar.bounding_box()["height"] <= 56
    for name in ("New edit", "History", "Teams", "Notifications"):
        assert phone.get_by_role("link", name=name).bounding_box()["y"] < 56
    menu = phone.get_by_role("banner").locator(".user-menu > summary").bounding_box()
    assert menu["y"] < 56 and menu["x"] + menu["width"] <= 390
    open_account_menu(phone)
    phone.get_by_role("button", name="Log out").click()
    expect(phone.get_by_label("Username")).to_be_visible()
    context.close()
