"""The JSON API's batches: made from image URLs with the batch page's rules and limits, read
back with their edits by status; errors in the API's shape; someone else's is not found."""

import io
import zipfile
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from imageedits.edits import api_tokens
from imageedits.edits.models import Batch, Edit, PersonBudget

from .conftest import make_png, run_tasks
from .test_api import Api

pytestmark = pytest.mark.django_db(transaction=True)

BATCHES = "/api/v1/batches/"


@pytest.fixture
def api(alice) -> Api:
    return Api(api_tokens.create(alice, "tests")[1])


def urls(simulator, *names) -> list[str]:
    return [f"{simulator.url}/samples/{name}.png" for name in names]


def test_a_batch_is_made_from_urls_and_read_back_until_finished(api, alice, simulator):
    body = {"prompt": "make it sepia", "image_urls": urls(simulator, "square", "portrait")}
    response = api.post_json(BATCHES, body)

    assert response.status_code == 201
    made = response.json()
    batch = Batch.objects.get(owner=alice)
    assert made["id"] == batch.pk and made["kind"] == "batch"
    assert made["total"] == 2 and made["finished"] is False
    assert made["counts"]["queued"] == 2
    assert made["preparing"] == 2  # answered before any URL is fetched
    assert made["credits"] == 0.1

    run_tasks()
    read = api.get(f"{BATCHES}{batch.pk}/").json()
    assert read["finished"] is True and read["done"] == 2 and read["preparing"] == 0
    assert read["counts"]["succeeded"] == 2
    assert [edit["status"] for edit in read["edits"]] == ["succeeded", "succeeded"]
    assert sorted(batch.edits.values_list("batch_name", flat=True)) == [
        "portrait.png",
        "square.png",
    ]


def test_a_url_without_an_image_fails_its_own_edit_with_the_reason(api, simulator):
    square, missing = urls(simulator, "square", "nothing")
    response = api.post_json(BATCHES, {"prompt": "p", "image_urls": [square, missing]})
    assert response.status_code == 201

    run_tasks()

    read = api.get(f"{BATCHES}{response.json()['id']}/").json()
    assert read["counts"]["succeeded"] == 1 and read["counts"]["failed"] == 1
    failed = Edit.objects.get(batch_name="nothing.png")
    assert failed.error_message.startswith(f"“{missing}” cannot be used: the address answered")


def test_a_private_address_is_a_400_at_once(api):
    response = api.post_json(BATCHES, {"prompt": "p", "image_urls": ["http://127.0.0.1/a.png"]})
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid"
    assert not Edit.objects.exists()


def test_an_unknown_field_or_model_is_said(api, simulator):
    response = api.post_json(BATCHES, {"prompt": "p", "image_urls": [], "quality": "high"})
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid"
    response = api.post_json(
        BATCHES, {"prompt": "p", "model": "nope", "image_urls": urls(simulator, "square")}
    )
    assert response.json()["error"]["fields"]["model"]


def test_a_batch_past_the_budget_is_a_402(api, alice, simulator):
    PersonBudget.objects.create(person=alice, monthly_budget=Decimal("0.05"))
    body = {"prompt": "p", "image_urls": urls(simulator, "square", "portrait")}
    response = api.post_json(BATCHES, body)
    assert response.status_code == 402
    assert response.json()["error"] == {
        "code": "budget_exceeded",
        "message": "This batch of 2 edits costs 0.10 credits; your monthly budget has 0.05 left.",
    }


def test_a_batch_past_the_limits_is_a_429(api, alice, simulator, settings):
    settings.EDITS_PER_MINUTE = 1
    body = {"prompt": "p", "image_urls": urls(simulator, "square", "portrait")}
    assert api.post_json(BATCHES, body).status_code == 201  # two edits, one batch
    response = api.post_json(BATCHES, body)
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "limit_reached"


def test_another_persons_batch_is_not_found(api, bob):
    batch = Batch.objects.create(owner=bob, kind=Batch.Kind.BATCH, prompt="p")
    response = api.get(f"{BATCHES}{batch.pk}/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_a_batch_is_made_from_files_and_a_zip_as_a_multipart_form(api, alice):
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("trip/hill.png", make_png())
    fields = {
        "prompt": "make it sepia", "model": "nano-banana", "quality": "",
        "images": [SimpleUploadedFile("beach.png", make_png(), content_type="image/png")],
        "archive": SimpleUploadedFile("trip.zip", archive.getvalue()),
    }  # fmt: skip
    response = api.post_form(BATCHES, fields)
    assert response.status_code == 201
    assert response.json()["total"] == 2
    batch = Batch.objects.get()
    assert sorted(batch.edits.values_list("batch_name", flat=True)) == [
        "beach.png",
        "trip/hill.png",
    ]
    assert set(batch.edits.values_list("model", flat=True)) == {"nano-banana"}


def test_a_zip_with_an_unsafe_name_is_a_400(api):
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("../hill.png", make_png())
    response = api.post_form(
        BATCHES, {"prompt": "p", "archive": SimpleUploadedFile("a.zip", archive.getvalue())}
    )
    assert response.status_code == 400
    assert response.json()["error"]["message"] == (
        "The ZIP holds a file with an unsafe name, “../hill.png”."
    )


def test_a_batch_in_another_format_is_a_415(api):
    response = api.client.post(BATCHES, "prompt=p", content_type="text/plain")
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"
