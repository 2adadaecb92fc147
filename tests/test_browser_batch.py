"""A person in Chromium starts a batch (files chosen and dropped), sees its cost before
submitting, watches it run and downloads its results; and compares models on one image, side
by side, picking one."""

import base64
import io
import re
import zipfile
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from imageedits.edits import batches
from imageedits.edits.models import Batch, PersonBudget

from .conftest import log_in, make_png

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def image(name: str, width=64, height=48) -> dict:
    return {"name": name, "mimeType": "image/png", "buffer": make_png(width, height)}


def drop_files(page, names: list[str]) -> None:
    """Drop PNG files on the drop zone, as a file manager would."""
    png = base64.b64encode(make_png()).decode()
    page.locator("[data-batch-drop]").evaluate(
        """(zone, [names, png]) => {
            const data = new DataTransfer();
            const bytes = Uint8Array.from(atob(png), (c) => c.charCodeAt(0));
            names.forEach((name) => data.items.add(new File([bytes], name, { type: "image/png" })));
            zone.dispatchEvent(new DragEvent("drop", { dataTransfer: data, bubbles: true }));
        }""",
        [names, png],
    )


def test_a_batch_of_chosen_and_dropped_files_runs_and_downloads_as_one_zip(
    page, alice, worker, simulator
):
    log_in(page)
    page.get_by_role("link", name="Batches").click()
    page.get_by_role("link", name="New batch").click()
    expect(page.get_by_role("heading", name="New batch")).to_be_visible()

    page.get_by_label("Images", exact=True).set_input_files([image("beach.png"), image("hill.png")])
    expect(page.get_by_text("2 images chosen.")).to_be_visible()
    drop_files(page, ["lake.png"])
    expect(page.get_by_text("3 images chosen.")).to_be_visible()
    page.get_by_label("Instruction").fill("Make it sepia")
    expect(
        page.get_by_text("Batch cost: 3 images × 1 result × 0.05 = 0.15 credits.")
    ).to_be_visible()

    page.get_by_role("button", name="Start batch").click()

    expect(page.get_by_role("heading", name="Batch")).to_be_visible()
    expect(page.get_by_text("3 succeeded · 0 failed")).to_be_visible(timeout=30_000)
    expect(page.get_by_role("progressbar")).to_have_attribute("value", "3")
    tiles = page.get_by_role("list", name="Images of the batch").get_by_role("listitem")
    expect(tiles).to_have_count(3)
    expect(page.get_by_role("img", name="Result for lake.png")).to_be_visible()

    with page.expect_download() as download:
        page.get_by_role("link", name="Download all results").click()
    batch = Batch.objects.get()
    assert download.value.suggested_filename == f"batch-{batch.pk}-make-it-sepia.zip"
    with zipfile.ZipFile(io.BytesIO(open(download.value.path(), "rb").read())) as archive:
        assert archive.namelist() == ["001-beach.png", "002-hill.png", "003-lake.png"]


def test_a_batch_refused_says_why_on_the_page(page, alice):
    log_in(page)
    page.goto("/batches/new/")
    page.get_by_label("ZIP of images").set_input_files(
        {"name": "photos.zip", "mimeType": "application/zip", "buffer": b"not a zip"}
    )
    page.get_by_label("Instruction").fill("Make it sepia")
    page.get_by_role("button", name="Start batch").click()
    expect(page.get_by_role("alert")).to_have_text(
        "“photos.zip” is not a ZIP file that can be read."
    )


def test_models_compared_side_by_side_and_one_picked(page, alice, worker, simulator):
    log_in(page)
    page.get_by_role("link", name="Compare models").click()
    expect(page.get_by_role("heading", name="Compare models")).to_be_visible()
    page.get_by_label("Image", exact=True).set_input_files(image("cat.png"))
    page.get_by_label("Instruction").fill("Make it a watercolour")
    expect(page.get_by_label("gpt-image-2")).to_be_checked()
    page.get_by_label("nano-banana-pro").uncheck()
    page.get_by_label("nano-banana", exact=True).check()

    page.get_by_role("button", name="Compare").click()

    results = page.get_by_role("list", name="Results side by side")
    for model in ("gpt-image-2", "gpt-image-1.5", "nano-banana"):
        card = results.get_by_role("listitem", name=model, exact=True)
        expect(card.get_by_role("img", name=f"Result of {model}")).to_be_visible(timeout=30_000)
        expect(card.get_by_text("Time: ")).not_to_have_text("Time: under way")
    expect(results.get_by_role("listitem", name="nano-banana", exact=True)).to_contain_text(
        "Cost: 0.14 credits"
    )

    page.get_by_role("button", name="Choose nano-banana").click()

    expect(page.get_by_text("nano-banana's result is the chosen one.")).to_be_visible()
    chosen = results.get_by_role("listitem", name="nano-banana", exact=True)
    expect(chosen.get_by_text("Chosen", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name=re.compile("^Choose "))).to_have_count(2)


def test_a_model_that_cannot_take_the_image_is_named_on_the_page(page, alice):
    log_in(page)
    page.goto("/compare/new/")
    page.get_by_label("Image", exact=True).set_input_files(image("wide.png"))
    page.get_by_label("Instruction").fill("Make it a watercolour")
    page.get_by_label("dall-e-2").check()
    page.get_by_role("button", name="Compare").click()
    expect(page.get_by_role("alert")).to_contain_text(
        "dall-e-2 needs square images; “wide.png” is 64x48."
    )


def test_a_folder_chosen_brings_its_images_only_and_the_cost_follows_the_model(
    page, alice, tmp_path
):
    folder = tmp_path / "holiday"
    (folder / "day-2").mkdir(parents=True)
    (folder / "beach.png").write_bytes(make_png())
    (folder / "day-2" / "hill.png").write_bytes(make_png())
    (folder / "notes.txt").write_text("not an image")
    log_in(page)
    page.goto("/batches/new/")

    page.get_by_label("Folder of images").set_input_files(folder)

    expect(page.get_by_text("2 images chosen.")).to_be_visible()
    page.get_by_label("Image URLs").fill(
        "https://example.com/one.png\n\nhttps://example.com/two.png"
    )
    page.get_by_label("Results per image").fill("2")
    with page.expect_response("**/edits/new/params/**"):
        page.get_by_label("Model").select_option("nano-banana-pro")
    expect(
        page.get_by_text("Batch cost: 4 images × 2 results × 0.35 = 2.80 credits.")
    ).to_be_visible()


def test_failed_images_are_retried_and_a_batch_under_way_is_cancelled(
    page, alice, worker, simulator
):
    simulator.inject("forbidden", times=1)
    log_in(page)
    page.goto("/batches/new/")
    page.get_by_label("Images", exact=True).set_input_files([image("a.png"), image("b.png")])
    page.get_by_label("Instruction").fill("Make it sepia")
    page.get_by_role("button", name="Start batch").click()
    expect(page.get_by_text("1 succeeded · 1 failed")).to_be_visible(timeout=30_000)
    expect(page.get_by_role("listitem").filter(has_text="Failed")).to_have_count(1)

    page.get_by_role("button", name="Retry failed").click()

    expect(page.get_by_text("1 failed edit queued again.")).to_be_visible()
    expect(page.get_by_text("2 succeeded · 0 failed")).to_be_visible(timeout=30_000)
    expect(page.get_by_role("button", name="Retry failed")).to_have_count(0)


def test_a_queued_batch_is_cancelled_from_its_page(page, alice):
    log_in(page)  # no worker: the batch stays queued
    page.goto("/batches/new/")
    page.get_by_label("Images", exact=True).set_input_files([image("a.png"), image("b.png")])
    page.get_by_label("Instruction").fill("Make it sepia")
    page.get_by_role("button", name="Start batch").click()
    expect(page.get_by_text("0 running · 2 queued")).to_be_visible()

    page.get_by_role("button", name="Cancel batch").click()

    expect(page.get_by_text("2 edits cancelled.")).to_be_visible()
    expect(page.get_by_text("Progress: 2 of 2 ended")).to_be_visible()
    expect(page.get_by_role("button", name="Cancel batch")).to_have_count(0)


def test_the_budget_left_is_shown_and_a_batch_past_it_refused_as_a_whole(page, alice):
    PersonBudget.objects.create(person=alice, monthly_budget=Decimal("0.12"))
    log_in(page)
    page.goto("/batches/new/")
    # (the new-edit form's budget lines, for one edit, are hidden on this page)
    budget = page.locator("p:visible", has_text="Your monthly budget: 0.12 of 0.12 credits left")
    expect(budget).to_have_text("Your monthly budget: 0.12 of 0.12 credits left this month.")
    files = [image(f"{name}.png") for name in ("a", "b", "c")]
    page.get_by_label("Images", exact=True).set_input_files(files)
    expect(budget).to_contain_text("not enough for this batch")
    page.get_by_label("Instruction").fill("Make it sepia")

    page.get_by_role("button", name="Start batch").click()

    expect(page.get_by_role("alert")).to_have_text(
        "This batch of 3 edits costs 0.15 credits; your monthly budget has 0.12 left."
    )
    assert not Batch.objects.exists()


def test_the_batch_page_opens_at_once_and_fills_in_as_its_images_are_read(page, alice):
    log_in(page)  # no worker: the images are read below, one after another, as a task would
    page.goto("/batches/new/")
    notes = {"name": "notes.png", "mimeType": "image/png", "buffer": b"hello"}
    page.get_by_label("Images", exact=True).set_input_files([image("beach.png"), notes])
    page.get_by_label("Instruction").fill("Make it sepia")
    page.get_by_role("button", name="Start batch").click()

    expect(page.get_by_text("Preparing 2 images…")).to_be_visible()
    tiles = page.get_by_role("list", name="Images of the batch").get_by_role("listitem")
    expect(tiles.filter(has_text="Preparing")).to_have_count(2)

    for edit_id in Batch.objects.get().edits.order_by("pk").values_list("pk", flat=True):
        batches.prepare_image.call(edit_id)

    expect(page.get_by_text("0 succeeded · 1 failed · 0 running · 1 queued")).to_be_visible()
    expect(page.get_by_text("Preparing 2 images…")).to_have_count(0)
    expect(tiles.filter(has_text="notes.png")).to_contain_text(
        "“notes.png” cannot be used: It is not a PNG, JPEG or WebP image that can be read."
    )
    expect(tiles.filter(has_text="beach.png")).to_contain_text("Queued")


def test_the_compare_page_shows_the_cost_of_the_ticked_models_before_submitting(page, alice):
    PersonBudget.objects.create(person=alice, monthly_budget=Decimal("0.30"))
    log_in(page)
    page.goto("/compare/new/")
    cost = page.locator("[data-compare-cost]")
    budget = page.get_by_text("Your monthly budget: 0.30 of 0.30 credits left")
    expect(cost).to_have_text(
        "Comparison cost: 0.05 + 0.03 + 0.35 = 0.43 credits (3 models, one result each)."
    )
    expect(budget).to_contain_text("not enough for this comparison")

    page.get_by_label("nano-banana-pro").uncheck()
    page.get_by_label("nano-banana", exact=True).check()

    expect(cost).to_have_text(
        "Comparison cost: 0.05 + 0.03 + 0.14 = 0.22 credits (3 models, one result each)."
    )
    expect(budget).to_have_text("Your monthly budget: 0.30 of 0.30 credits left this month.")
