"""Compare: one image and instruction sent to several models in one go, each its own edit with
the model's defaults, shown side by side with each one's time and cost, one picked as the
comparison's chosen result. A model that cannot take the inputs is named before anything is
sent."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from imageedits.edits.models import Batch, Edit

from .conftest import make_png, run_tasks

pytestmark = pytest.mark.django_db(transaction=True)

MODELS = ["gpt-image-2", "gpt-image-1.5", "nano-banana-pro"]


def post_compare(client, models=MODELS, width=64, height=48, **fields):
    image = SimpleUploadedFile("cat.png", make_png(width, height), content_type="image/png")
    data = {"prompt": "make it a watercolour", "models": models, "image": image, **fields}
    return client.post(reverse("compare-new"), data)


def edit_requests(simulator) -> list[dict]:
    return [r for r in simulator.received if r["path"].endswith("/images/edits")]


def test_a_comparison_makes_an_edit_per_model_with_its_defaults(logged_in, alice):
    response = post_compare(logged_in)
    batch = Batch.objects.get()
    assert response.status_code == 302 and response["Location"] == batch.get_absolute_url()
    assert batch.kind == Batch.Kind.COMPARE
    edits = batch.edits.order_by("pk")
    assert [edit.model for edit in edits] == MODELS
    assert {(edit.size, edit.candidates, str(edit.params)) for edit in edits} == {("", 1, "{}")}


def test_the_page_shows_them_side_by_side_with_time_and_cost(logged_in, alice):
    post_compare(logged_in)
    batch = Batch.objects.get()
    run_tasks()
    page = logged_in.get(batch.get_absolute_url()).content.decode()
    for model, cost in (
        ("gpt-image-2", "0.05"),
        ("gpt-image-1.5", "0.03"),
        ("nano-banana-pro", "0.35"),
    ):
        assert f'aria-label="{model}"' in page
        assert f"Cost: {cost} credits" in page
    assert page.count("Time: ") == 3 and "under way" not in page


def test_a_model_that_cannot_take_the_image_is_named_and_nothing_is_sent(logged_in, simulator):
    response = post_compare(logged_in, models=["gpt-image-2", "dall-e-2"], width=64, height=48)
    assert response.status_code == 400
    assert "dall-e-2 needs square images; “cat.png” is 64x48." in response.content.decode()
    assert not Batch.objects.exists() and not Edit.objects.exists()
    run_tasks()
    assert edit_requests(simulator) == []


def test_a_square_image_goes_to_dall_e_2_as_a_png(logged_in):
    post_compare(logged_in, models=["gpt-image-2", "dall-e-2"], width=64, height=64)
    run_tasks()
    assert set(Edit.objects.values_list("status", flat=True)) == {Edit.Status.SUCCEEDED}


def test_an_instruction_too_long_for_one_model_is_named(logged_in):
    response = post_compare(logged_in, models=["gpt-image-2", "dall-e-2"], width=64, height=64,
                            prompt="x" * 1001)  # fmt: skip
    assert "dall-e-2 takes instructions of at most 1,000 characters" in response.content.decode()
    assert not Edit.objects.exists()


def test_one_model_is_not_a_comparison(logged_in):
    response = post_compare(logged_in, models=["gpt-image-2"])
    assert "Pick at least two models to compare." in response.content.decode()


def test_picking_one_stores_it_on_the_comparison_and_marks_it(logged_in, alice):
    post_compare(logged_in)
    batch = Batch.objects.get()
    run_tasks()
    picked = batch.edits.get(model="nano-banana-pro")

    response = logged_in.post(reverse("compare-choose", args=[batch.pk, picked.pk]))

    assert response.status_code == 302
    batch.refresh_from_db()
    assert batch.chosen_edit == picked
    page = logged_in.get(batch.get_absolute_url()).content.decode()
    assert page.count('<button type="submit">Choose ') == 2 and "Chosen" in page


def test_an_edit_without_a_result_cannot_be_picked(logged_in, alice):
    post_compare(logged_in)
    batch = Batch.objects.get()  # nothing has run
    edit = batch.edits.first()
    assert logged_in.post(reverse("compare-choose", args=[batch.pk, edit.pk])).status_code == 404


def test_the_status_poll_stops_once_every_model_has_answered(logged_in):
    post_compare(logged_in)
    batch = Batch.objects.get()
    url = reverse("compare-status", args=[batch.pk])
    assert logged_in.get(url).status_code == 200
    run_tasks()
    assert logged_in.get(url).status_code == 286


@pytest.mark.parametrize(("name", "method"), [("compare-detail", "get"), ("compare-status", "get")])
def test_another_persons_comparison_is_not_found(client, alice, bob, name, method):
    client.force_login(alice)
    post_compare(client)
    batch = Batch.objects.get()
    client.force_login(bob)
    assert getattr(client, method)(reverse(name, args=[batch.pk])).status_code == 404
    edit = batch.edits.first()
    assert client.post(reverse("compare-choose", args=[batch.pk, edit.pk])).status_code == 404


def test_a_batch_is_not_a_comparison_and_the_list_shows_only_ones_own(client, alice, bob):
    client.force_login(alice)
    post_compare(client)
    batch = Batch.objects.get()
    assert client.get(reverse("batch-detail", args=[batch.pk])).status_code == 404
    assert "Comparison" in client.get(reverse("batch-list")).content.decode()
    client.force_login(bob)
    assert "make it a watercolour" not in client.get(reverse("batch-list")).content.decode()


def test_an_image_by_url_is_fetched_once_and_sent_to_each_model(logged_in, simulator):
    url = f"{simulator.url}/samples/square.png"
    data = {
        "prompt": "make it a watercolour",
        "models": ["gpt-image-2", "dall-e-2"],
        "image_url": url,
    }
    response = logged_in.post(reverse("compare-new"), data)
    assert response.status_code == 302
    run_tasks()
    edits = Batch.objects.get().edits.all()
    assert {edit.status for edit in edits} == {Edit.Status.SUCCEEDED}
    assert {edit.batch_name for edit in edits} == {"square.png"}
    assert all(edit.inputs.get().file for edit in edits)  # stored, not passed on as a URL


def test_an_image_and_a_url_together_are_refused(logged_in, simulator):
    response = post_compare(logged_in, image_url=f"{simulator.url}/samples/square.png")
    assert "Give one image: upload a file or give its URL, not both." in response.content.decode()
    response = logged_in.post(reverse("compare-new"), {"prompt": "p", "models": MODELS})
    assert "Give the image to compare: upload a file or give its URL." in response.content.decode()


def test_an_image_over_the_upload_limit_is_refused_with_the_limit(logged_in, settings):
    settings.EDIT_MAX_UPLOAD_BYTES = 100
    page = post_compare(logged_in).content.decode().replace("\xa0", " ")
    assert "“cat.png” is 149 bytes; the limit is 100 bytes per image." in page
    assert not Edit.objects.exists()


def test_each_edit_page_links_back_to_its_comparison(logged_in):
    post_compare(logged_in)
    batch = Batch.objects.get()
    page = logged_in.get(batch.edits.first().get_absolute_url()).content.decode()
    assert f'<a href="{batch.get_absolute_url()}">Comparison {batch.pk}</a>' in page
