"""The only code that speaks HTTP to the images edits API.

It turns an edit into the upstream request for the configured flavour, sends it with one reused
httpx client, and turns every answer into data (EditAnswer, Submitted) or an UpstreamError
carrying a message for the user. See ../shared/reference/images-edits-api.txt and
upstream-notes.md for the two flavours:

- "ace" (Ace Data Cloud, and the simulator): JSON with image URLs or multipart; answers `url` or
  `b64_json`; `callback_url` mode; a task query endpoint.
- "openai" (api.openai.com): multipart only, so URL inputs are fetched when the edit is created
  and uploaded as files; GPT image models always answer `b64_json` and refuse
  `response_format`; no callbacks.
"""

import base64
import binascii
import json
import logging
import threading
import time
from dataclasses import dataclass, field

import httpx
from django.conf import settings

from . import catalog, fetch

logger = logging.getLogger(__name__)

ACE = catalog.ACE
OPENAI = catalog.OPENAI
MAX_RESULT_BYTES = 64 * 1024 * 1024
# Up to ten base64 results in one answer.
MAX_ANSWER_BYTES = 10 * MAX_RESULT_BYTES
TASK_QUERY_DEADLINE = 30.0
# Answer fields that say what the upstream used.
REPORTED_KEYS = ("size", "quality", "background", "output_format")
MAX_MESSAGE_CHARS = 300


# --- What goes in and what comes out ----------------------------------------------------------


@dataclass(frozen=True)
class InputFile:
    filename: str
    content: bytes
    content_type: str


@dataclass
class EditRequest:
    model: str
    prompt: str
    size: str = ""
    # In order; each an image URL or the bytes of an image.
    images: list[str | InputFile] = field(default_factory=list)
    callback_url: str = ""
    # How many images to ask for; only models that take `n` (dall-e-2) are asked for more than 1.
    n: int = 1
    mask: InputFile | None = None
    # Extra parameters (quality, background, ...); those the model does not take are dropped.
    params: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ResultData:
    b64_json: str = ""
    url: str = ""
    revised_prompt: str = ""


@dataclass(frozen=True)
class EditAnswer:
    images: list[ResultData]
    task_id: str = ""
    trace_id: str = ""
    elapsed: float | None = None
    # What the upstream says it used, where it says (OpenAI does): size, quality, ...
    reported: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Submitted:
    """The upstream took the edit and will POST the result to the callback URL."""

    task_id: str
    trace_id: str = ""


# --- Errors -----------------------------------------------------------------------------------


class UpstreamError(Exception):
    """Anything that went wrong upstream, with a message fit to show the user."""

    retryable = False
    default_message = "The image service could not complete this edit."

    def __init__(
        self, message: str = "", *, code: str = "", status: int | None = None, trace_id: str = ""
    ) -> None:
        self.message = message or self.default_message
        self.code = code or "upstream_error"
        self.status = status
        self.trace_id = trace_id
        super().__init__(self.message)


class RequestRejected(UpstreamError):
    default_message = "The image service rejected the request."


class AuthenticationFailed(UpstreamError):
    default_message = (
        "The image service did not accept this app's API key. An administrator needs to check "
        "the OPENAI_API_KEY setting."
    )


class BalanceExhausted(UpstreamError):
    default_message = (
        "The image service account has run out of credit. An administrator needs to top up the "
        "balance before more edits can run."
    )


class AccountDisabled(UpstreamError):
    default_message = "The image service has disabled this app's account. Contact its support."


class ModerationRefused(UpstreamError):
    default_message = (
        "The image service refused this edit under its content rules. Change the instruction "
        "or the images and try again."
    )


class RateLimited(UpstreamError):
    retryable = True
    default_message = (
        "The image service is receiving too many requests right now. Try again in a minute."
    )

    def __init__(self, message: str = "", *, retry_after: float | None = None, **kwargs) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kwargs)


class ServiceError(UpstreamError):
    retryable = True
    default_message = "The image service had an internal error. Try again in a moment."


class InputUnreachable(ServiceError):
    """The upstream could not download an image URL it was given: a 500 "fetch failed". Not
    retried: the URL answered when the edit was made, so it is the URL, not a hiccup."""

    retryable = False
    default_message = (
        "The image service could not download one of the image URLs. Check that each one "
        "opens in a browser without logging in, then try again."
    )


class ServiceTimeout(UpstreamError):
    retryable = True
    default_message = "The image service took too long to answer."


class ServiceUnreachable(UpstreamError):
    retryable = True
    default_message = "The image service could not be reached. Try again in a moment."


class MalformedAnswer(UpstreamError):
    default_message = "The image service sent an answer that could not be understood."


class TaskUnknown(UpstreamError):
    retryable = True  # the upstream lost the task: sending the request again can help
    default_message = "The image service has no record of this edit."


class TaskFailed(UpstreamError):
    """A task record that says the edit ended in `error` (not a failure of the query itself)."""

    def __init__(self, error: UpstreamError) -> None:
        self.error = error
        super().__init__(
            error.message, code=error.code, status=error.status, trace_id=error.trace_id
        )


# Error codes of both flavours -> the exception that explains them.
ERROR_CODES: dict[str, type[UpstreamError]] = {
    # Ace Data Cloud
    "bad_request": RequestRejected,
    "token_mismatched": RequestRejected,
    "api_not_implemented": RequestRejected,
    "invalid_token": AuthenticationFailed,
    "token_expired": AuthenticationFailed,
    "no_token": AuthenticationFailed,
    "forbidden": ModerationRefused,
    "used_up": BalanceExhausted,
    "disabled": AccountDisabled,
    "too_many_requests": RateLimited,
    "api_error": ServiceError,
    "timeout": ServiceTimeout,
    # OpenAI
    "invalid_api_key": AuthenticationFailed,
    "moderation_blocked": ModerationRefused,
    "insufficient_quota": BalanceExhausted,
    "billing_hard_limit_reached": BalanceExhausted,
    "rate_limit_exceeded": RateLimited,
    "server_error": ServiceError,
}

# When an error body names no code we know, the HTTP status decides.
ERROR_STATUSES: dict[int, type[UpstreamError]] = {
    400: RequestRejected,
    401: AuthenticationFailed,
    402: BalanceExhausted,
    403: RequestRejected,  # moderation has its own codes; a bare 403 is something else
    409: ServiceError,
    404: RequestRejected,
    408: ServiceTimeout,
    413: RequestRejected,
    422: RequestRejected,
    429: RateLimited,
    504: ServiceTimeout,
}

# Upstream messages worth passing on: they explain what to change in the request.
_SHOWS_UPSTREAM_MESSAGE = (RequestRejected,)


def error_from_response(
    status: int, body: bytes, headers: httpx.Headers | None = None
) -> UpstreamError:
    """Map an error answer of either flavour to its exception."""
    code, message, trace_id = "", "", ""
    try:
        payload = json.loads(body)
    except ValueError:
        payload = None
    if isinstance(payload, dict):
        error = payload.get("error")
        if isinstance(error, dict):
            code = str(error.get("code") or error.get("type") or "")
            message = str(error.get("message") or "")
        elif isinstance(error, str):
            message = error
        trace_id = str(payload.get("trace_id") or "")
    return make_error(code, message, status=status, trace_id=trace_id, headers=headers)


def make_error(
    code: str,
    upstream_message: str,
    *,
    status: int | None = None,
    trace_id: str = "",
    headers: httpx.Headers | None = None,
) -> UpstreamError:
    cls = ERROR_CODES.get(code)
    if cls is None and status is not None:
        cls = ERROR_STATUSES.get(status, ServiceError if status >= 500 else UpstreamError)
    cls = cls or UpstreamError
    if cls is ServiceError and upstream_message.strip().lower() == "fetch failed":
        cls = InputUnreachable
    message = ""
    if cls in _SHOWS_UPSTREAM_MESSAGE and upstream_message:
        message = f"The image service rejected the request: {upstream_message[:MAX_MESSAGE_CHARS]}"
    error_code = code or (f"http_{status}" if status else "upstream_error")
    kwargs = {"code": error_code, "status": status, "trace_id": trace_id}
    if cls is RateLimited:
        return RateLimited(message, retry_after=_retry_after(headers), **kwargs)
    return cls(message, **kwargs)


def _retry_after(headers: httpx.Headers | None) -> float | None:
    if not headers:
        return None
    try:
        if "retry-after-ms" in headers:
            return float(headers["retry-after-ms"]) / 1000
        if "retry-after" in headers:
            return float(headers["retry-after"])
    except ValueError:
        return None
    return None


# --- The client -------------------------------------------------------------------------------

_client: httpx.Client | None = None
_client_lock = threading.Lock()


def client() -> httpx.Client:
    """One client for the process: connections are pooled and reused across edits."""
    global _client
    with _client_lock:
        if _client is None:
            _client = httpx.Client(
                timeout=httpx.Timeout(
                    connect=10.0, read=settings.UPSTREAM_TIMEOUT, write=60.0, pool=10.0
                ),
                follow_redirects=False,
                headers={"User-Agent": "imageedits/0.1"},
            )
        return _client


def flavour() -> str:
    if settings.OPENAI_FLAVOUR in (ACE, OPENAI):
        return settings.OPENAI_FLAVOUR
    return OPENAI if "api.openai.com" in settings.OPENAI_BASE_URL else ACE


def supports_callbacks() -> bool:
    """Ace calls back, and has the task query that confirms a callback; OpenAI has neither."""
    return flavour() == ACE


def _auth_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {settings.OPENAI_API_KEY}"}


def build_request(request: EditRequest, for_flavour: str) -> dict:
    """The keyword arguments for httpx: `json=` or `data=`/`files=`, per model and input kind.

    Only what the model takes is sent: nano-banana models get model, prompt and image alone;
    a mask goes only to models that take one, and always in a multipart body."""
    model = catalog.MODELS[request.model]
    fields: dict[str, str | int] = {"model": model.name, "prompt": request.prompt}
    if not model.takes_only_model_prompt_image:
        if model.takes_size and request.size:
            fields["size"] = request.size
        fields.update(catalog.params_for(model, request.params))
        if model.native_n and request.n > 1:
            fields["n"] = request.n
    if request.callback_url and for_flavour == ACE:
        fields["callback_url"] = request.callback_url
    mask = request.mask if model.takes_mask else None
    images = request.images
    if model.url_transport == "json" and _urls_pass_through(request, for_flavour):
        if "output_compression" in fields:
            fields["output_compression"] = int(fields["output_compression"])
        return {"json": {**fields, "image": images[0] if len(images) == 1 else images}}
    name = "image" if len(images) == 1 else "image[]"
    parts = []
    for image in images:
        if isinstance(image, str):
            if not _urls_pass_through(request, for_flavour):
                # Decided when the edit was created; the service has changed since.
                raise RequestRejected(
                    "This edit's image URLs cannot be sent to the image service now in use. "
                    "Start a new edit with the images uploaded.",
                    code="urls_not_accepted",
                )
            parts.append((name, (None, image)))
        else:
            parts.append((name, (image.filename, image.content, image.content_type)))
    if mask:
        parts.append(("mask", (mask.filename, mask.content, mask.content_type)))
    return {"data": {key: str(value) for key, value in fields.items()}, "files": parts}


def _urls_pass_through(request: EditRequest, for_flavour: str) -> bool:
    has_files = any(not isinstance(image, str) for image in request.images)
    return urls_pass_through(request.model, has_files, request.mask is not None, for_flavour)


def urls_pass_through(
    model_name: str, has_files: bool, has_mask: bool, for_flavour: str = ""
) -> bool:
    """Whether image URLs can go to the upstream as URLs; if not, the app uploads their bytes.
    Decided once, when the edit is created (forms.EditForm), and kept: an edit stores either
    the URL or the fetched image.

    Only Ace takes URLs, and only for some models: gpt-image-2 in a JSON body (which cannot
    carry a mask or files), nano-banana also as URL strings in a multipart body."""
    model = catalog.MODELS[model_name]
    if (for_flavour or flavour()) != ACE or model.url_transport is None:
        return False
    if model.url_transport == "json":
        return not has_files and not (has_mask and model.takes_mask)
    return True


def submit(request: EditRequest) -> EditAnswer | Submitted:
    """Send one edit. With a callback URL (ace flavour) the answer is Submitted at once."""
    current = flavour()
    body = _post("/images/edits", settings.UPSTREAM_TIMEOUT, **build_request(request, current))
    payload = _json(body)
    if request.callback_url and current == ACE and "data" not in payload and "error" not in payload:
        task_id = str(payload.get("task_id") or "")
        if not task_id:
            raise MalformedAnswer(
                "The image service accepted the edit but gave no task id.", code="malformed_answer"
            )
        return Submitted(task_id, str(payload.get("trace_id") or ""))
    return parse_answer(payload)


def retrieve_task(task_id: str) -> EditAnswer | None:
    """Ask the task query endpoint; None while the upstream is still working."""
    body = _post("/tasks", TASK_QUERY_DEADLINE, json={"action": "retrieve", "id": task_id})
    record = _json(body)
    if not record:
        raise TaskUnknown(code="task_unknown")
    if not record.get("finished_at"):
        return None
    answer = record.get("response")
    try:
        if not isinstance(answer, dict):
            raise MalformedAnswer(
                "The image service's task record holds no answer.", code="malformed_answer"
            )
        return parse_answer({"task_id": task_id, **answer})
    except UpstreamError as error:
        raise TaskFailed(error) from error


def parse_answer(payload: dict) -> EditAnswer:
    """Both answer shapes: the synchronous answer and the callback payload (data nested)."""
    if payload.get("success") is False or payload.get("error"):
        error = payload.get("error")
        if not isinstance(error, dict):
            error = {"message": str(error or "")}
        raise make_error(
            str(error.get("code") or "api_error"),
            str(error.get("message") or ""),
            trace_id=str(payload.get("trace_id") or ""),
        )
    data = payload.get("data")
    if isinstance(data, dict):  # the callback payload wraps the answer once more
        data = data.get("data")
    if not isinstance(data, list) or not data:
        raise MalformedAnswer(
            "The image service answered without any image.",
            code="no_image",
            trace_id=str(payload.get("trace_id") or ""),
        )
    images = []
    for item in data:
        if not isinstance(item, dict) or not (item.get("b64_json") or item.get("url")):
            raise MalformedAnswer(
                "The image service answered with an empty image.", code="no_image"
            )
        images.append(
            ResultData(
                b64_json=str(item.get("b64_json") or ""),
                url=str(item.get("url") or ""),
                revised_prompt=str(item.get("revised_prompt") or ""),
            )
        )
    elapsed = payload.get("elapsed")
    return EditAnswer(
        images=images,
        task_id=str(payload.get("task_id") or ""),
        trace_id=str(payload.get("trace_id") or ""),
        elapsed=float(elapsed) if isinstance(elapsed, int | float) else None,
        reported={
            key: str(payload[key]) for key in REPORTED_KEYS if isinstance(payload.get(key), str)
        },
    )


def result_bytes(result: ResultData, ends: float | None = None) -> bytes:
    """The image of one result: decoded from base64, or downloaded before its URL expires and
    before `ends` (a time.monotonic() value shared by all the results of an answer; by default
    RESULT_DOWNLOAD_TIMEOUT from now)."""
    if result.b64_json:
        try:
            return base64.b64decode(result.b64_json, validate=True)
        except (binascii.Error, ValueError) as error:
            raise MalformedAnswer(
                "The image service sent image data that is not valid.", code="bad_image_data"
            ) from error
    if ends is None:
        ends = time.monotonic() + settings.RESULT_DOWNLOAD_TIMEOUT
    timeout = httpx.Timeout(min(30.0, max(ends - time.monotonic(), 0.1)))
    try:
        with client().stream("GET", result.url, timeout=timeout) as response:
            if response.status_code != 200:
                raise MalformedAnswer(
                    f"The result image could not be downloaded from the image service "
                    f"(HTTP {response.status_code}); its link may have expired.",
                    code="result_unavailable",
                )
            return _read(response, ends, MAX_RESULT_BYTES)
    except httpx.TimeoutException as error:
        raise ServiceTimeout(
            "The result image took too long to download from the image service.",
            code="timeout",
        ) from error
    except httpx.HTTPError as error:
        raise ServiceUnreachable(
            "The result image could not be downloaded from the image service.",
            code="result_unavailable",
        ) from error


def _post(path: str, deadline: float, **kwargs) -> bytes:
    """POST and read the whole answer within `deadline` seconds in all and MAX_ANSWER_BYTES."""
    url = settings.OPENAI_BASE_URL + path
    ends = time.monotonic() + deadline
    # The read timeout follows the settings at call time (the client is made once) and never
    # outlasts the deadline.
    timeout = httpx.Timeout(10.0, read=min(deadline, settings.UPSTREAM_TIMEOUT), write=60.0)
    try:
        with client().stream(
            "POST", url, headers=_auth_headers(), timeout=timeout, **kwargs
        ) as response:
            body = _read(response, ends, MAX_ANSWER_BYTES)
    except httpx.TimeoutException as error:
        raise ServiceTimeout(code="timeout") from error
    except httpx.HTTPError as error:
        raise ServiceUnreachable(code="unreachable") from error
    if response.status_code >= 400:
        raise error_from_response(response.status_code, body, response.headers)
    return body


def _read(response: httpx.Response, ends: float, cap: int) -> bytes:
    try:
        return fetch.read_capped(response, ends, cap)
    except fetch.TooLarge as error:
        raise MalformedAnswer(
            "The image service sent more data than this app accepts.", code="answer_too_large"
        ) from error
    except fetch.TooSlow as error:
        raise ServiceTimeout(code="timeout") from error


def _json(body: bytes) -> dict:
    try:
        payload = json.loads(body)
    except ValueError as error:
        raise MalformedAnswer(code="malformed_answer") from error
    if not isinstance(payload, dict):
        raise MalformedAnswer(code="malformed_answer")
    return payload
