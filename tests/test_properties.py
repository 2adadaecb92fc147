"""Property tests (Hypothesis): the size rule against its definition, and the form never
crashing and agreeing with the catalog, whatever is typed."""

import pytest
from django import forms
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils.datastructures import MultiValueDict
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imageedits.edits import catalog
from imageedits.edits.forms import EditForm

from .conftest import make_png

GPT_IMAGE_2 = catalog.MODELS["gpt-image-2"]


def allowed(width: int, height: int) -> bool:
    """The rule as the reference and upstream-notes.md state it."""
    return (
        width > 0 and height > 0
        and width % 16 == 0 and height % 16 == 0
        and max(width, height) <= 3840
        and 655_360 <= width * height <= 8_294_400
        and max(width, height) <= 3 * min(width, height)
    )  # fmt: skip


sides = st.integers(min_value=0, max_value=5000)
# Any text a browser could send; Django refuses NUL characters in every field before our rules.
typed = st.text(alphabet=st.characters(exclude_characters="\x00"), max_size=12)
multiples = st.integers(min_value=1, max_value=260).map(lambda n: n * 16)


@given(width=sides, height=sides)
def test_the_size_rule_matches_its_definition(width, height):
    problem = catalog.size_error(GPT_IMAGE_2, f"{width}x{height}")
    assert (problem is None) == allowed(width, height)


@given(width=multiples, height=multiples)
def test_the_size_rule_on_multiples_of_16(width, height):
    problem = catalog.size_error(GPT_IMAGE_2, f"{width}x{height}")
    assert (problem is None) == allowed(width, height)


@given(text=st.text(max_size=30))
def test_any_text_as_a_size_gets_an_answer_not_a_crash(text):
    problem = catalog.size_error(GPT_IMAGE_2, text)
    assert problem is None or problem.endswith(".")


def _is_whole_number_in(text: str, low: int, high: int) -> bool:
    """Empty (the default), or what Django's IntegerField takes, within bounds."""
    try:
        value = forms.IntegerField(required=False).clean(text)
    except forms.ValidationError:
        return False
    return value is None or low <= value <= high


@pytest.mark.django_db
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    model=st.sampled_from(sorted(catalog.MODELS)),
    size=st.one_of(
        st.sampled_from(["auto", "", "custom", "1024x1024", "256x256", "1536x1024", "2048x2048"]),
        typed,
    ),
    custom=st.one_of(st.builds(lambda w, h: f"{w}x{h}", sides, sides), typed),
    candidates=st.one_of(st.integers(min_value=-2, max_value=12).map(str), typed),
    quality=st.sampled_from(["", "low", "high", "ultra"]),
)
def test_the_form_agrees_with_the_catalog(model, size, custom, candidates, quality):
    image = SimpleUploadedFile("square.png", make_png(64, 64), "image/png")
    data = {
        "prompt": "blur it", "model": model, "size": size, "custom_size": custom,
        "candidates": candidates, "quality": quality,
    }  # fmt: skip
    form = EditForm(data, MultiValueDict({"images": [image]}))
    valid = form.is_valid()  # never raises

    rule = catalog.MODELS[model]
    chosen = custom.strip().lower().replace(" ", "") if size.strip().lower() == "custom" else size
    chosen = chosen.strip().lower()
    if rule.takes_size and not (size.strip().lower() == "custom" and not chosen):
        size_ok = catalog.size_error(rule, "" if chosen == "auto" else chosen) is None
    else:
        size_ok = rule.takes_size is False
    count_ok = _is_whole_number_in(candidates, 1, 10)
    quality_ok = quality != "ultra" or "quality" not in {p.name for p in rule.params}
    assert valid == (size_ok and count_ok and quality_ok), form.errors
    if valid:
        assert form.cleaned_data["candidates"] in range(1, 11)
        assert catalog.size_error(rule, form.cleaned_data["size"]) is None
