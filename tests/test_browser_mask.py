"""A person in Chromium paints a mask over the first image: the form's mask input then holds a PNG
the size of that image, transparent where painted and opaque elsewhere."""

import base64
import io
import re

import pytest
from PIL import Image
from playwright.sync_api import expect

from .conftest import log_in, make_png, paint

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WIDTH, HEIGHT = 300, 200


def stroke(page, start, end):
    paint(page, start, end, (WIDTH, HEIGHT))


def choose_image(page):
    # app.js announces the chosen files to mask.js with an "images-changed" event on the form.
    page.get_by_label("Images", exact=True).set_input_files(
        {"name": "cat.png", "mimeType": "image/png", "buffer": make_png(WIDTH, HEIGHT)}
    )


def mask_editor(page):
    return page.get_by_role("group", name="Mask")


def mask_files(page) -> int:
    return page.locator("[data-mask-input]").evaluate("input => input.files.length")


def expect_mask_files(page, count):
    page.wait_for_function(
        "count => document.querySelector('[data-mask-input]').files.length === count", arg=count
    )


def read_mask(page) -> Image.Image:
    encoded = page.locator("[data-mask-input]").evaluate(
        """async input => {
            const file = input.files[0];
            const bytes = new Uint8Array(await file.arrayBuffer());
            let text = "";
            bytes.forEach(byte => { text += String.fromCharCode(byte); });
            return {name: file.name, type: file.type, data: btoa(text)};
        }"""
    )
    assert (encoded["name"], encoded["type"]) == ("mask.png", "image/png")
    image = Image.open(io.BytesIO(base64.b64decode(encoded["data"])))
    assert image.format == "PNG"
    return image


def alpha(image, x, y) -> int:
    return image.getpixel((x, y))[3]


def open_painter(page):
    log_in(page)
    page.get_by_label("Model").select_option("gpt-image-2")
    expect(mask_editor(page)).to_be_hidden()
    choose_image(page)
    expect(mask_editor(page)).to_be_visible()
    assert mask_files(page) == 0


def test_mask_editor_appears_for_an_image_and_a_mask_taking_model_only(page, alice):
    open_painter(page)
    stroke(page, (30, 100), (270, 100))
    expect_mask_files(page, 1)

    # A model without masks hides the painter and sends no mask; coming back restores it.
    page.get_by_label("Model").select_option("nano-banana")
    expect(mask_editor(page)).to_be_hidden()
    expect_mask_files(page, 0)
    page.get_by_label("Model").select_option("dall-e-2")
    expect(mask_editor(page)).to_be_visible()
    expect_mask_files(page, 1)


def test_a_brush_stroke_makes_a_transparent_mask_the_size_of_the_image(page, alice):
    open_painter(page)
    expect(page.get_by_role("button", name="Brush")).to_have_attribute("aria-pressed", "true")
    stroke(page, (30, 100), (270, 100))
    expect_mask_files(page, 1)

    mask = read_mask(page)
    assert mask.size == (WIDTH, HEIGHT)
    assert mask.mode == "RGBA"
    for x in (40, 150, 260):
        assert alpha(mask, x, 100) == 0
    assert alpha(mask, 0, 0) == 255
    assert alpha(mask, WIDTH - 1, HEIGHT - 1) == 255
    histogram = mask.getchannel("A").histogram()
    assert histogram[0] and histogram[255] and sum(histogram[1:255]) == 0  # strictly two-valued


def test_undo_clear_and_eraser(page, alice):
    open_painter(page)
    stroke(page, (30, 100), (270, 100))
    expect_mask_files(page, 1)
    page.get_by_role("button", name="Undo").click()
    expect_mask_files(page, 0)

    stroke(page, (30, 100), (270, 100))
    expect_mask_files(page, 1)
    page.get_by_role("button", name="Clear").click()
    expect_mask_files(page, 0)
    # Clear is one undoable step too, and Ctrl+Z inside the fieldset undoes.
    page.get_by_role("button", name="Clear").press("Control+z")
    expect_mask_files(page, 1)
    page.get_by_role("button", name="Undo").click()
    expect_mask_files(page, 0)

    stroke(page, (30, 100), (270, 100))
    expect_mask_files(page, 1)
    eraser = page.get_by_role("button", name="Eraser")
    eraser.click()
    expect(eraser).to_have_attribute("aria-pressed", "true")
    expect(page.get_by_role("button", name="Brush")).to_have_attribute("aria-pressed", "false")
    page.get_by_label("Brush size").fill("60")
    before = read_mask(page).tobytes()
    page.evaluate("window.maskBefore = document.querySelector('[data-mask-input]').files[0]")
    stroke(page, (150, 20), (150, 180))
    page.wait_for_function(
        "() => document.querySelector('[data-mask-input]').files[0] !== window.maskBefore"
    )
    mask = read_mask(page)
    assert mask.tobytes() != before
    assert alpha(mask, 150, 100) == 255  # erased
    assert alpha(mask, 40, 100) == 0  # still painted, away from the eraser
    assert alpha(mask, 260, 100) == 0


def test_reuse_settings_brings_the_mask_back_into_the_painter(page, alice):
    from imageedits.edits import images, services
    from imageedits.edits.models import Edit

    mask = Image.new("RGBA", (WIDTH, HEIGHT), (255, 255, 255, 255))
    mask.paste((0, 0, 0, 0), (0, 0, 100, 200))  # the left third is to be edited
    buffer = io.BytesIO()
    mask.save(buffer, "PNG")
    past = services.create_edit(alice, services.NewEdit(
        "replace the left side", "gpt-image-2", "", [images.reencode(make_png(WIDTH, HEIGHT))],
        [], mask=images.mask_for(buffer.getvalue(), (WIDTH, HEIGHT)), keep_unmasked=True,
    ))  # fmt: skip

    log_in(page)
    page.goto(f"/edits/new/?reuse={past.pk}")
    expect(mask_editor(page)).to_be_visible()
    expect(page.get_by_label("Keep everything outside the mask exactly")).to_be_checked()
    expect_mask_files(page, 1)
    reused = read_mask(page)
    assert reused.size == (WIDTH, HEIGHT)
    assert (alpha(reused, 50, 100), alpha(reused, 99, 10), alpha(reused, 150, 100)) == (0, 0, 255)

    stroke(page, (250, 20), (250, 180))  # and paint a little more
    page.get_by_role("button", name="Submit edit").click()
    expect(page).to_have_url(re.compile(r"/edits/\d+/$"))
    again = Edit.objects.exclude(pk=past.pk).get()
    assert again.keep_unmasked
    with again.mask.open("rb") as stored:
        stored_mask = Image.open(stored).convert("RGBA")
    assert (alpha(stored_mask, 50, 100), alpha(stored_mask, 150, 100)) == (0, 255)
    assert alpha(stored_mask, 250, 100) == 0


def test_a_painted_mask_survives_a_refused_form(page, alice):
    from imageedits.edits.models import Edit

    open_painter(page)
    stroke(page, (30, 100), (270, 100))
    expect_mask_files(page, 1)
    page.get_by_role("button", name="Submit edit").click()  # no instruction: refused

    expect(page.get_by_role("alert").first).to_be_visible()
    expect(mask_editor(page)).to_be_visible()
    expect_mask_files(page, 1)
    mask = read_mask(page)
    assert (alpha(mask, 150, 100), alpha(mask, 150, 10)) == (0, 255)

    page.get_by_label("Instruction").fill("make the stripe blue")
    page.get_by_role("button", name="Submit edit").click()
    expect(page).to_have_url(re.compile(r"/edits/\d+/$"))
    with Edit.objects.get().mask.open("rb") as stored:
        assert alpha(Image.open(stored).convert("RGBA"), 150, 100) == 0
