"""On a phone-sized screen every page fits its width: nothing scrolls sideways, whatever the
instruction, the images or the ids on the page."""

import pytest
from playwright.sync_api import expect

from imageedits.edits import images, services, sharing

from .conftest import log_in, make_png, run_edit

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LONG_INSTRUCTION = "Replace-the-background-with-a-very-long-unbroken-description-" * 3


@pytest.fixture
def phone(browser, live_server):
    context = browser.new_context(base_url=live_server.url, viewport={"width": 390, "height": 844})
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()


def page_width_overflow(page) -> int:
    return page.evaluate("document.documentElement.scrollWidth - window.innerWidth")


def test_every_page_fits_a_phone_screen(phone, alice):
    upload = images.reencode(make_png(1600, 1200))
    edit = services.create_edit(
        alice,
        services.NewEdit(LONG_INSTRUCTION, "gpt-image-2", "1536x1024", [upload], [], candidates=2),
    )
    run_edit(edit)
    _, token = sharing.create(edit, include_inputs=True, expires_in_days=None)

    log_in(phone)
    expect(phone.get_by_role("complementary")).to_contain_text("Replace-the-background")
    assert page_width_overflow(phone) <= 0, "the new edit form"
    phone.get_by_label("Images", exact=True).set_input_files(
        {"name": "photo.png", "mimeType": "image/png", "buffer": make_png(640, 480)}
    )
    expect(phone.get_by_text("photo.png")).to_be_visible()
    choose = phone.get_by_text("choose files").bounding_box()
    zone = phone.locator(".dropzone").bounding_box()
    assert choose["x"] + choose["width"] < zone["x"] + zone["width"], "words run out of the zone"

    phone.goto(edit.get_absolute_url())
    expect(phone.get_by_role("img", name="Edited image 2")).to_be_visible()
    assert page_width_overflow(phone) <= 0, "the edit page"

    phone.get_by_role("link", name="History").click()
    expect(phone.get_by_role("list", name="Edits").get_by_role("listitem")).to_have_count(1)
    assert page_width_overflow(phone) <= 0, "the history"

    phone.goto(f"/s/{token}/")
    expect(phone.get_by_role("heading", name="Shared edit")).to_be_visible()
    assert page_width_overflow(phone) <= 0, "the shared page"
