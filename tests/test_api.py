"""The JSON API (/api/v1/): personal tokens, edits made (by file and by URL), read, listed and
downloaded, share links; every rule and limit the web form's, every error JSON with a code."""

import io
import json
import logging
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from imageedits.edits import api_tokens, images, services
from imageedits.edits.gallery import PAGE_SIZE
from imageedits.edits.models import ApiToken, Collection, Edit, PersonBudget

from .conftest import get_image, make_png, run_edit, run_tasks

pytestmark = pytest.mark.django_db

EDITS = "/api/v1/edits/"


class Api:
    """The test client, calling the API with a token as a script would."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.headers = {"Authorization": f"Bearer {token}"}
        self.client = Client(headers=self.headers)

    def get(self, url: str, **query):
        return self.client.get(url, query)

    def post_json(self, url: str, body):
        return self.client.post(url, json.dumps(body), content_type="application/json")

    def post_form(self, url: str, fields: dict):
        return self.client.post(url, fields)

    def delete(self, url: str):
        return self.client.delete(url)


@pytest.fixture
def api(alice) -> Api:
    _, token = api_tokens.create(alice, "tests")
    return Api(token)


def finished_edit(owner, prompt="make it sepia") -> Edit:
    upload = images.reencode(make_png())
    edit = services.create_edit(owner, services.NewEdit(prompt, "gpt-image-2", "", [upload], []))
    run_edit(edit)
    return Edit.objects.get(pk=edit.pk)


def error_of(response) -> dict:
    assert response["Content-Type"].startswith("application/json")
    return response.json()["error"]


# --- Tokens ----------------------------------------------------------------------------------


def test_a_token_is_stored_only_as_its_hash(alice):
    api_token, token = api_tokens.create(alice, "laptop")
    assert token.startswith("iet_") and len(token) > 40
    stored = ApiToken.objects.get(pk=api_token.pk)
    assert token not in {stored.token_hash, stored.token_end, stored.name}
    assert stored.token_hash == ApiToken.hash(token) and stored.token_end == token[-4:]


def test_without_a_token_the_api_answers_401_in_json(client, alice):
    response = client.get(EDITS)
    assert response.status_code == 401
    assert error_of(response)["code"] == "unauthorized"
    assert response["WWW-Authenticate"] == "Bearer"


def test_an_unknown_token_is_401_and_not_repeated_back(client, alice):
    response = client.get(EDITS, headers={"Authorization": "Bearer iet_not-a-real-token"})
    assert response.status_code == 401
    assert "not-a-real-token" not in response.content.decode()


def test_a_revoked_token_stops_working_at_once(api, alice):
    assert api.get(EDITS).status_code == 200
    ApiToken.objects.get(owner=alice).revoke()
    response = api.get(EDITS)
    assert response.status_code == 401
    assert error_of(response)["code"] == "unauthorized"


def test_a_token_of_a_deactivated_person_stops_working(api, alice):
    alice.is_active = False
    alice.save()
    assert api.get(EDITS).status_code == 401


def test_a_session_cookie_alone_never_authenticates_the_api(logged_in):
    """Otherwise another site could make a logged-in person's browser call it (no CSRF)."""
    assert logged_in.get(EDITS).status_code == 401
    body = {"prompt": "blur", "image_urls": ["https://example.com/a.png"]}
    response = logged_in.post(EDITS, json.dumps(body), content_type="application/json")
    assert response.status_code == 401
    assert Edit.objects.count() == 0


def test_using_a_token_records_when(api, alice):
    assert ApiToken.objects.get(owner=alice).last_used_at is None
    api.get(EDITS)
    assert ApiToken.objects.get(owner=alice).last_used_at is not None


def test_the_token_never_reaches_the_logs(api, caplog):
    """Even a log line that quotes the header (a proxy's, a debugging print) is redacted."""
    from imageedits.logfilters import redact

    assert api.token not in redact(f"GET /api/v1/edits/ Authorization: Bearer {api.token}")
    with caplog.at_level(logging.DEBUG):
        api.get(EDITS)
        api.get(f"{EDITS}999/")
    assert api.token not in caplog.text


def test_the_token_never_reaches_an_error_report(api):
    from imageedits.logfilters import redact_event

    event = {"request": {"url": f"{EDITS}?token={api.token}",
                         "headers": {"Authorization": f"Bearer {api.token}"}},
             "breadcrumbs": {"values": [{"message": f"sent {api.token}"}]}}  # fmt: skip
    assert api.token not in json.dumps(redact_event(event))


# --- Edits -----------------------------------------------------------------------------------


def test_an_edit_made_with_files_runs_and_its_result_downloads(
    api, alice, django_capture_on_commit_callbacks
):
    image = SimpleUploadedFile("photo.png", make_png(), "image/png")
    fields = {"prompt": "make it sepia", "model": "gpt-image-2", "candidates": "2",
              "images": [image], "quality": "low"}  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):  # queued once committed
        response = api.post_form(EDITS, fields)
    assert response.status_code == 201, response.content
    made = response.json()
    assert made["status"] == "queued" and made["params"] == {"quality": "low"}
    assert made["candidates"] == 2 and len(made["inputs"]) == 1
    assert made["api_url"].endswith(f"{EDITS}{made['id']}/")

    run_tasks()
    edit = api.get(made["api_url"]).json()
    assert edit["status"] == "succeeded"
    assert edit["finished_at"] and edit["duration_seconds"] is not None
    assert len(edit["results"]) == 2 and len(edit["requests"]) == 2
    assert edit["requests"][0]["task_id"]
    download = get_image(api.client, edit["results"][1]["download_url"])  # or from the bucket
    assert download.status_code == 200
    assert f"edit-{made['id']}-make-it-sepia-2." in download.disposition
    picture = Image.open(io.BytesIO(download.content))
    assert (picture.width, picture.height) == (edit["results"][1]["width"],
                                               edit["results"][1]["height"])  # fmt: skip
    assert Edit.objects.get(pk=made["id"]).owner == alice


def test_an_edit_made_with_image_urls_as_json_runs(
    api, simulator, django_capture_on_commit_callbacks
):
    body = {"prompt": "mirror", "model": "gpt-image-2", "size": "1024x1024",
            "image_urls": [f"{simulator.url}/samples/square.png"],
            "params": {"quality": "high"}}  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post_json(EDITS, body)
    assert response.status_code == 201, response.content
    made = response.json()
    assert made["size"] == "1024x1024" and made["params"] == {"quality": "high"}
    run_tasks()
    edit = api.get(made["api_url"]).json()
    assert edit["status"] == "succeeded"
    assert edit["results"][0]["width"] == 1024
    assert edit["requests"][0]["reported"].get("quality") in (None, "high")


def test_an_edit_can_go_into_a_collection(api, alice, bob):
    mine = Collection.objects.create(owner=alice, name="Spring")
    theirs = Collection.objects.create(owner=bob, name="Theirs")
    image = SimpleUploadedFile("a.png", make_png(), "image/png")
    made = api.post_form(EDITS, {"prompt": "blur", "images": [image], "collection": mine.pk})
    assert made.status_code == 201
    assert list(Edit.objects.get(pk=made.json()["id"]).collections.all()) == [mine]
    image = SimpleUploadedFile("a.png", make_png(), "image/png")
    refused = api.post_form(EDITS, {"prompt": "blur", "images": [image], "collection": theirs.pk})
    assert refused.status_code == 400
    assert "collection" in error_of(refused)["fields"]


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"image_urls": ["https://example.com/a.png"]}, "prompt", "Field required"),
        ({"prompt": "blur", "image_urls": []}, "images", "Add at least one image"),
        ({"prompt": "", "image_urls": []}, "prompt", "This field is required."),
        ({"prompt": "blur", "model": "gpt-9", "image_urls": ["https://example.com/a.png"]},
         "model", "Select a valid choice."),
        ({"prompt": "blur", "size": "7x7", "image_urls": ["https://example.com/a.png"]},
         "size", ""),
        ({"prompt": "blur", "candidates": 11, "image_urls": ["https://example.com/a.png"]},
         "candidates", "less than or equal to 10"),
        ({"prompt": "blur", "image_urls": ["ftp://example.com/a.png"]}, "image_urls",
         "must start with http:// or https://"),
        ({"prompt": "blur", "image_urls": ["http://127.0.0.1:1/a.png"]}, "image_urls",
         "cannot be used"),
        ({"prompt": "blur", "params": {"quality": "ultra"},
          "image_urls": ["https://example.com/a.png"]}, "quality", ""),
        ({"prompt": "blur", "params": {"colour": "red"},
          "image_urls": ["https://example.com/a.png"]}, "params", "Unknown parameter “colour”."),
        ({"prompt": 5, "image_urls": "x"}, "prompt", ""),
        ({"prompt": "blur", "quality": "low", "image_urls": ["https://example.com/a.png"]},
         "quality", "Extra inputs are not permitted"),
    ],
)  # fmt: skip
def test_bad_input_is_400_with_the_forms_message_for_each_field(api, body, field, words):
    response = api.post_json(EDITS, body)
    assert response.status_code == 400, response.content
    error = error_of(response)
    assert error["code"] == "invalid"
    assert field in error["fields"], error
    assert words in " ".join(error["fields"][field])
    assert Edit.objects.count() == 0


def test_the_models_own_rules_apply(api):
    """dall-e-2 takes square images only: the web form's rule, said the same way."""
    image = SimpleUploadedFile("wide.png", make_png(64, 32), "image/png")
    response = api.post_form(EDITS, {"prompt": "blur", "model": "dall-e-2", "images": [image]})
    assert response.status_code == 400
    assert error_of(response)["message"] == "dall-e-2 needs square images; “wide.png” is 64x32."


def test_a_file_that_is_not_an_image_is_refused(api):
    upload = SimpleUploadedFile("notes.png", b"not an image at all", "image/png")
    response = api.post_form(EDITS, {"prompt": "blur", "images": [upload]})
    assert response.status_code == 400
    assert "“notes.png” cannot be used" in error_of(response)["fields"]["images"][0]


def test_a_body_that_is_not_json_is_400(api):
    response = api.client.post(EDITS, "{not json", content_type="application/json")
    assert response.status_code == 400
    assert error_of(response)["code"] == "invalid"


def test_a_broken_multipart_form_is_400(api, settings):
    broken = "--x\r\nContent-Disposition: form-data; name=prompt\r\n\r\nblur"  # never ends
    response = api.client.post(EDITS, broken, content_type="multipart/form-data")
    assert response.status_code == 400
    assert error_of(response)["message"].startswith("The form cannot be read")
    settings.DATA_UPLOAD_MAX_NUMBER_FILES = 2
    files = [SimpleUploadedFile(f"{n}.png", make_png(), "image/png") for n in range(3)]
    response = api.post_form(EDITS, {"prompt": "blur", "images": files})
    assert response.status_code == 400
    assert "The number of files exceeded" in error_of(response)["message"]


def test_a_json_body_over_djangos_limit_is_413(api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = api.post_json(EDITS, {"prompt": "x" * 2000, "image_urls": []})
    assert response.status_code == 413
    assert error_of(response)["code"] == "too_large"


def test_a_server_error_is_json_without_details(api, alice, monkeypatch, caplog):
    def broken(*args):
        raise RuntimeError("secret internals")

    monkeypatch.setattr("imageedits.edits.api.edit_detail", broken)
    edit = Edit.objects.create(owner=alice, prompt="blur", model="gpt-image-2")
    client = Client(raise_request_exception=False)
    response = client.get(f"{EDITS}{edit.pk}/", headers=api.headers)
    assert response.status_code == 500
    error = error_of(response)
    assert error["code"] == "server_error"
    assert response["X-Request-ID"] in error["message"]
    assert "secret internals" not in response.content.decode()
    assert "secret internals" in caplog.text  # for the people who run it


def test_another_content_type_is_415(api):
    response = api.client.post(EDITS, "prompt=blur", content_type="text/plain")
    assert response.status_code == 415
    assert error_of(response)["code"] == "unsupported_media_type"


def test_the_edits_under_way_limit_is_429(api, alice, settings):
    settings.EDITS_IN_FLIGHT = 1
    image = SimpleUploadedFile("a.png", make_png(), "image/png")
    assert api.post_form(EDITS, {"prompt": "blur", "images": [image]}).status_code == 201
    image = SimpleUploadedFile("a.png", make_png(), "image/png")
    response = api.post_form(EDITS, {"prompt": "blur", "images": [image]})
    assert response.status_code == 429
    error = error_of(response)
    assert error["code"] == "limit_reached"
    assert error["message"].startswith("You have 1 edit under way, the most at once.")
    assert "Retry-After" not in response  # nobody knows when the edit under way will end


def test_the_per_minute_limit_is_429_and_shared_with_the_web_form(api, alice, settings):
    settings.EDITS_PER_MINUTE = 1
    Client().force_login(alice)
    web = Client()
    web.force_login(alice)
    image = SimpleUploadedFile("a.png", make_png(), "image/png")
    web.post(reverse("edit-new"), {"prompt": "blur", "model": "gpt-image-2", "images": [image]})
    Edit.objects.update(status=Edit.Status.SUCCEEDED)
    image = SimpleUploadedFile("a.png", make_png(), "image/png")
    Edit.objects.update(created_at=timezone.now() - timedelta(seconds=20))
    response = api.post_form(EDITS, {"prompt": "blur", "images": [image]})
    assert response.status_code == 429
    assert "in the last minute" in error_of(response)["message"]
    assert 39 <= int(response["Retry-After"]) <= 40  # when the edit 20 s ago leaves the minute


def test_a_request_over_the_size_limit_is_413_before_it_is_read(api, settings):
    settings.EDIT_MAX_REQUEST_BYTES = 100
    image = SimpleUploadedFile("a.png", make_png(200, 200), "image/png")
    response = api.post_form(EDITS, {"prompt": "blur", "images": [image]})
    assert response.status_code == 413
    assert error_of(response)["code"] == "too_large"


def test_reading_an_edit_shows_its_failure(api, alice, simulator):
    upload = images.reencode(make_png())
    edit = services.create_edit(alice, services.NewEdit("blur", "gpt-image-2", "", [upload], []))
    edit.mark_failed("upstream_refused", "The upstream refused the instruction.")
    error = api.get(f"{EDITS}{edit.pk}/").json()["error"]
    assert error == {"code": "upstream_refused", "message": "The upstream refused the instruction."}


# --- Owner scoping ---------------------------------------------------------------------------


def test_another_persons_edit_is_404_everywhere(api, bob):
    theirs = finished_edit(bob)
    link_id = theirs.share_links.create(token_hash="x" * 64).pk
    for response in (
        api.get(f"{EDITS}{theirs.pk}/"),
        api.get(f"{EDITS}{theirs.pk}/results/0/"),
        api.get(f"{EDITS}{theirs.pk}/share-links/"),
        api.post_json(f"{EDITS}{theirs.pk}/share-links/", {}),
        api.delete(f"{EDITS}{theirs.pk}/share-links/{link_id}/"),
    ):
        assert response.status_code == 404
        assert error_of(response)["code"] == "not_found"
    assert theirs.share_links.get().revoked_at is None
    assert api.get(EDITS).json()["count"] == 0


def test_an_unknown_result_or_id_is_404(api, alice):
    edit = finished_edit(alice)
    assert api.get(f"{EDITS}{edit.pk}/results/5/").status_code == 404
    assert api.get(f"{EDITS}{2**63 - 1}/").status_code == 404
    assert api.get(f"{EDITS}{2**64}/").status_code == 400  # beyond any id: a bad id, said so


# --- The history -----------------------------------------------------------------------------


def test_the_history_lists_newest_first_with_the_pages_filters(api, alice, bob):
    Edit.objects.bulk_create(
        [Edit(owner=alice, prompt=f"blur number {n}", model="gpt-image-2") for n in range(3)]
        + [Edit(owner=alice, prompt="sepia sunset", model="dall-e-2",
                status=Edit.Status.SUCCEEDED, starred=True),
           Edit(owner=bob, prompt="blur of bob", model="gpt-image-2")]
    )  # fmt: skip
    listed = api.get(EDITS).json()
    assert listed["count"] == 4 and listed["pages"] == 1 and listed["next"] is None
    assert [e["prompt"] for e in listed["edits"]][0] == "sepia sunset"
    assert api.get(EDITS, q="blur").json()["count"] == 3
    assert api.get(EDITS, q="number 2").json()["count"] == 1
    assert api.get(EDITS, model="dall-e-2").json()["count"] == 1
    assert api.get(EDITS, status="succeeded").json()["count"] == 1
    assert api.get(EDITS, starred="true").json()["count"] == 1
    assert api.get(EDITS, starred="false").json()["count"] == 4


def test_the_history_filters_by_date_and_collection(api, alice):
    Edit.objects.create(owner=alice, prompt="old", model="gpt-image-2",
                        created_at="2025-01-01T10:00:00Z")  # fmt: skip
    recent = Edit.objects.create(owner=alice, prompt="new", model="gpt-image-2")
    spring = Collection.objects.create(owner=alice, name="Spring")
    spring.edits.add(recent)
    assert [e["prompt"] for e in api.get(EDITS, until="2025-06-01").json()["edits"]] == ["old"]
    assert [e["prompt"] for e in api.get(EDITS, since="2025-06-01").json()["edits"]] == ["new"]
    assert [e["prompt"] for e in api.get(EDITS, collection=spring.pk).json()["edits"]] == ["new"]


def test_the_history_comes_in_pages(api, alice):
    Edit.objects.bulk_create(
        [Edit(owner=alice, prompt=f"edit {n}", model="gpt-image-2") for n in range(PAGE_SIZE + 2)]
    )
    first = api.get(EDITS, q="edit").json()
    assert (first["count"], first["pages"], len(first["edits"])) == (PAGE_SIZE + 2, 2, PAGE_SIZE)
    second = api.get(first["next"]).json()
    assert len(second["edits"]) == 2 and second["next"] is None
    assert "q=edit" in first["next"] and second["previous"]
    missing = api.get(EDITS, page=3)
    assert missing.status_code == 404


@pytest.mark.parametrize(
    ("query", "field"),
    [({"status": "bogus"}, "status"), ({"model": "gpt-9"}, "model"),
     ({"since": "yesterday"}, "since"), ({"collection": 999}, "collection"),
     ({"page": "x"}, "page")],
)  # fmt: skip
def test_a_bad_filter_is_400_not_silently_ignored(api, query, field):
    response = api.get(EDITS, **query)
    assert response.status_code == 400
    assert field in error_of(response)["fields"]


# --- Share links -----------------------------------------------------------------------------


def test_share_links_are_made_listed_and_revoked(api, alice):
    edit = finished_edit(alice)
    links = f"{EDITS}{edit.pk}/share-links/"
    made = api.post_json(links, {"include_inputs": True, "expires_in_days": 7})
    assert made.status_code == 201
    link = made.json()
    assert link["include_inputs"] and link["expires_at"] and link["active"]
    token = link["url"].rstrip("/").rsplit("/", 1)[-1]
    assert link["token_end"] == token[-4:]
    assert Client().get(link["url"]).status_code == 200  # anyone with it sees the edit

    listed = api.get(links).json()
    assert [item["id"] for item in listed] == [link["id"]]
    assert "url" not in listed[0]  # never shown again

    assert api.delete(f"{links}{link['id']}/").status_code == 204
    assert Client().get(link["url"]).status_code == 404
    assert api.get(links).json()[0]["active"] is False


def test_a_share_link_needs_a_result_and_a_known_expiry(api, alice):
    upload = images.reencode(make_png())
    edit = services.create_edit(alice, services.NewEdit("blur", "gpt-image-2", "", [upload], []))
    links = f"{EDITS}{edit.pk}/share-links/"
    refused = api.post_json(links, {})
    assert refused.status_code == 409
    assert error_of(refused)["code"] == "no_results"
    run_edit(edit)
    assert api.post_json(links, {"expires_in_days": 3}).status_code == 400
    assert api.post_json(links, {}).json()["expires_at"] is None


# --- Schema and docs -------------------------------------------------------------------------


def test_the_schema_and_the_docs_are_served_without_a_token(client):
    schema = client.get("/api/v1/schema/").json()
    assert schema["openapi"].startswith("3.1")
    assert set(schema["paths"]) >= {"/api/v1/edits/", "/api/v1/edits/{edit_id}/"}
    docs = client.get("/api/v1/docs/")
    assert docs.status_code == 200
    page = docs.content.decode()
    assert "/static/ninja/swagger-ui-bundle.js" in page
    assert "cdn" not in page.lower()


# --- The tokens page (its browser test: test_browser_api.py) -----------------------------------

TOKENS = "/settings/tokens/"


def test_the_tokens_page_needs_a_log_in(client):
    assert client.get(TOKENS).status_code == 302
    assert client.post(TOKENS, {"name": "x"}).status_code == 302
    assert ApiToken.objects.count() == 0


def test_making_a_token_needs_the_csrf_token(alice):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(alice)
    assert browser.post(TOKENS, {"name": "forged"}).status_code == 403
    assert ApiToken.objects.count() == 0


def test_a_token_is_shown_once_on_the_page_that_makes_it(logged_in, alice):
    page = logged_in.post(TOKENS, {"name": "laptop"}).content.decode()
    token = page.split('id="new-token" type="text" readonly value="', 1)[1].split('"', 1)[0]
    assert ApiToken.objects.get(owner=alice).token_hash == ApiToken.hash(token)
    assert token not in logged_in.get(TOKENS).content.decode()


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("  ", "Give the token a name"),
        ("x" * 81, "at most 80 characters (it has 81)"),
        ("a\x00b", "Null characters are not allowed."),
    ],
)
def test_a_token_needs_a_name_of_sensible_length(logged_in, name, message):
    response = logged_in.post(TOKENS, {"name": name})
    assert response.status_code == 400
    assert message in response.content.decode()
    assert ApiToken.objects.count() == 0


def test_nobody_revokes_another_persons_token(logged_in, bob):
    theirs, _ = api_tokens.create(bob, "bob's")
    response = logged_in.post(f"{TOKENS}{theirs.pk}/revoke/")
    assert response.status_code == 404
    assert ApiToken.objects.get(pk=theirs.pk).revoked_at is None
    assert "bob's" not in logged_in.get(TOKENS).content.decode()


def test_an_edit_past_a_monthly_budget_is_402_and_nothing_is_kept(api, alice, stored_files):
    PersonBudget.objects.create(person=alice, monthly_budget=Decimal("0.04"))
    image = SimpleUploadedFile("a.png", make_png(), "image/png")
    response = api.post_form(EDITS, {"prompt": "blur", "model": "gpt-image-2", "images": [image]})
    assert response.status_code == 402
    error = error_of(response)
    assert error["code"] == "budget_exceeded"
    assert error["message"] == "This edit costs 0.05 credits; your monthly budget has 0.04 left."
    assert not Edit.objects.exists()
    assert stored_files() == []


def test_an_admin_revokes_a_token_and_cannot_make_one(api, admin_user):
    admin = Client()
    admin.force_login(admin_user)
    assert admin.get(reverse("admin:edits_apitoken_add")).status_code == 403
    token = ApiToken.objects.get()
    answer = admin.post(
        reverse("admin:edits_apitoken_changelist"),
        {"action": "revoke", "_selected_action": [token.pk]},
    )
    assert answer.status_code == 302
    assert api.get(EDITS).status_code == 401
