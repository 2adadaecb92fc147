"""The offline images edits simulator, spoken to over a real socket as the app speaks to it:
both flavours' protocols, validation by its own rules (not the app's catalog), faults,
callbacks, the task query, and the Pillow edits behind the answers. No database: these run
without Django's test machinery."""

import base64
import io
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from PIL import Image

from imageedits.simulator import pixels, protocol

from .conftest import SIMULATOR_TOKEN

TOKEN = SIMULATOR_TOKEN
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def sim(simulator):
    simulator.reset()
    yield simulator
    simulator.reset()


@pytest.fixture
def openai_sim(openai_simulator):
    openai_simulator.reset()
    yield openai_simulator
    openai_simulator.reset()


@pytest.fixture
def http():
    with httpx.Client(timeout=20) as client:
        yield client


class CallbackReceiver:
    """A tiny webhook: records every POST; answers with `statuses` in turn, then 200."""

    def __init__(self) -> None:
        self.posts: list[bytes] = []
        self.statuses: list[int] = []
        self.arrived = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                receiver.posts.append(self.rfile.read(int(self.headers["Content-Length"])))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()
                if status < 500:
                    receiver.arrived.set()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        serve = {"poll_interval": 0.05}  # so shutdown() is quick
        threading.Thread(target=self.httpd.serve_forever, kwargs=serve, daemon=True).start()

    def wait(self) -> dict:
        assert self.arrived.wait(10), "no callback arrived"
        return json.loads(self.posts[-1])


@pytest.fixture
def receiver():
    hook = CallbackReceiver()
    yield hook
    hook.httpd.shutdown()
    hook.httpd.server_close()


def png(width=64, height=48, colour=(200, 40, 40), mode="RGB", image_format="PNG") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, (width, height), colour).save(buffer, image_format)
    return buffer.getvalue()


def opened(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def from_b64(item: dict) -> Image.Image:
    return opened(base64.b64decode(item["b64_json"]))


def sample(sim, name="landscape") -> str:
    return f"{sim.url}/samples/{name}.png"


def post_json(http, sim, payload: dict, path="/openai/images/edits", headers=AUTH):
    return http.post(sim.url + path, json=payload, headers=headers)


def post_form(http, sim, data: dict, files=None, path="/openai/images/edits", headers=AUTH):
    # A dummy file part keeps httpx sending multipart even when a test has no real file.
    return http.post(sim.url + path, data=data, files=files or {"_": ("", b"")}, headers=headers)


def assert_ace_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is False and body["error"]["code"] == code
    assert len(body["trace_id"]) == 36
    return body["error"]


def assert_openai_error(response, status: int, code: str | None, param=None) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert (error["code"], error["param"]) == (code, param)
    return error


# --- The server itself ----------------------------------------------------------------------


def test_it_answers_health_and_serves_samples_without_auth(sim, http):
    assert http.get(f"{sim.url}/healthz").text == "ok"
    for name, size in pixels.SAMPLE_SIZES.items():
        response = http.get(sample(sim, name))
        assert response.headers["content-type"] == "image/png"
        assert opened(response.content).size == size
    assert http.get(f"{sim.url}/samples/nothing.png").status_code == 404


def test_unknown_paths_are_404_and_wrong_methods_405(sim, http):
    assert_ace_error(http.get(f"{sim.url}/nowhere"), 404, "not_found")
    response = http.get(f"{sim.url}/openai/images/edits", headers=AUTH)
    assert_ace_error(response, 405, "method_not_allowed")
    assert response.headers["allow"] == "POST"


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer sk-wrong"}, {"Authorization": TOKEN}]
)
def test_ace_refuses_a_missing_or_wrong_token(sim, http, headers):
    payload = {"model": "gpt-image-2", "prompt": "blur", "image": sample(sim)}
    assert_ace_error(post_json(http, sim, payload, headers=headers), 401, "invalid_token")
    response = http.post(f"{sim.url}/openai/tasks", json={"action": "retrieve", "id": "x"})
    assert_ace_error(response, 401, "invalid_token")
    assert sim.received[-1]["authorization"] == headers.get("Authorization")


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer sk-wrong"}])
def test_openai_refuses_a_missing_or_wrong_key(openai_sim, http, headers):
    response = post_form(
        http,
        openai_sim,
        {"model": "gpt-image-2", "prompt": "x"},
        path="/v1/images/edits",
        headers=headers,
    )
    error = assert_openai_error(response, 401, "invalid_api_key")
    assert TOKEN not in error["message"]


# --- Ace: answers ---------------------------------------------------------------------------


def test_json_with_one_url_answers_a_url_to_a_png_of_the_requested_size(sim, http):
    payload = {
        "model": "gpt-image-2",
        "image": sample(sim),
        "prompt": "dark mode",
        "size": "1024x1536",
    }
    response = post_json(http, sim, payload)

    answer = response.json()
    assert response.status_code == 200
    assert answer["success"] is True and answer["task_id"] and answer["trace_id"]
    assert isinstance(answer["created"], int) and answer["elapsed"] >= 0
    [item] = answer["data"]
    assert set(item) == {"url", "revised_prompt"} and item["revised_prompt"]
    assert item["url"].startswith(f"{sim.url}/files/") and item["url"].endswith(".png")
    result = http.get(item["url"])
    assert result.headers["content-type"] == "image/png"
    assert opened(result.content).size == (1024, 1536)


def test_json_with_an_array_of_urls_combines_them_at_the_requested_size(sim, http):
    urls = [sample(sim, "landscape"), sample(sim, "portrait"), sample(sim, "square")]
    payload = {
        "model": "gpt-image-2",
        "image": urls,
        "prompt": "a gift basket",
        "size": "1024x1024",
    }
    answer = post_json(http, sim, payload).json()

    assert opened(http.get(answer["data"][0]["url"]).content).size == (1024, 1024)
    sent = sim.received[-1]
    assert sent["content_type"] == "json" and sent["fields"]["image"] == urls
    assert sent["path"] == "/openai/images/edits" and sent["files"] == {}


def test_multipart_with_a_file_answers_b64_json_at_the_requested_size(sim, http):
    files = {"image": ("photo.png", png(320, 240), "image/png")}
    data = {"model": "gpt-image-1", "prompt": "sepia", "size": "1536x1024"}
    response = post_form(http, sim, data, files, path="/v1/images/edits")

    [item] = response.json()["data"]
    assert "url" not in item
    image = from_b64(item)
    assert (image.format, image.size) == ("PNG", (1536, 1024))
    sent = sim.received[-1]
    assert sent["content_type"] == "multipart" and sent["path"] == "/v1/images/edits"
    assert sent["files"]["image"] == [
        {"filename": "photo.png", "content_type": "image/png", "size": len(files["image"][1]),
         "width": 320, "height": 240}
    ]  # fmt: skip


def test_multipart_takes_several_files_and_url_fields_together(sim, http):
    files = [
        ("image[]", ("a.png", png(200, 100), "image/png")),
        ("image[]", ("b.jpg", png(100, 100, image_format="JPEG"), "image/jpeg")),
    ]
    data = {"model": "gpt-image-2", "prompt": "combine", "image[]": sample(sim, "square")}
    answer = post_form(http, sim, data, files).json()

    # httpx sends form fields before files, so the URL is the first input and sets "auto".
    assert from_b64(answer["data"][0]).size == (1024, 1024)
    sent = sim.received[-1]
    assert [f["filename"] for f in sent["files"]["image[]"]] == ["a.png", "b.jpg"]
    assert sent["fields"]["image[]"] == [sample(sim, "square")]


@pytest.mark.parametrize("size", ["auto", "", None])
def test_auto_or_no_size_keeps_the_first_inputs_size(sim, http, size):
    payload = {"model": "gpt-image-2", "image": sample(sim, "portrait"), "prompt": "blur"}
    if size is not None:
        payload["size"] = size
    answer = post_json(http, sim, payload).json()
    assert opened(http.get(answer["data"][0]["url"]).content).size == (768, 1024)


def test_response_format_is_honoured(sim, http):
    payload = {
        "model": "gpt-image-2",
        "image": sample(sim),
        "prompt": "x",
        "response_format": "b64_json",
    }
    assert "b64_json" in post_json(http, sim, payload).json()["data"][0]
    files = {"image": ("a.png", png(), "image/png")}
    data = {"model": "gpt-image-2", "prompt": "x", "response_format": "url"}
    assert "url" in post_form(http, sim, data, files).json()["data"][0]


def test_output_format_and_transparency_are_kept(sim, http):
    files = {"image": ("a.png", png(64, 64, (0, 0, 255, 0), mode="RGBA"), "image/png")}
    answer = post_form(http, sim, {"model": "gpt-image-2", "prompt": "invert"}, files).json()
    image = from_b64(answer["data"][0])
    assert image.mode == "RGBA" and image.getpixel((5, 5))[3] == 0

    data = {"model": "gpt-image-1", "prompt": "x", "output_format": "jpeg"}
    answer = post_form(http, sim, data, files).json()
    assert from_b64(answer["data"][0]).format == "JPEG"


def test_n_makes_distinct_images_for_dall_e_2_only(sim, http):
    files = {"image": ("a.png", png(256, 256), "image/png")}
    data = {"model": "dall-e-2", "prompt": "posterize", "n": "3", "size": "256x256"}
    answer = post_form(http, sim, data, files).json()
    images = [opened(http.get(item["url"]).content) for item in answer["data"]]
    assert [image.size for image in images] == [(256, 256)] * 3
    assert len({image.tobytes() for image in images}) == 3

    answer = post_form(http, sim, {"model": "gpt-image-2", "prompt": "x", "n": "3"}, files).json()
    assert len(answer["data"]) == 1


def test_a_mask_limits_the_edit_to_its_transparent_part(sim, http):
    mask = Image.new("RGBA", (64, 64), (0, 0, 0, 255))
    mask.paste((0, 0, 0, 0), (0, 0, 32, 64))  # the left half is to be edited
    buffer = io.BytesIO()
    mask.save(buffer, "PNG")
    files = [
        ("image", ("a.png", png(64, 64, (200, 40, 40)), "image/png")),
        ("mask", ("mask.png", buffer.getvalue(), "image/png")),
    ]
    answer = post_form(http, sim, {"model": "gpt-image-2", "prompt": "invert"}, files).json()
    image = from_b64(answer["data"][0])
    assert image.getpixel((10, 30))[:3] == (55, 215, 215)
    assert image.getpixel((50, 30))[:3] == (200, 40, 40)

    files[1] = ("mask", ("mask.png", png(64, 64), "image/png"))
    response = post_form(http, sim, {"model": "gpt-image-2", "prompt": "invert"}, files)
    assert "missing alpha channel" in assert_ace_error(response, 400, "bad_request")["message"]


# --- Ace: nano-banana -----------------------------------------------------------------------


def assert_nano_answer(http, answer: dict, prompt: str, size: tuple[int, int]) -> None:
    assert set(answer) == {"created", "data"} and answer["created"] == 0
    [item] = answer["data"]
    assert set(item) == {"url", "revised_prompt"} and item["revised_prompt"] == prompt
    assert item["url"].endswith(".jpeg")
    result = http.get(item["url"])
    assert result.headers["content-type"] == "image/jpeg"
    image = opened(result.content)
    assert (image.format, image.size) == ("JPEG", size)


def test_nano_banana_with_a_form_url_answers_only_a_jpeg_url(sim, http):
    data = {"model": "nano-banana", "prompt": "add a green leaf", "image": sample(sim, "square"),
            "size": "999x1", "n": "4", "response_format": "b64_json"}  # fmt: skip
    answer = post_form(http, sim, data).json()
    assert_nano_answer(http, answer, "add a green leaf", (1024, 1024))
    assert sim.received[-1]["fields"]["size"] == ["999x1"]


@pytest.mark.parametrize("model", ["nano-banana", "nano-banana-2", "nano-banana-pro"])
def test_nano_banana_with_a_file_answers_only_a_jpeg_url(sim, http, model):
    files = {"image": ("apple.png", png(120, 90, (0, 0, 0, 0), mode="RGBA"), "image/png")}
    answer = post_form(http, sim, {"model": model, "prompt": "  leaf  "}, files).json()
    assert_nano_answer(http, answer, "  leaf  ", (120, 90))
    assert set(sim.received[-1]["fields"]) == {"model", "prompt"}


# --- Ace: validation ------------------------------------------------------------------------

SIZE_FAILURES = [
    ("gpt-image-2", "1000x1000", "multiples of 16"),
    ("gpt-image-2", "1024x1000", "multiples of 16"),
    ("gpt-image-2", "4096x1024", "at most 3840"),
    ("gpt-image-2", "3840x3840", "8,294,400"),
    ("gpt-image-2", "512x512", "655,360"),
    ("gpt-image-2", "3840x1024", "3:1"),
    ("gpt-image-2", "0x1024", "multiples of 16"),
    ("gpt-image-2", "big", "auto or WIDTHxHEIGHT"),
    ("gpt-image-1", "2048x2048", "1024x1024, 1536x1024, 1024x1536"),
    ("gpt-image-1.5", "1024x1792", "1024x1024, 1536x1024, 1024x1536"),
    ("dall-e-2", "1024x1536", "256x256, 512x512, 1024x1024"),
]


@pytest.mark.parametrize(("model", "size", "says"), SIZE_FAILURES)
def test_each_size_rule_failure_is_a_bad_request_saying_why(sim, http, model, size, says):
    files = {"image": ("a.png", png(256, 256), "image/png")}
    response = post_form(http, sim, {"model": model, "prompt": "x", "size": size}, files)
    assert says in assert_ace_error(response, 400, "bad_request")["message"]


def test_the_largest_custom_size_is_drawn(sim, http):
    payload = {
        "model": "gpt-image-2",
        "image": sample(sim, "square"),
        "prompt": "x",
        "size": "3840x2160",
    }
    answer = post_json(http, sim, payload).json()
    assert opened(http.get(answer["data"][0]["url"]).content).size == (3840, 2160)


BAD_REQUESTS = [
    ({"model": "gpt-image-9", "prompt": "x"}, "Invalid value: 'gpt-image-9'"),
    ({"prompt": "x"}, "model is required"),
    ({"model": "gpt-image-2"}, "prompt is required"),
    ({"model": "gpt-image-2", "prompt": "   "}, "prompt is required"),
    ({"model": "dall-e-2", "prompt": "x" * 1001}, "at most 1,000"),
    ({"model": "gpt-image-2", "prompt": "x", "n": "3", "image": "not-a-url"}, "must be a file or"),
    ({"model": "gpt-image-2", "prompt": "x", "callback_url": "ftp://x"}, "callback_url"),
    (
        {"model": "gpt-image-1", "prompt": "x", "quality": "ultra"},
        "quality must be one of auto, low, medium, high.",
    ),
]


@pytest.mark.parametrize(("fields", "message"), BAD_REQUESTS)
def test_a_bad_field_is_a_bad_request(sim, http, fields, message):
    files = {"image": ("a.png", png(), "image/png")}
    response = post_form(http, sim, fields, files)
    assert message in assert_ace_error(response, 400, "bad_request")["message"]


def test_a_missing_image_is_a_bad_request(sim, http):
    response = post_json(http, sim, {"model": "gpt-image-2", "prompt": "x"})
    assert assert_ace_error(response, 400, "bad_request")["message"] == "image is required."


def test_an_undecodable_file_is_a_bad_request(sim, http):
    files = {"image": ("a.png", b"\x89PNG not really", "image/png")}
    response = post_form(http, sim, {"model": "gpt-image-2", "prompt": "x"}, files)
    assert "could not be decoded" in assert_ace_error(response, 400, "bad_request")["message"]
    assert sim.received[-1]["files"]["image"][0]["width"] is None


def test_too_many_images_are_a_bad_request(sim, http):
    payload = {"model": "gpt-image-2", "prompt": "x", "image": [sample(sim)] * 17}
    response = post_json(http, sim, payload)
    assert "At most 16 images" in assert_ace_error(response, 400, "bad_request")["message"]
    payload = {"model": "dall-e-2", "prompt": "x", "image": [sample(sim, "square")] * 2}
    response = post_json(http, sim, payload)
    assert "at most 1 image" in assert_ace_error(response, 400, "bad_request")["message"]


def test_dall_e_2_wants_a_square_png(sim, http):
    files = {"image": ("a.png", png(300, 200), "image/png")}
    response = post_form(http, sim, {"model": "dall-e-2", "prompt": "x"}, files)
    assert "square" in assert_ace_error(response, 400, "bad_request")["message"]


def test_another_content_type_or_broken_json_is_a_bad_request(sim, http):
    response = http.post(f"{sim.url}/openai/images/edits", content=b"hello", headers=AUTH)
    assert "Content-Type" in assert_ace_error(response, 400, "bad_request")["message"]
    headers = AUTH | {"Content-Type": "application/json"}
    response = http.post(f"{sim.url}/openai/images/edits", content=b"{", headers=headers)
    assert_ace_error(response, 400, "bad_request")


@pytest.mark.parametrize("prompt", ["make it NSFW", "add gore", "forbidden-content please"])
def test_a_blocked_word_is_refused_by_moderation(sim, http, prompt):
    payload = {"model": "gpt-image-2", "image": sample(sim), "prompt": prompt}
    error = assert_ace_error(post_json(http, sim, payload), 403, "forbidden")
    assert "moderation" in error["message"]


def test_an_unfetchable_url_is_a_500_fetch_failed(sim, http):
    for url in [f"{sim.url}/samples/missing.png", "http://127.0.0.1:9/x.png", f"{sim.url}/healthz"]:
        response = post_json(http, sim, {"model": "gpt-image-2", "image": url, "prompt": "x"})
        assert assert_ace_error(response, 500, "api_error")["message"] == "fetch failed"


def test_result_urls_expire_after_the_ttl(sim, http):
    sim.config.url_ttl = 0
    answer = post_json(http, sim, {"model": "gpt-image-2", "image": sample(sim), "prompt": "x"})
    assert http.get(answer.json()["data"][0]["url"]).status_code == 404


# --- Ace: callbacks and the task query ------------------------------------------------------


def test_a_callback_request_answers_a_task_id_then_posts_the_result(sim, http, receiver):
    files = {"image[]": ("a.png", png(), "image/png")}
    data = {"model": "gpt-image-1", "prompt": "grayscale", "callback_url": receiver.url}
    response = post_form(http, sim, data, files)

    assert response.status_code == 200
    task_id = response.json()["task_id"]
    assert response.json() == {"task_id": task_id}
    payload = receiver.wait()
    assert payload["success"] is True and payload["task_id"] == task_id and payload["trace_id"]
    [item] = payload["data"]["data"]
    assert isinstance(payload["data"]["created"], int)
    assert from_b64(item).size == (64, 48)

    tasks = f"{sim.url}/openai/tasks"
    record = http.post(tasks, json={"action": "retrieve", "id": task_id}, headers=AUTH).json()
    assert record["id"] == task_id and record["trace_id"] == payload["trace_id"]
    assert record["finished_at"] >= record["created_at"]
    assert record["request"]["model"] == "gpt-image-1" and record["request"]["size"] is None
    assert record["response"] == payload
    by_trace = {"action": "retrieve", "trace_id": payload["trace_id"]}
    assert http.post(f"{sim.url}/v1/tasks", json=by_trace, headers=AUTH).json() == record


def test_the_task_query_knows_sync_edits_and_answers_empty_for_unknown_ids(sim, http):
    answer = post_json(
        http, sim, {"model": "gpt-image-2", "image": sample(sim), "prompt": "x"}
    ).json()
    tasks = f"{sim.url}/openai/tasks"
    record = http.post(tasks, json={"action": "retrieve", "id": answer["task_id"]}, headers=AUTH)
    assert record.json()["response"] == answer
    unknown = http.post(tasks, json={"action": "retrieve", "id": "nope"}, headers=AUTH)
    assert (unknown.status_code, unknown.json()) == (200, {})
    response = http.post(tasks, json={"action": "delete", "id": "x"}, headers=AUTH)
    assert_ace_error(response, 400, "bad_request")


def test_an_unfinished_task_has_no_response_yet(sim, http, receiver):
    sim.config.latency = 0.5
    payload = {
        "model": "nano-banana",
        "image": sample(sim),
        "prompt": "x",
        "callback_url": receiver.url,
    }
    task_id = post_json(http, sim, payload).json()["task_id"]
    query = {"action": "retrieve", "id": task_id}
    record = http.post(f"{sim.url}/openai/tasks", json=query, headers=AUTH).json()
    assert record["finished_at"] is None and record["response"] is None
    result = receiver.wait()
    assert result["data"]["created"] == 0
    assert result["data"]["data"][0]["revised_prompt"] == "x"


def test_a_fetch_failure_during_a_callback_edit_is_posted_as_a_failure(sim, http, receiver):
    payload = {"model": "gpt-image-2", "image": "http://127.0.0.1:9/x.png", "prompt": "x",
               "callback_url": receiver.url}  # fmt: skip
    task_id = post_json(http, sim, payload).json()["task_id"]
    result = receiver.wait()
    assert result["success"] is False and result["task_id"] == task_id
    assert result["error"] == {"code": "api_error", "message": "fetch failed"}
    record = http.post(
        f"{sim.url}/openai/tasks", json={"action": "retrieve", "id": task_id}, headers=AUTH
    )
    assert record.json()["response"]["success"] is False


def test_a_callback_request_that_fails_validation_answers_at_once(sim, http, receiver):
    payload = {"model": "gpt-image-2", "image": sample(sim), "callback_url": receiver.url}
    assert_ace_error(post_json(http, sim, payload), 400, "bad_request")
    time.sleep(0.2)
    assert receiver.posts == []


def test_a_callback_is_retried_after_a_server_error(sim, http, receiver):
    receiver.statuses = [500, 503]
    payload = {
        "model": "gpt-image-2",
        "image": sample(sim),
        "prompt": "x",
        "callback_url": receiver.url,
    }
    post_json(http, sim, payload)
    assert receiver.wait()["success"] is True
    assert len(receiver.posts) == 3


# --- Faults ---------------------------------------------------------------------------------

ACE_FAULTS = [
    ("429", 429, "too_many_requests"),
    ("500", 500, "api_error"),
    ("used_up", 402, "used_up"),
    ("forbidden", 403, "forbidden"),
    ("disabled", 403, "disabled"),
    ("invalid_token", 401, "invalid_token"),
    ("token_expired", 401, "token_expired"),
    ("no_token", 401, "no_token"),
    ("token_mismatched", 400, "token_mismatched"),
    ("api_not_implemented", 400, "api_not_implemented"),
    ("timeout", 504, "timeout"),
]


@pytest.mark.parametrize(("fault", "status", "code"), ACE_FAULTS)
def test_an_injected_fault_answers_its_error_once(sim, http, fault, status, code):
    sim.inject(fault)
    files = {"image": ("a.png", png(), "image/png")}
    response = post_form(http, sim, {"model": "gpt-image-2", "prompt": "x"}, files)
    assert_ace_error(response, status, code)
    assert post_form(http, sim, {"model": "gpt-image-2", "prompt": "x"}, files).status_code == 200


def test_injected_faults_queue_up_and_429_says_when_to_retry(sim, http):
    sim.inject("429", times=2)
    sim.inject("500")
    payload = {"model": "gpt-image-2", "image": sample(sim), "prompt": "x"}
    statuses = [post_json(http, sim, payload) for _ in range(4)]
    assert [r.status_code for r in statuses] == [429, 429, 500, 200]
    assert statuses[0].headers["retry-after"] == "1"


def test_a_callback_request_gets_an_injected_error_synchronously(sim, http, receiver):
    sim.inject("used_up")
    payload = {
        "model": "gpt-image-2",
        "image": sample(sim),
        "prompt": "x",
        "callback_url": receiver.url,
    }
    assert_ace_error(post_json(http, sim, payload), 402, "used_up")


def test_a_slow_fault_delays_the_answer(sim, http):
    sim.config.slow_seconds = 0.4
    sim.inject("slow")
    started = time.monotonic()
    response = post_json(http, sim, {"model": "gpt-image-2", "image": sample(sim), "prompt": "x"})
    assert response.status_code == 200 and time.monotonic() - started >= 0.4


def test_latency_delays_every_edit(sim, http):
    sim.config.latency = 0.3
    response = post_json(http, sim, {"model": "gpt-image-2", "image": sample(sim), "prompt": "x"})
    assert response.json()["elapsed"] >= 0.3


def test_a_malformed_fault_answers_unparseable_json(sim, http):
    sim.inject("malformed")
    response = post_json(http, sim, {"model": "gpt-image-2", "image": sample(sim), "prompt": "x"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    with pytest.raises(ValueError):
        response.json()


def test_a_malformed_fault_on_a_callback_request_garbles_the_callback(sim, http, receiver):
    sim.inject("malformed")
    payload = {
        "model": "gpt-image-2",
        "image": sample(sim),
        "prompt": "x",
        "callback_url": receiver.url,
    }
    assert "task_id" in post_json(http, sim, payload).json()
    with pytest.raises(ValueError):
        receiver.wait()


def test_a_fault_rate_of_one_always_faults(sim, http):
    sim.config.fault_rate = 1.0
    sim.config.faults = ("500",)
    payload = {"model": "gpt-image-2", "image": sample(sim), "prompt": "x"}
    assert [post_json(http, sim, payload).status_code for _ in range(3)] == [500] * 3


def test_an_unknown_fault_cannot_be_injected(sim):
    with pytest.raises(ValueError):
        sim.inject("teapot")


def test_reset_forgets_everything_and_restores_the_config(sim, http):
    sim.config.latency = 9
    sim.inject("500")
    post_json(http, sim, {"model": "x"})
    sim.reset()
    assert sim.received == [] and sim.config.latency == 0 and sim.config.slow_seconds == 30
    assert (
        post_json(
            http, sim, {"model": "gpt-image-2", "image": sample(sim), "prompt": "x"}
        ).status_code
        == 200
    )


# --- The OpenAI flavour ---------------------------------------------------------------------


def openai_edit(http, sim, data: dict, files=None, headers=AUTH):
    files = files or {"image": ("a.png", png(), "image/png")}
    return http.post(f"{sim.url}/v1/images/edits", data=data, files=files, headers=headers)


def test_openai_answers_b64_json_with_usage_and_settings(openai_sim, http):
    data = {"model": "gpt-image-1.5", "prompt": "mirror", "size": "1024x1536", "quality": "low"}
    response = openai_edit(http, openai_sim, data)

    answer = response.json()
    assert response.headers["x-request-id"].startswith("req_")
    assert set(answer) == {
        "created",
        "data",
        "usage",
        "size",
        "quality",
        "background",
        "output_format",
    }
    assert (answer["size"], answer["quality"], answer["background"], answer["output_format"]) == (
        "1024x1536", "low", "opaque", "png"
    )  # fmt: skip
    assert set(answer["usage"]) >= {"total_tokens", "input_tokens", "output_tokens"}
    [item] = answer["data"]
    assert set(item) == {"b64_json"} and from_b64(item).size == (1024, 1536)


def test_openai_refuses_json_bodies(openai_sim, http):
    payload = {"model": "gpt-image-2", "image": sample(openai_sim), "prompt": "x"}
    response = post_json(http, openai_sim, payload, path="/v1/images/edits")
    error = assert_openai_error(response, 400, None)
    assert error["type"] == "invalid_request_error" and "multipart" in error["message"]


def test_openai_refuses_url_strings_for_images(openai_sim, http):
    data = {"model": "gpt-image-2", "prompt": "x", "image[]": sample(openai_sim)}
    response = post_form(http, openai_sim, data, path="/v1/images/edits")
    assert_openai_error(response, 400, "invalid_type", "image")


@pytest.mark.parametrize("name", ["response_format", "callback_url"])
def test_openai_refuses_parameters_it_does_not_know(openai_sim, http, name):
    response = openai_edit(http, openai_sim, {"model": "gpt-image-2", "prompt": "x", name: "url"})
    error = assert_openai_error(response, 400, "unknown_parameter", name)
    assert error["message"] == f"Unknown parameter: '{name}'."


@pytest.mark.parametrize("model", ["dall-e-2", "nano-banana", "gpt-image-9"])
def test_openai_refuses_models_it_does_not_serve(openai_sim, http, model):
    response = openai_edit(http, openai_sim, {"model": model, "prompt": "x"})
    error = assert_openai_error(response, 400, "invalid_value", "model")
    assert error["message"].startswith(f"Invalid value: '{model}'.")
    supported = error["message"].split("Supported values are: ")[1]
    assert supported == "'gpt-image-2', 'gpt-image-1.5', 'gpt-image-1'."


def test_openai_refuses_a_bad_size_saying_why(openai_sim, http):
    response = openai_edit(
        http, openai_sim, {"model": "gpt-image-2", "prompt": "x", "size": "1000x1000"}
    )
    error = assert_openai_error(response, 400, "invalid_value", "size")
    assert error["message"] == "Width and height must be multiples of 16."


def test_openai_moderation_is_a_400_moderation_blocked(openai_sim, http):
    response = openai_edit(http, openai_sim, {"model": "gpt-image-2", "prompt": "nsfw"})
    assert_openai_error(response, 400, "moderation_blocked")


def test_openai_faults_use_openai_codes_and_headers(openai_sim, http):
    data = {"model": "gpt-image-2", "prompt": "x"}
    openai_sim.inject("429")
    response = openai_edit(http, openai_sim, data)
    assert assert_openai_error(response, 429, "rate_limit_exceeded")["type"] == "requests"
    assert (response.headers["retry-after-ms"], response.headers["retry-after"]) == ("1000", "1")
    openai_sim.inject("used_up")
    assert_openai_error(openai_edit(http, openai_sim, data), 429, "insufficient_quota")
    openai_sim.inject("500")
    error = assert_openai_error(openai_edit(http, openai_sim, data), 500, None)
    assert error["type"] == "server_error"


def test_openai_has_no_ace_endpoints(openai_sim, http):
    assert http.post(f"{openai_sim.url}/openai/images/edits", headers=AUTH).status_code == 404
    assert http.post(f"{openai_sim.url}/v1/tasks", json={}, headers=AUTH).status_code == 404


# --- Reading bodies -------------------------------------------------------------------------


def test_multipart_file_bytes_survive_exactly():
    data = bytes(range(256)) * 3 + b"\r\n--boundary\r\r\n\n\r"
    request = httpx.Request(
        "POST",
        "http://x/",
        files={"image": ("f.bin", data, "image/png")},
        data={"prompt": "a\r\nb"},
    )
    body = protocol.parse_body(request.headers["content-type"], request.read())
    assert body.kind == "multipart" and body.error is None
    assert body.files["image"][0].data == data
    assert body.fields == {"prompt": ["a\r\nb"]}


def test_json_bodies_flatten_like_forms():
    body = protocol.parse_body("application/json", b'{"image": ["u1", "u2"], "n": 3, "x": null}')
    assert body.fields == {"image": ["u1", "u2"], "n": ["3"]}


# --- Pixels ---------------------------------------------------------------------------------


def marked(mode="RGB") -> Image.Image:
    """A 40x20 picture, mid-gray but for one coloured pixel at the top-left."""
    image = Image.new(mode, (40, 20), (128, 128, 128, 255) if mode == "RGBA" else (128, 128, 128))
    image.putpixel((0, 0), (10, 20, 30, 255) if mode == "RGBA" else (10, 20, 30))
    return image


def test_grayscale_output_is_gray():
    result = pixels.grayscale(pixels.make_sample("landscape"))
    red, green, blue = result.split()
    assert red.tobytes() == green.tobytes() == blue.tobytes()


def test_invert_inverts_a_known_pixel():
    assert pixels.invert(marked()).getpixel((0, 0)) == (245, 235, 225)


def test_mirror_flip_and_rotate_move_a_known_pixel():
    assert pixels.mirror(marked()).getpixel((39, 0)) == (10, 20, 30)
    assert pixels.flip(marked()).getpixel((0, 19)) == (10, 20, 30)
    turned = pixels.rotate(marked(), 90)
    assert turned.size == (20, 40) and turned.getpixel((19, 0)) == (10, 20, 30)


def test_tones_go_the_right_way():
    gray = Image.new("RGB", (8, 8), (128, 128, 128))
    assert pixels.brighten(gray).getpixel((0, 0))[0] > 128
    assert pixels.darken(gray).getpixel((0, 0))[0] < 128
    red, green, blue = pixels.sepia(gray).getpixel((0, 0))
    assert red > green > blue


def test_blur_pixelate_and_edges_change_detail():
    picture = pixels.make_sample("square")
    assert pixels.blur(picture).tobytes() != picture.tobytes()
    blocky = pixels.pixelate(picture)
    assert len(blocky.crop((0, 0, 21, 21)).getcolors()) == 1
    flat = pixels.edges(Image.new("RGB", (16, 16), (90, 10, 200)))
    assert flat.getpixel((8, 8)) == (255, 255, 255)
    assert pixels.posterize(Image.new("RGB", (2, 2), (77, 77, 77))).getpixel((0, 0)) == (64, 64, 64)


def test_colour_edits_keep_alpha():
    image = marked("RGBA")
    image.putpixel((5, 5), (1, 2, 3, 0))
    for name in ["invert", "grayscale", "sepia", "blur", "contrast", "warm_frame"]:
        result = pixels.EDITS[name](image)
        assert result.mode == "RGBA" and result.getpixel((5, 5))[3] == 0, name


def test_the_plan_follows_the_prompts_order_and_falls_back_to_a_warm_frame():
    names = [name for name, _ in pixels.plan("Blur it, then make it Black and White, then blur")]
    assert names == ["blur", "grayscale"]
    assert [name for name, _ in pixels.plan("Convert to dark mode and invert")] == ["invert"]
    assert [name for name, _ in pixels.plan("add a leaf")] == ["warm_frame"]
    assert pixels.rotation_degrees("rotate it by 45 degrees") == 45
    assert pixels.rotation_degrees("rotate counterclockwise") == -90


def test_combine_makes_one_picture_the_size_of_the_first():
    inputs = [pixels.make_sample(name) for name in ("portrait", "landscape", "square")]
    assert pixels.combine(inputs).size == (768, 1024)


def test_decode_refuses_what_is_not_an_image():
    with pytest.raises(ValueError):
        pixels.decode(b"GIF89a broken")
