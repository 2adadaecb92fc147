"""The service module against the simulator over a real socket: request building per model and
input kind, both answer shapes, the task query, and every error code mapped to its message."""

import base64

import pytest

from imageedits.edits import images, upstream
from imageedits.edits.upstream import EditRequest, InputFile

from .conftest import SIMULATOR_TOKEN, make_png


def png_input(name="photo.png", **kwargs) -> InputFile:
    return InputFile(name, make_png(**kwargs), "image/png")


def decoded(data: bytes):
    image, image_format = images.decode(data)
    return image, image_format


def test_an_uploaded_file_goes_as_multipart_and_comes_back_as_base64(simulator):
    answer = upstream.submit(
        EditRequest("gpt-image-2", "make it grayscale", "1024x1536", [png_input()])
    )

    sent = simulator.received[-1]
    assert sent["content_type"] == "multipart"
    assert sent["fields"]["model"] == ["gpt-image-2"]
    assert sent["fields"]["prompt"] == ["make it grayscale"]
    assert sent["fields"]["size"] == ["1024x1536"]
    assert [f["filename"] for f in sent["files"]["image"]] == ["photo.png"]
    assert sent["authorization"] == f"Bearer {SIMULATOR_TOKEN}"
    assert answer.images[0].b64_json and not answer.images[0].url
    assert answer.task_id and answer.trace_id and answer.elapsed is not None
    image, image_format = decoded(upstream.result_bytes(answer.images[0]))
    assert (image.size, image_format) == ((1024, 1536), "PNG")


def test_an_empty_size_is_not_sent(simulator):
    upstream.submit(EditRequest("gpt-image-2", "blur it", "", [png_input(width=96, height=80)]))
    assert "size" not in simulator.received[-1]["fields"]


def test_a_single_url_goes_as_json_and_comes_back_as_a_url(simulator):
    url = f"{simulator.url}/samples/square.png"
    answer = upstream.submit(EditRequest("gpt-image-2", "invert it", "auto", [url]))

    sent = simulator.received[-1]
    assert sent["content_type"] == "json"
    assert sent["fields"]["image"] == [url]
    assert answer.images[0].url and not answer.images[0].b64_json
    image, _ = decoded(upstream.result_bytes(answer.images[0]))
    assert image.size == (1024, 1024)


def test_several_urls_go_as_a_json_array(simulator):
    urls = [f"{simulator.url}/samples/square.png", f"{simulator.url}/samples/landscape.png"]
    upstream.submit(EditRequest("gpt-image-2", "combine them", "1024x1024", urls))
    sent = simulator.received[-1]
    assert sent["content_type"] == "json"
    assert sent["fields"]["image"] == urls


@pytest.mark.parametrize("model", ["gpt-image-1", "gpt-image-1.5", "dall-e-2"])
def test_urls_the_model_cannot_take_are_refused_before_anything_is_sent(simulator, model):
    """The form fetches such URLs when the edit is created and stores their images; a request
    still holding one (the service changed since) is refused here, in plain words."""
    url = f"{simulator.url}/samples/square.png"
    with pytest.raises(upstream.RequestRejected) as caught:
        upstream.submit(EditRequest(model, "blur", "1024x1024", [url]))
    assert caught.value.code == "urls_not_accepted"
    assert "Start a new edit with the images uploaded" in caught.value.message
    assert simulator.received == []


def test_gpt_image_2_urls_beside_uploads_are_refused_too(simulator):
    url = f"{simulator.url}/samples/portrait.png"
    request = EditRequest("gpt-image-2", "combine", "1024x1024", [png_input("a.png"), url])
    with pytest.raises(upstream.RequestRejected):
        upstream.submit(request)
    assert simulator.received == []


@pytest.mark.parametrize("model", ["nano-banana", "nano-banana-2", "nano-banana-pro"])
def test_nano_banana_sends_only_model_prompt_and_image(simulator, model):
    answer = upstream.submit(EditRequest(model, "add a leaf", "1024x1024", [png_input()]))

    sent = simulator.received[-1]
    assert set(sent["fields"]) == {"model", "prompt"}
    assert set(sent["files"]) == {"image"}
    assert answer.images[0].url and not answer.images[0].b64_json
    assert answer.images[0].revised_prompt == "add a leaf"
    _, image_format = decoded(upstream.result_bytes(answer.images[0]))
    assert image_format == "JPEG"


def test_nano_banana_with_a_url_sends_it_as_a_form_field_without_size(simulator):
    url = f"{simulator.url}/samples/landscape.png"
    upstream.submit(EditRequest("nano-banana", "add a leaf", "2048x2048", [url]))
    sent = simulator.received[-1]
    assert sent["content_type"] == "multipart"
    assert sent["fields"] == {"model": ["nano-banana"], "prompt": ["add a leaf"], "image": [url]}
    assert sent["files"] == {}


def test_a_callback_url_gets_a_task_id_at_once(simulator):
    request = EditRequest(
        "gpt-image-2", "sepia", "", [png_input()], callback_url="http://127.0.0.1:9/hook/"
    )
    answer = upstream.submit(request)
    assert isinstance(answer, upstream.Submitted) and answer.task_id
    assert simulator.received[-1]["fields"]["callback_url"] == ["http://127.0.0.1:9/hook/"]


def test_the_task_query_answers_a_finished_edit(simulator):
    answer = upstream.submit(EditRequest("gpt-image-2", "mirror it", "", [png_input()]))
    record = upstream.retrieve_task(answer.task_id)
    assert record is not None
    image, _ = decoded(upstream.result_bytes(record.images[0]))
    assert image.size == (64, 48)


def test_the_task_query_says_none_while_the_upstream_still_works(simulator):
    simulator.config.latency = 2.0
    request = EditRequest(
        "gpt-image-2", "sepia", "", [png_input()], callback_url="http://127.0.0.1:9/"
    )
    submitted = upstream.submit(request)
    assert upstream.retrieve_task(submitted.task_id) is None


def test_an_unknown_task_is_an_error():
    with pytest.raises(upstream.TaskUnknown):
        upstream.retrieve_task("no-such-task")


def test_the_callback_payload_parses_like_a_synchronous_answer():
    png = base64.b64encode(make_png()).decode()
    payload = {
        "success": True,
        "task_id": "t-1",
        "trace_id": "tr-1",
        "data": {"created": 1721626477, "data": [{"b64_json": png}]},
    }
    answer = upstream.parse_answer(payload)
    assert (answer.task_id, answer.trace_id) == ("t-1", "tr-1")
    assert upstream.result_bytes(answer.images[0]) == base64.b64decode(png)


def test_a_failed_callback_payload_raises_its_error():
    payload = {"success": False, "task_id": "t", "error": {"code": "forbidden", "message": "no"}}
    with pytest.raises(upstream.ModerationRefused):
        upstream.parse_answer(payload)


# --- Errors -----------------------------------------------------------------------------------

ERROR_CASES = [
    ("invalid_token", upstream.AuthenticationFailed, "did not accept this app's API key"),
    ("token_expired", upstream.AuthenticationFailed, "did not accept this app's API key"),
    ("no_token", upstream.AuthenticationFailed, "did not accept this app's API key"),
    ("used_up", upstream.BalanceExhausted, "run out of credit"),
    ("disabled", upstream.AccountDisabled, "disabled this app's account"),
    ("forbidden", upstream.ModerationRefused, "refused this edit under its content rules"),
    ("429", upstream.RateLimited, "too many requests right now"),
    ("500", upstream.ServiceError, "had an internal error"),
    ("timeout", upstream.ServiceTimeout, "took too long"),
    ("token_mismatched", upstream.RequestRejected, "rejected the request"),
    ("api_not_implemented", upstream.RequestRejected, "rejected the request"),
    ("malformed", upstream.MalformedAnswer, "could not be understood"),
]


@pytest.mark.parametrize(("fault", "error_class", "phrase"), ERROR_CASES)
def test_each_error_code_reads_as_its_own_message(simulator, fault, error_class, phrase):
    simulator.inject(fault)
    with pytest.raises(error_class) as caught:
        upstream.submit(EditRequest("gpt-image-2", "blur", "", [png_input()]))
    assert phrase in caught.value.message
    assert SIMULATOR_TOKEN not in caught.value.message


def test_moderation_balance_auth_and_rate_limit_messages_all_differ():
    messages = {
        cls.default_message
        for cls in [
            upstream.ModerationRefused, upstream.AuthenticationFailed,
            upstream.BalanceExhausted, upstream.RateLimited,
        ]
    }  # fmt: skip
    assert len(messages) == 4


def test_a_rate_limit_carries_retry_after(simulator):
    simulator.inject("429")
    with pytest.raises(upstream.RateLimited) as caught:
        upstream.submit(EditRequest("gpt-image-2", "blur", "", [png_input()]))
    assert caught.value.retryable and caught.value.retry_after == 1.0


def test_a_wrong_key_is_an_authentication_error_that_does_not_repeat_the_key(settings):
    settings.OPENAI_API_KEY = "sk-wrong-key-123"
    with pytest.raises(upstream.AuthenticationFailed) as caught:
        upstream.submit(EditRequest("gpt-image-2", "blur", "", [png_input()]))
    assert caught.value.code == "invalid_token"
    assert "sk-wrong-key-123" not in str(caught.value)


def test_the_upstreams_reason_for_a_bad_request_is_passed_on():
    with pytest.raises(upstream.RequestRejected) as caught:
        upstream.submit(EditRequest("gpt-image-2", "blur", "1000x1000", [png_input()]))
    assert "multiples of 16" in caught.value.message


def test_an_unreachable_upstream_is_a_plain_error(settings):
    settings.OPENAI_BASE_URL = "http://127.0.0.1:9/openai"
    with pytest.raises(upstream.ServiceUnreachable) as caught:
        upstream.submit(EditRequest("gpt-image-2", "blur", "", [png_input()]))
    assert caught.value.retryable


def test_an_expired_result_url_fails_with_a_specific_message(simulator):
    simulator.config.url_ttl = 0
    answer = upstream.submit(
        EditRequest("gpt-image-2", "blur", "", [f"{simulator.url}/samples/square.png"])
    )
    with pytest.raises(upstream.MalformedAnswer) as caught:
        upstream.result_bytes(answer.images[0])
    assert "may have expired" in caught.value.message


# --- The OpenAI flavour ----------------------------------------------------------------------


@pytest.fixture
def openai(settings, openai_simulator):
    openai_simulator.reset()
    settings.OPENAI_BASE_URL = f"{openai_simulator.url}/v1"
    settings.OPENAI_FLAVOUR = "openai"
    return openai_simulator


def test_the_flavour_follows_the_base_url_unless_overridden(settings):
    settings.OPENAI_FLAVOUR = ""
    settings.OPENAI_BASE_URL = "https://api.openai.com/v1"
    assert upstream.flavour() == "openai"
    settings.OPENAI_BASE_URL = "https://api.acedata.cloud/openai"
    assert upstream.flavour() == "ace"
    settings.OPENAI_FLAVOUR = "openai"
    assert upstream.flavour() == "openai"


def test_openai_gets_no_json_no_urls_and_no_callback_url(openai, simulator):
    answer = upstream.submit(
        EditRequest(
            "gpt-image-2", "grayscale", "1024x1024", [png_input()], callback_url="http://x/"
        )
    )
    sent = openai.received[-1]
    assert sent["content_type"] == "multipart"
    assert "response_format" not in sent["fields"] and "callback_url" not in sent["fields"]
    image, _ = decoded(upstream.result_bytes(answer.images[0]))
    assert image.size == (1024, 1024)

    with pytest.raises(upstream.RequestRejected):
        upstream.submit(EditRequest("gpt-image-2", "blur", "", [f"{simulator.url}/x.png"]))
    assert len(openai.received) == 1


@pytest.mark.parametrize(
    ("fault", "error_class"),
    [
        ("forbidden", upstream.ModerationRefused),
        ("used_up", upstream.BalanceExhausted),
        ("429", upstream.RateLimited),
        ("500", upstream.ServiceError),
        ("invalid_token", upstream.AuthenticationFailed),
    ],
)
def test_openai_errors_map_like_aces(openai, fault, error_class):
    openai.inject(fault)
    with pytest.raises(error_class):
        upstream.submit(EditRequest("gpt-image-2", "blur", "", [png_input()]))


def test_openai_moderation_by_prompt_is_a_moderation_refusal(openai):
    with pytest.raises(upstream.ModerationRefused) as caught:
        upstream.submit(EditRequest("gpt-image-2", "make it nsfw", "", [png_input()]))
    assert caught.value.code == "moderation_blocked"


def test_a_bare_403_passes_the_upstreams_reason_on_instead_of_blaming_moderation():
    body = (
        b'{"error": {"message": "Your organization must be verified",'
        b' "type": "invalid_request_error", "code": null}}'
    )
    error = upstream.error_from_response(403, body)
    assert isinstance(error, upstream.RequestRejected)
    assert "organization must be verified" in error.message


def test_a_failure_answered_with_200_is_an_error_not_a_submission():
    with pytest.raises(upstream.ServiceError):
        upstream.parse_answer({"success": False, "error": {"code": "api_error", "message": "x"}})
    with pytest.raises(upstream.ServiceError):
        upstream.parse_answer({"success": False, "error": "fetch failed"})
