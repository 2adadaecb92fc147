"""The size rule of every model, at each bound, on both sides."""

import pytest

from imageedits.edits import catalog

GPT_IMAGE_2 = catalog.MODELS["gpt-image-2"]


@pytest.mark.parametrize(
    "size",
    [
        "", "auto",
        "1024x1024", "1536x1024", "1024x1536",
        "3840x2160", "2160x3840",  # longest side exactly 3840, pixels exactly the maximum
        "2880x2880",  # exactly 8,294,400 pixels
        "1024x640",  # exactly 655,360 pixels, the minimum
        "2400x800", "800x2400",  # exactly 3:1
        "3840x1280",  # 3:1 at the longest side
    ],
)  # fmt: skip
def test_gpt_image_2_accepts_sizes_within_the_rule(size):
    assert catalog.size_error(GPT_IMAGE_2, size) is None


@pytest.mark.parametrize(
    ("size", "message"),
    [
        ("big", "Size must be auto or WIDTHxHEIGHT"),
        ("1024*1024", "Size must be auto or WIDTHxHEIGHT"),
        ("1024x", "Size must be auto or WIDTHxHEIGHT"),
        ("-1024x1024", "Size must be auto or WIDTHxHEIGHT"),
        ("0x1024", "greater than zero"),
        ("1000x1024", "multiples of 16 (1000 is not)"),
        ("1024x1000", "multiples of 16 (1000 is not)"),
        ("1000x1000", "multiples of 16 (neither side is)"),
        ("3856x1296", "longer side can be at most 3840 pixels (3856 is more)"),
        ("1296x3856", "longer side can be at most 3840 pixels"),
        ("2896x2880", "At most 8,294,400 pixels in total (2896x2880 is 8,340,480)"),
        ("1008x640", "At least 655,360 pixels in total (1008x640 is 645,120)"),
        ("512x512", "At least 655,360 pixels"),
        ("2416x800", "at most 3 times the shorter side"),
        ("800x2416", "at most 3 times the shorter side"),
    ],
)
def test_gpt_image_2_refuses_sizes_outside_the_rule_and_says_which_part(size, message):
    assert message in catalog.size_error(GPT_IMAGE_2, size)


@pytest.mark.parametrize("name", ["gpt-image-1", "gpt-image-1.5"])
def test_gpt_image_1_models_take_their_fixed_list(name):
    model = catalog.MODELS[name]
    for size in ["", "auto", "1024x1024", "1536x1024", "1024x1536"]:
        assert catalog.size_error(model, size) is None
    for size in ["2048x2048", "1792x1024", "512x512"]:
        assert "accepts these sizes only" in catalog.size_error(model, size)


def test_dall_e_2_takes_its_three_squares():
    model = catalog.MODELS["dall-e-2"]
    for size in ["", "256x256", "512x512", "1024x1024"]:
        assert catalog.size_error(model, size) is None
    for size in ["auto", "1024x1536", "2048x2048"]:
        assert "256x256, 512x512, 1024x1024" in catalog.size_error(model, size)


@pytest.mark.parametrize("name", ["nano-banana", "nano-banana-2", "nano-banana-pro"])
def test_nano_banana_models_have_no_size(name):
    model = catalog.MODELS[name]
    assert not model.takes_size
    assert catalog.size_error(model, "17x3") is None


def test_every_recommended_size_passes_the_rule():
    for tiers in catalog.RECOMMENDED_SIZES.values():
        for size in tiers:
            assert catalog.size_error(GPT_IMAGE_2, size) is None, size


def test_nano_banana_prices_are_the_references():
    prices = {name: catalog.MODELS[name].credits for name in catalog.MODELS if "nano" in name}
    assert prices == {"nano-banana": 0.14, "nano-banana-2": 0.28, "nano-banana-pro": 0.35}


def test_every_model_has_a_default_price():
    prices = {name: model.credits for name, model in catalog.MODELS.items()}
    assert None not in prices.values()
    assert prices["gpt-image-2"] == 0.05
    assert prices["gpt-image-1.5"] == 0.03
    assert prices["gpt-image-1"] == 0.04
    assert prices["dall-e-2"] == 0.02
