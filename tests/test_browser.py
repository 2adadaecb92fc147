"""A person in Chromium: log in, give an image and an instruction, submit, and watch the edited
image appear on the same page without reloading it."""

import re

import pytest
from playwright.sync_api import expect

from imageedits.edits import images
from imageedits.edits.models import Edit

from .conftest import log_in, make_png

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def mark_page(page):
    """A flag that only survives while the page is not reloaded."""
    page.evaluate("window.notReloaded = true")


def test_upload_a_png_submit_and_see_the_edited_image_without_a_reload(
    page, alice, worker, simulator, live_server, settings
):
    settings.PUBLIC_BASE_URL = live_server.url  # callbacks, as under `make run`
    simulator.config.latency = 1.5
    log_in(page)

    page.get_by_label("Images").set_input_files(
        {"name": "cat.png", "mimeType": "image/png", "buffer": make_png(320, 240)}
    )
    expect(page.get_by_text("cat.png")).to_be_visible()
    page.get_by_label("Instruction").fill("Make it black and white")
    with page.expect_response("**/edits/new/params/**"):  # the fields follow the model
        page.get_by_label("Model").select_option("gpt-image-2")
    page.get_by_label("Size", exact=True).select_option("1024x1024")
    page.get_by_role("button", name="Submit edit").click()

    expect(page).to_have_url(re.compile(r"/edits/\d+/$"))
    mark_page(page)
    expect(page.get_by_text(re.compile("Queued: waiting|Running since"))).to_be_visible()
    expect(
        page.get_by_text("A link to share this edit can be made once it has a result.")
    ).to_be_visible()
    result = page.get_by_role("img", name="Edited image 1")
    expect(result).to_be_visible(timeout=20_000)
    expect(page.get_by_text(re.compile(r"Done in [\d.]+ s"))).to_be_visible()
    # Read out by screen readers from a live region that stayed in place across the polls.
    expect(page.get_by_role("status").filter(has_text="The edit is done")).to_have_text(
        "The edit is done: 1 result."
    )
    assert page.evaluate("window.notReloaded") is True
    # The page shows a preview at about the size it is shown, linking to the full image.
    natural_width = "image => image.decode().then(() => image.naturalWidth)"
    assert result.evaluate(natural_width) == images.PREVIEW_SIDE
    assert (
        page.get_by_role("link", name="Edited image 1").get_attribute("href").endswith("/result/0/")
    )
    # The share form came with the result: a link can be made without reloading.
    page.get_by_role("button", name="Create share link").click()
    expect(page.get_by_label(re.compile("New share link"))).to_have_value(re.compile(r"/s/"))
    assert page.evaluate("window.notReloaded") is True

    edit = Edit.objects.get()
    assert edit.status == Edit.Status.SUCCEEDED and edit.submissions.get().task_id
    with edit.results.get().file.open("rb") as handle:
        from PIL import Image

        pixel = Image.open(handle).convert("RGB").getpixel((500, 500))
    assert pixel[0] == pixel[1] == pixel[2]


def test_an_image_url_edit_shows_its_result(page, alice, worker, simulator):
    simulator.config.latency = 1.0
    log_in(page)

    page.get_by_label("Image URLs").fill(f"{simulator.url}/samples/landscape.png")
    page.get_by_label("Instruction").fill("Mirror it")
    page.get_by_role("button", name="Submit edit").click()

    expect(page).to_have_url(re.compile(r"/edits/\d+/$"))
    mark_page(page)
    expect(page.get_by_role("img", name="Edited image 1")).to_be_visible(timeout=20_000)
    assert page.evaluate("window.notReloaded") is True
    expect(page.get_by_role("link", name="samples/landscape.png")).to_be_visible()
    assert Edit.objects.get().results.get().width == 1024


def test_an_upstream_refusal_is_shown_in_plain_words(page, alice, worker, simulator):
    log_in(page)
    page.get_by_label("Images").set_input_files(
        {"name": "a.png", "mimeType": "image/png", "buffer": make_png()}
    )
    page.get_by_label("Instruction").fill("make it nsfw")
    page.get_by_role("button", name="Submit edit").click()
    expect(page.get_by_role("alert")).to_contain_text(
        "refused this edit under its content rules", timeout=20_000
    )


def test_a_file_that_is_not_an_image_is_refused_before_upload(page, alice, stored_files):
    log_in(page)
    page.get_by_label("Images").set_input_files(
        {"name": "notes.png", "mimeType": "image/png", "buffer": b"not an image at all"}
    )
    expect(page.get_by_role("alert")).to_contain_text("“notes.png” cannot be read as an image")
    expect(page.get_by_role("list", name="Preview strip").get_by_role("listitem")).to_have_count(0)
    page.get_by_label("Instruction").fill("blur it")
    page.get_by_role("button", name="Submit edit").click()
    expect(page.get_by_role("alert").first).to_contain_text("Add at least one image")
    expect(page.get_by_label("Instruction")).to_have_value("blur it")
    assert Edit.objects.count() == 0 and stored_files() == []


def test_a_bad_custom_size_is_refused_before_and_on_submit(page, alice):
    log_in(page)
    page.get_by_label("Images").set_input_files(
        {"name": "a.png", "mimeType": "image/png", "buffer": make_png()}
    )
    page.get_by_label("Instruction").fill("blur it")
    page.get_by_label("Size", exact=True).select_option("custom")
    page.get_by_label("Custom size").fill("4096x2304")
    expect(page.get_by_role("alert")).to_contain_text("longer side can be at most 3840 pixels")
    assert Edit.objects.count() == 0
    page.get_by_role("button", name="Submit edit").click()
    expect(page.get_by_role("alert").first).to_contain_text("longer side can be at most 3840")
    expect(page.get_by_label("Custom size")).to_have_value("4096x2304")
    assert Edit.objects.count() == 0


def test_picked_images_are_still_there_after_the_server_refuses_the_form(page, alice):
    log_in(page)
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.get_by_label("Images").set_input_files([
        {"name": "first.png", "mimeType": "image/png", "buffer": make_png(64, 48)},
        {"name": "second.png", "mimeType": "image/png", "buffer": make_png(80, 60)},
    ])  # fmt: skip
    page.get_by_role("button", name="Submit edit").click()  # no instruction
    summary = page.get_by_role("alert").first
    expect(summary).to_contain_text("The edit was not submitted. Fix this first:")
    expect(summary).to_contain_text("Instruction: This field is required.")
    expect(summary).to_be_focused()  # said at the top, where the person is looking
    summary.get_by_role("link", name="Instruction").click()
    expect(page.get_by_label("Instruction")).to_be_focused()
    strip = page.get_by_role("list", name="Preview strip")
    expect(strip.get_by_role("listitem")).to_have_count(2)
    expect(strip).to_contain_text("first.png")
    expect(strip).to_contain_text("second.png")

    page.get_by_label("Instruction").fill("blur it")
    page.get_by_role("button", name="Submit edit").click()
    expect(page).to_have_url(re.compile(r"/edits/\d+/$"))
    assert [image.width for image in Edit.objects.get().inputs.all()] == [64, 80]

    page.goto("/edits/new/")  # accepted: the next form starts empty
    expect(page.get_by_role("heading", name="New edit")).to_be_visible()
    expect(page.get_by_role("list", name="Preview strip").get_by_role("listitem")).to_have_count(0)


def test_dropped_and_pasted_images_join_the_upload(page, alice):
    log_in(page)
    png = list(make_png())
    page.evaluate(
        """(bytes) => {
            const file = new File([new Uint8Array(bytes)], "dropped.png", {type: "image/png"});
            const data = new DataTransfer();
            data.items.add(file);
            const zone = document.querySelector("[data-dropzone]");
            zone.dispatchEvent(new DragEvent("drop", {dataTransfer: data, bubbles: true}));
            const pasted = new DataTransfer();
            pasted.items.add(new File([new Uint8Array(bytes)], "image.png", {type: "image/png"}));
            document.dispatchEvent(new ClipboardEvent("paste", {clipboardData: pasted}));
        }""",
        png,
    )
    expect(page.get_by_text("dropped.png")).to_be_visible()
    expect(page.get_by_text("pasted-2.png")).to_be_visible()
    page.get_by_role("button", name="Remove dropped.png").click()
    expect(page.get_by_text("dropped.png")).to_have_count(0)
    assert page.evaluate("document.querySelector('input[type=file]').files.length") == 1


def test_another_users_edit_page_is_not_found(page, alice, bob, django_user_model):
    from imageedits.edits import images, services

    edit = services.create_edit(
        bob, services.NewEdit("blur", "gpt-image-2", "", [images.reencode(make_png())], [])
    )
    log_in(page)
    response = page.goto(f"/edits/{edit.pk}/")
    assert response.status == 404


def test_a_retry_shows_while_it_waits_then_the_result(page, alice, worker, simulator, settings):
    settings.RETRY_BASE_DELAY = 8  # 4 to 12 s with jitter: several polls see it waiting
    settings.RETRY_MAX_DELAY = 8
    simulator.inject("500")
    log_in(page)
    page.get_by_label("Images", exact=True).set_input_files(
        {"name": "a.png", "mimeType": "image/png", "buffer": make_png()}
    )
    page.get_by_label("Instruction").fill("sepia")
    page.get_by_role("button", name="Submit edit").click()
    expect(page.get_by_text("Candidate 1: retrying (2 of 4).")).to_be_visible(timeout=10_000)
    expect(page.get_by_role("img", name="Edited image 1")).to_be_visible(timeout=30_000)


def test_a_failed_edit_is_tried_again_from_its_page(page, alice, worker, simulator):
    simulator.inject("forbidden")
    log_in(page)
    page.get_by_label("Images", exact=True).set_input_files(
        {"name": "a.png", "mimeType": "image/png", "buffer": make_png()}
    )
    page.get_by_label("Instruction").fill("mirror it")
    page.get_by_role("button", name="Submit edit").click()
    expect(page.get_by_role("alert")).to_contain_text("content rules", timeout=20_000)
    page.get_by_role("button", name="Try again").click()
    expect(page.get_by_text("The edit is running again.")).to_be_visible()
    expect(page.get_by_role("img", name="Edited image 1")).to_be_visible(timeout=20_000)


def test_failed_log_ins_are_throttled(page, alice, settings):
    settings.LOGIN_FAILURES_PER_USER = 3
    page.goto("/")
    for _ in range(3):
        page.get_by_label("Username").fill("alice")
        page.get_by_label("Password").fill("not-her-password")
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_role("alert")).to_contain_text("enter a correct username and password")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill("alice-password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text("Too many failed log-ins")
