"""A person looking at an edit as in an image tool: drag the before/after divider on the image,
open the result full screen and zoom, pick one of several candidates, follow a running edit's
stages, cancel it, and ask to be notified when it ends."""

import re

import pytest
from playwright.sync_api import expect

from imageedits.edits import images, services
from imageedits.edits.models import Edit

from .conftest import log_in, make_png, run_edit

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def new_edit(owner, candidates: int = 1, model: str = "gpt-image-2") -> Edit:
    upload = images.reencode(make_png(320, 240))
    new = services.NewEdit("make it sepia", model, "", [upload], [], candidates=candidates)
    return services.create_edit(owner, new)


def finished_edit(owner, candidates: int = 1) -> Edit:
    edit = new_edit(owner, candidates)
    run_edit(edit)
    return edit


def test_drag_the_divider_on_the_image(page, alice):
    edit = finished_edit(alice)
    log_in(page)
    page.goto(edit.get_absolute_url())
    result = page.get_by_role("img", name="Edited image 1")
    divider = page.get_by_role("slider", name=re.compile("Before and after"))
    before = page.locator("[data-compare-before]")
    expect(divider).to_have_attribute("aria-valuenow", "50")
    box = result.bounding_box()
    middle_y = box["y"] + box["height"] / 2

    page.mouse.move(box["x"] + box["width"] / 2, middle_y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.2, middle_y, steps=8)
    page.mouse.up()
    expect(divider).to_have_attribute("aria-valuenow", re.compile(r"^(19|20|21)$"))
    clip = before.evaluate("image => getComputedStyle(image).clipPath")
    assert re.fullmatch(r"inset\(0px (79|80|81)% 0px 0px\)", clip), clip
    # A drag is not a click: the image did not open full screen.
    expect(page.get_by_role("dialog", name="Image viewer")).to_have_count(0)

    divider.focus()
    page.keyboard.press("Home")
    expect(before).to_have_css("clip-path", "inset(0px 100% 0px 0px)")


def test_open_the_lightbox_zoom_and_pan_with_keys_then_escape(page, alice):
    edit = finished_edit(alice)
    log_in(page)
    page.goto(edit.get_absolute_url())
    opener = page.get_by_role("link", name="Edited image 1")
    opener.click(position={"x": 20, "y": 20})  # beside the divider's knob
    viewer = page.get_by_role("dialog", name="Image viewer")
    expect(viewer).to_be_visible()
    shown = viewer.locator("img")
    expect(shown).to_have_attribute("src", re.compile(r"/preview/0/$"))  # the WebP preview first
    expect(viewer.get_by_label("Zoom level")).to_have_text("100%")

    page.keyboard.press("+")
    page.keyboard.press("+")
    expect(viewer.get_by_label("Zoom level")).to_have_text("156%")
    expect(shown).to_have_attribute("src", re.compile(r"/result/0/$"))  # the full PNG on demand
    page.keyboard.press("ArrowLeft")
    expect(shown).to_have_css("transform", re.compile(r"matrix\(1\.56\d*, 0, 0, 1\.56\d*, 60, 0\)"))
    viewer.get_by_role("button", name="Zoom out").click()
    expect(viewer.get_by_label("Zoom level")).to_have_text("125%")
    page.mouse.move(640, 400)
    page.mouse.wheel(0, -100)
    expect(viewer.get_by_label("Zoom level")).to_have_text("156%")
    expect(viewer.get_by_role("link", name="Download edited image 1")).to_have_attribute(
        "href", re.compile(r"/result/0/\?download=1$")
    )

    page.keyboard.press("Escape")
    expect(viewer).to_be_hidden()
    expect(opener).to_be_focused()


def test_pick_a_candidate_and_see_it_in_the_history(page, alice):
    edit = finished_edit(alice, candidates=3)
    log_in(page)
    page.goto(edit.get_absolute_url())
    candidates = page.get_by_role("list", name="Candidates")
    expect(candidates.get_by_role("img")).to_have_count(2)
    candidates.get_by_role("button", name="Choose result 3").click()

    expect(page.get_by_text("Result 3 is now the chosen one.")).to_be_visible()
    expect(page.locator("figure.chosen").get_by_role("img")).to_have_accessible_name(
        "Edited image 3"
    )
    expect(page.get_by_role("link", name="Download")).to_have_attribute(
        "href", re.compile(r"/result/2/\?download=1$")
    )
    page.get_by_role("link", name="History").click()
    card = page.get_by_role("img", name=f"Result of edit {edit.pk}")
    expect(card).to_have_attribute("src", f"/edits/{edit.pk}/thumbnail/2/")


def test_follow_the_stages_then_cancel_a_running_edit(page, alice, simulator, worker):
    simulator.config.latency = 6  # long enough to look at it, and cancel it, while it runs
    edit = new_edit(alice)
    log_in(page)
    page.goto(edit.get_absolute_url())
    stages = page.get_by_role("list", name="Stages")
    expect(stages.locator('[aria-current="step"]')).to_have_text("Sent", timeout=10_000)
    expect(page.get_by_text("Sent: the image service is working on it.")).to_be_visible()
    clock = page.get_by_text(re.compile(r"^\d+ s of about 60 s$"))
    expect(clock).to_be_visible()
    first = int(clock.inner_text().split()[0])
    expect(clock).not_to_have_text(f"{first} s of about 60 s", timeout=3_000)  # it ticks

    page.get_by_role("button", name="Cancel").click()
    expect(page.get_by_text("The edit was cancelled.")).to_be_visible()
    expect(
        page.get_by_text("Cancelled: nothing more is sent to the image service.")
    ).to_be_visible()
    page.get_by_role("link", name="History").click()
    expect(page.get_by_role("list", name="Edits")).to_contain_text("Cancelled")
    edit.refresh_from_db()
    assert edit.status == Edit.Status.CANCELLED


def test_notify_me_when_done_shows_a_notification_from_a_hidden_tab(
    page, alice, simulator, worker, live_server
):
    # Instruments the browser: records the notifications made, and lets the test say the tab
    # is hidden (a headless tab is always visible).
    page.context.grant_permissions(["notifications"], origin=live_server.url)
    page.add_init_script("""
        window.shownNotifications = [];
        const Real = window.Notification;
        window.Notification = class extends Real {
            constructor(title, options) {
                super(title, options);
                window.shownNotifications.push({ title: title, body: options && options.body });
            }
        };
        window.Notification.requestPermission = () => Real.requestPermission();
        Object.defineProperty(window.Notification, "permission", { get: () => Real.permission });
        window.tabHidden = false;
        Object.defineProperty(document, "hidden", { get: () => window.tabHidden });
    """)
    simulator.config.latency = 3
    edit = new_edit(alice)
    log_in(page)
    page.goto(edit.get_absolute_url())
    page.get_by_role("button", name="Notify me when done").click()
    expect(page.get_by_text("You will be notified when it ends.")).to_be_visible()
    page.evaluate("window.tabHidden = true")

    expect(page.get_by_role("img", name="Edited image 1")).to_be_visible(timeout=20_000)
    # The divider of a result swapped in by the poll is set up too.
    expect(page.locator("[data-compare-before]")).to_have_css("clip-path", "inset(0px 50% 0px 0px)")
    page.wait_for_function("window.shownNotifications.length === 1")
    shown = page.evaluate("window.shownNotifications")
    assert shown == [{"title": f"Edit {edit.pk} is done", "body": "make it sepia"}]
