"""The catalog drives the form and the request: what each model takes reaches the upstream,
what it ignores never does; masks; cost; and the form's model-dependent fields."""

import io
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from imageedits.edits import catalog, images
from imageedits.edits.models import Edit

from .conftest import make_png, run_edit

pytestmark = pytest.mark.django_db


def mask_png(width=64, height=48, hole=(10, 10, 40, 30), alpha=True) -> bytes:
    """An opaque PNG with a transparent rectangle: the area to edit."""
    mask = Image.new("RGBA" if alpha else "RGB", (width, height), "white")
    if alpha:
        mask.paste((0, 0, 0, 0), hole)
    buffer = io.BytesIO()
    mask.save(buffer, format="PNG")
    return buffer.getvalue()


def post(client, **fields):
    data = {
        "prompt": "invert the colours",
        "model": "gpt-image-2",
        "size": "auto",
        "images": [SimpleUploadedFile("photo.png", make_png(), "image/png")],
    }
    data.update(fields)
    return client.post(reverse("edit-new"), data)


# --- Parameters -------------------------------------------------------------------------------


def test_param_rules_of_the_catalog():
    gpt_image_1 = catalog.MODELS["gpt-image-1"]
    assert catalog.param_errors(gpt_image_1, {"quality": "high", "input_fidelity": "low"}) == {}
    problems = catalog.param_errors(gpt_image_1, {"background": "transparent",
                                                  "output_format": "jpeg"})  # fmt: skip
    assert "needs PNG or WebP" in problems["background"]
    problems = catalog.param_errors(gpt_image_1, {"output_compression": "50"})
    assert "JPEG and WebP only" in problems["output_compression"]
    problems = catalog.param_errors(gpt_image_1, {"quality": "ultra"})
    assert "must be one of auto, low, medium, high" in problems["quality"]
    problems = catalog.param_errors(catalog.MODELS["gpt-image-2"], {"input_fidelity": "high"})
    assert "does not take input_fidelity" in problems["input_fidelity"]
    assert catalog.params_for(catalog.MODELS["nano-banana"], {"quality": "high"}) == {}


def test_the_params_a_model_takes_reach_the_upstream(logged_in, simulator):
    post(logged_in, model="gpt-image-1", size="1024x1024", quality="high", input_fidelity="low",
         output_format="webp", output_compression="80")  # fmt: skip
    edit = Edit.objects.get()
    assert edit.params == {
        "quality": "high", "input_fidelity": "low", "output_format": "webp",
        "output_compression": "80",
    }  # fmt: skip
    run_edit(edit)
    fields = simulator.received[-1]["fields"]
    assert fields["quality"] == ["high"] and fields["input_fidelity"] == ["low"]
    assert fields["output_compression"] == ["80"]
    assert Edit.objects.get().status == Edit.Status.SUCCEEDED


def test_params_a_model_ignores_never_reach_the_upstream(logged_in, simulator):
    post(logged_in, model="nano-banana", size="1024x1024", quality="high", candidates="1",
         mask=SimpleUploadedFile("mask.png", mask_png(), "image/png"))  # fmt: skip
    edit = Edit.objects.get()
    assert (edit.params, edit.size, edit.mask.name) == ({}, "", "")
    run_edit(edit)
    sent = simulator.received[-1]
    assert set(sent["fields"]) == {"model", "prompt"} and set(sent["files"]) == {"image"}


def test_input_fidelity_is_dropped_for_gpt_image_2(logged_in, simulator):
    post(logged_in, input_fidelity="high")
    edit = Edit.objects.get()
    assert edit.params == {}
    run_edit(edit)
    assert "input_fidelity" not in simulator.received[-1]["fields"]


def test_a_bad_combination_of_params_is_refused_in_the_form(logged_in):
    response = post(logged_in, background="transparent", output_format="jpeg")
    assert response.status_code == 400
    assert "A transparent background needs PNG or WebP output." in response.content.decode()
    assert Edit.objects.count() == 0


def test_compression_out_of_range_is_refused(logged_in):
    response = post(logged_in, output_format="jpeg", output_compression="101")
    assert "Compression (%) must be a whole number from 0 to 100." in response.content.decode()


# --- Sizes in the form --------------------------------------------------------------------------


def test_a_custom_size_is_checked_by_the_rule(logged_in):
    response = post(logged_in, size="custom", custom_size="1000x1000")
    assert "multiples of 16 (neither side is)" in response.content.decode()
    post(logged_in, size="custom", custom_size="1600x1200")
    assert Edit.objects.get().size == "1600x1200"


def test_the_live_size_check_uses_the_same_rule(logged_in):
    url = reverse("edit-size-check")
    bad = logged_in.get(url, {"model": "gpt-image-2", "custom_size": "512x512"})
    assert "At least 655,360 pixels" in bad.content.decode()
    good = logged_in.get(url, {"model": "gpt-image-2", "custom_size": "1600x1200"})
    assert 'role="alert"' not in good.content.decode()


# --- Masks ----------------------------------------------------------------------------------


def test_a_mask_is_stored_and_sent_as_a_multipart_file(logged_in, simulator):
    post(logged_in, mask=SimpleUploadedFile("mask.png", mask_png(), "image/png"))
    edit = Edit.objects.get()
    with edit.mask.open("rb") as handle:
        stored = Image.open(handle)
        assert (stored.size, stored.mode) == ((64, 48), "RGBA")
    run_edit(edit)
    sent = simulator.received[-1]
    assert sent["content_type"] == "multipart"
    assert (sent["files"]["mask"][0]["width"], sent["files"]["mask"][0]["height"]) == (64, 48)


@pytest.mark.parametrize(
    ("mask", "message"),
    [
        (mask_png(width=100), "The mask is 100x48 but the first image is 64x48"),
        (mask_png(alpha=False), "must be a PNG with an alpha channel"),
        (mask_png(hole=(0, 0, 0, 0)), "has no transparent area"),
        (make_png(image_format="JPEG"), "must be a PNG with an alpha channel"),
    ],
)
def test_a_bad_mask_is_refused_with_its_reason(logged_in, stored_files, mask, message):
    response = post(logged_in, mask=SimpleUploadedFile("mask.png", mask, "image/png"))
    assert message in response.content.decode()
    assert Edit.objects.count() == 0 and stored_files() == []


def test_with_a_mask_a_url_input_is_fetched_and_stored_so_the_mask_can_be_checked(
    logged_in, simulator
):
    url = f"{simulator.url}/samples/square.png"  # 1024x1024
    wrong = post(logged_in, images=[], image_urls=url,
                 mask=SimpleUploadedFile("mask.png", mask_png(), "image/png"))  # fmt: skip
    assert "The mask is 64x48 but the first image is 1024x1024" in wrong.content.decode()
    post(logged_in, images=[], image_urls=url,
         mask=SimpleUploadedFile("mask.png", mask_png(1024, 1024), "image/png"))  # fmt: skip
    stored = Edit.objects.get().inputs.get()
    assert stored.file and not stored.url and (stored.width, stored.height) == (1024, 1024)


def test_dall_e_2_url_inputs_meet_its_rules_in_the_form(logged_in, simulator):
    landscape = f"{simulator.url}/samples/landscape.png"
    response = post(logged_in, model="dall-e-2", size="1024x1024", images=[],
                    image_urls=landscape)  # fmt: skip
    assert "dall-e-2 needs square images" in response.content.decode()
    square = f"{simulator.url}/samples/square.png"
    post(logged_in, model="dall-e-2", size="1024x1024", images=[], image_urls=square)
    assert Edit.objects.get().inputs.get().file.name.endswith(".png")


def test_keeping_the_unmasked_pixels_restores_the_original_outside_the_mask(logged_in):
    hole = (10, 10, 40, 30)
    post(logged_in, size="1024x1024", keep_unmasked="on",
         mask=SimpleUploadedFile("mask.png", mask_png(hole=hole), "image/png"))  # fmt: skip
    edit = Edit.objects.get()
    assert edit.keep_unmasked
    run_edit(edit)

    result = edit.results.get()
    assert result.raw_file  # the model's own output is kept
    with result.file.open("rb") as handle:
        kept = Image.open(handle).convert("RGB")
    with result.raw_file.open("rb") as handle:
        raw = Image.open(handle)
        assert raw.size == (1024, 1024)
    with edit.inputs.get().file.open("rb") as handle:
        original = Image.open(handle).convert("RGB")
    assert kept.size == original.size == (64, 48)  # scaled back to the original's size
    inside_changed = 0
    for x in range(64):
        for y in range(48):
            inside = hole[0] <= x < hole[2] and hole[1] <= y < hole[3]
            if not inside:
                assert kept.getpixel((x, y)) == original.getpixel((x, y)), (x, y)
            elif kept.getpixel((x, y)) != original.getpixel((x, y)):
                inside_changed += 1
    assert inside_changed > 0.5 * (hole[2] - hole[0]) * (hole[3] - hole[1])


def test_the_feathered_edge_stays_inside_the_mask():
    original = make_png(64, 48)
    black = images.encode(Image.new("RGB", (64, 48), "black"), "PNG")
    kept, _ = images.decode(images.keep_outside_mask(black, original, mask_png()).content)
    kept = kept.convert("RGB")
    assert kept.getpixel((9, 20)) == (20, 120, 220)  # one pixel outside: the original, exactly
    assert 0 < max(kept.getpixel((10, 20))) < 120  # on the edge: blended
    assert max(kept.getpixel((25, 20))) < 8  # deep inside: the result


# --- Cost -----------------------------------------------------------------------------------


def test_the_cost_is_recorded_on_the_edit(logged_in):
    post(logged_in, model="nano-banana-pro", candidates="3")
    assert Edit.objects.get().credits == Decimal("1.05")


def test_the_recommended_model_has_a_default_price_that_settings_override(logged_in, settings):
    post(logged_in, candidates="2")
    assert Edit.objects.get().credits == Decimal("0.10")
    settings.MODEL_CREDITS = {"gpt-image-2": 0.5}
    post(logged_in, candidates="2")
    assert Edit.objects.order_by("-id").first().credits == Decimal("1.00")


# --- The fields follow the model ----------------------------------------------------------------


def test_the_params_fragment_shows_what_each_model_takes(logged_in):
    url = reverse("edit-params")
    gpt_image_2 = logged_in.get(url, {"model": "gpt-image-2"}).content.decode()
    assert "1K · 1024x1024" in gpt_image_2 and "Custom…" in gpt_image_2
    assert "Input fidelity" not in gpt_image_2 and "Quality" in gpt_image_2
    gpt_image_1 = logged_in.get(url, {"model": "gpt-image-1"}).content.decode()
    assert "Input fidelity" in gpt_image_1 and "Custom…" not in gpt_image_1
    nano = logged_in.get(url, {"model": "nano-banana-pro", "candidates": "3"}).content.decode()
    assert 'name="size"' not in nano and "chooses the output size itself" in nano
    assert "3 × 0.35 = <strong>1.05 credits</strong>" in nano
    assert 'data-takes-mask="false"' in nano
    assert "<html" not in nano


# --- The app's rules against the simulator's own -----------------------------------------------


def every_offered_request():
    """(model, size, params): each size and each parameter value the app's catalog offers."""
    for model in catalog.MODELS.values():
        sizes = model.sizes if model.sizes is not None else ["auto", "1024x1024", "1024x1536"]
        for size in sizes or [""]:
            yield model.name, "" if size == "auto" else size, {}
        for param in model.params:
            values = param.choices or [str(param.number_range[1])]
            for value in values:
                params = {param.name: value}
                if param.name == "output_compression" or value == "transparent":
                    params["output_format"] = "webp"  # the combination rule of both sides
                yield model.name, "", params


@pytest.mark.parametrize(("model", "size", "params"), list(every_offered_request()))
def test_every_size_and_parameter_the_app_offers_is_accepted_upstream(
    simulator, model, size, params
):
    from imageedits.edits import upstream

    image = images.reencode(make_png(64, 64))
    request = upstream.EditRequest(
        model, "blur", size,
        [upstream.InputFile("a.png", image.content, "image/png")], params=params,
    )  # fmt: skip
    answer = upstream.submit(request)
    assert answer.images


def test_a_wrong_rule_in_the_apps_catalog_is_caught_by_the_simulator(alice, monkeypatch):
    """The simulator judges requests by its own rules, written from the reference: had the
    catalog offered gpt-image-1 a 2K size, the edit would be refused upstream, and this shows."""
    import dataclasses

    from imageedits.edits import services

    right = catalog.MODELS["gpt-image-1"]
    wrong = dataclasses.replace(right, sizes=(*right.sizes, "2048x2048"))
    monkeypatch.setitem(catalog.MODELS, "gpt-image-1", wrong)
    upload = images.reencode(make_png())
    edit = services.create_edit(
        alice, services.NewEdit("blur", "gpt-image-1", "2048x2048", [upload], [])
    )
    run_edit(edit)
    edit.refresh_from_db()
    assert edit.status == Edit.Status.FAILED
    assert "rejected the request" in edit.error_message
    assert "1024x1024, 1536x1024, 1024x1536" in edit.error_message
