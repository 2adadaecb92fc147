"""What an images edits request says and whether the upstream would accept it; no I/O here.

`parse_body` reads a JSON or multipart body into ordered parts, `validate` turns those into a
`Job` or raises `EditError`, and `error_answer` renders an error the way each flavour does.
What each model accepts is in `rules`, written from the reference independently of the app.
"""

import email.policy
import json
import re
from dataclasses import dataclass, field
from email.parser import BytesParser

from PIL import Image

from imageedits.simulator import pixels, rules
from imageedits.simulator.rules import MAX_IMAGE_BYTES, MAX_IMAGES, OPENAI

BLOCKED_WORDS = re.compile(r"\b(?:nsfw|gore|forbidden-content)\b", re.IGNORECASE)
GPT_IMAGE_INPUT_FORMATS = {"PNG", "JPEG", "MPO", "WEBP"}

RESPONSE_FORMATS = ("url", "b64_json")

# Ace's error codes and the HTTP status each comes with.
ACE_STATUS = {
    "bad_request": 400,
    "token_mismatched": 400,
    "api_not_implemented": 400,
    "invalid_token": 401,
    "token_expired": 401,
    "no_token": 401,
    "used_up": 402,
    "forbidden": 403,
    "disabled": 403,
    "not_found": 404,
    "method_not_allowed": 405,
    "too_many_requests": 429,
    "api_error": 500,
    "timeout": 504,
}

DEFAULT_MESSAGES = {
    "bad_request": "Bad request.",
    "token_mismatched": "The token does not match this service.",
    "api_not_implemented": "This API is not implemented.",
    "invalid_token": "The token is invalid.",
    "token_expired": "The token has expired.",
    "no_token": "No token was provided.",
    "used_up": "Your balance is used up; top up in the console.",
    "forbidden": "The prompt was rejected by content moderation.",
    "disabled": "This token has been disabled.",
    "too_many_requests": "Too many requests, you have exceeded the rate limit.",
    "api_error": "Internal server error.",
    "timeout": "The request timed out; use callback_url for long edits.",
}

# How OpenAI words the errors Ace has codes for: code -> (status, type, OpenAI code, message).
_OPENAI_ERRORS = {
    "invalid_token": (401, "invalid_request_error", "invalid_api_key", None),
    "token_expired": (401, "invalid_request_error", "invalid_api_key", None),
    "no_token": (401, "invalid_request_error", "invalid_api_key", None),
    "forbidden": (
        400,
        "image_generation_user_error",
        "moderation_blocked",
        "Your request was rejected by the safety system.",
    ),
    "too_many_requests": (
        429,
        "requests",
        "rate_limit_exceeded",
        "Rate limit reached for requests. Please try again in 1s.",
    ),
    "used_up": (
        429,
        "insufficient_quota",
        "insufficient_quota",
        "You exceeded your current quota, please check your plan and billing details.",
    ),
    "api_error": (500, "server_error", None, "The server had an error processing your request."),
    "timeout": (504, "server_error", "timeout", "The request timed out."),
}


class EditError(Exception):
    """A refusal the upstream would answer with: an Ace code plus what OpenAI would add."""

    def __init__(
        self,
        code: str,
        message: str | None = None,
        *,
        param: str | None = None,
        openai_code: str | None = None,
    ) -> None:
        self.code = code
        self.message = message or DEFAULT_MESSAGES.get(code, code)
        self.param = param
        self.openai_code = openai_code
        super().__init__(self.message)


def bad_request(
    message: str, param: str | None = None, openai_code: str | None = None
) -> EditError:
    return EditError("bad_request", message, param=param, openai_code=openai_code)


def error_answer(error: EditError, flavour: str, trace_id: str) -> tuple[int, dict, dict[str, str]]:
    """(status, JSON body, extra headers) for an error, in the flavour's own format."""
    headers = {}
    if error.code == "too_many_requests":
        headers["Retry-After"] = "1"
    if flavour == OPENAI:
        if error.code == "too_many_requests":
            headers["retry-after-ms"] = "1000"
        status, kind, code, message = _OPENAI_ERRORS.get(
            error.code,
            (ACE_STATUS.get(error.code, 400), "invalid_request_error", error.openai_code, None),
        )
        if error.code == "bad_request" or message is None:
            message = error.message
        body = {"error": {"message": message, "type": kind, "param": error.param, "code": code}}
        return status, body, headers
    body = {
        "success": False,
        "error": {"code": error.code, "message": error.message},
        "trace_id": trace_id,
    }
    return ACE_STATUS.get(error.code, 400), body, headers


# --- Reading bodies -----------------------------------------------------------------------------


@dataclass
class Upload:
    filename: str
    content_type: str
    data: bytes


@dataclass
class Body:
    """A request body as ordered (name, value) parts; a value is text or an uploaded file."""

    kind: str  # "json", "multipart", or the media type that could not be read
    parts: list[tuple[str, str | Upload]] = field(default_factory=list)
    error: str | None = None  # why the body could not be read, if it could not

    @property
    def fields(self) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for name, value in self.parts:
            if isinstance(value, str):
                found.setdefault(name, []).append(value)
        return found

    @property
    def files(self) -> dict[str, list[Upload]]:
        found: dict[str, list[Upload]] = {}
        for name, value in self.parts:
            if isinstance(value, Upload):
                found.setdefault(name, []).append(value)
        return found

    def has(self, name: str) -> bool:
        return any(part == name for part, _ in self.parts)

    def text(self, name: str) -> str | None:
        """The first text value sent under `name`, None if there is none."""
        return next((v for n, v in self.parts if n == name and isinstance(v, str)), None)


def parse_body(content_type: str, raw: bytes) -> Body:
    media_type = content_type.split(";")[0].strip().lower()
    if media_type == "application/json":
        try:
            data = json.loads(raw)
        except ValueError:
            return Body("json", error="The body is not valid JSON.")
        if not isinstance(data, dict):
            return Body("json", error="The JSON body must be an object.")
        return Body("json", _flatten_json(data))
    if media_type == "multipart/form-data":
        try:
            return Body("multipart", _parse_multipart(content_type, raw))
        except ValueError as error:
            return Body("multipart", error=str(error))
    return Body(
        media_type or "none",
        error="Content-Type must be application/json or multipart/form-data.",
    )


def _flatten_json(data: dict) -> list[tuple[str, str | Upload]]:
    """JSON values as form-like text parts: a list gives one part per item, null gives none."""
    parts: list[tuple[str, str | Upload]] = []
    for name, value in data.items():
        for item in value if isinstance(value, list) else [value]:
            if item is not None:
                parts.append((name, item if isinstance(item, str) else json.dumps(item)))
    return parts


def _parse_multipart(content_type: str, raw: bytes) -> list[tuple[str, str | Upload]]:
    # The email parser reads multipart bodies byte-exactly once given the outer header (cgi is
    # gone in Python 3.13); each part's payload comes back as the original bytes.
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1")
    message = BytesParser(policy=email.policy.HTTP).parsebytes(head + raw)
    if not message.is_multipart():
        raise ValueError("The multipart body has no boundary.")
    parts: list[tuple[str, str | Upload]] = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        filename = part.get_filename()
        data = part.get_payload(decode=True) or b""
        if filename is None:
            parts.append((name, data.decode("utf-8", "replace")))
        elif filename or data:  # browsers send an empty, nameless part for "no file chosen"
            parts.append((name, Upload(filename, part.get_content_type(), data)))
    return parts


# --- Validating ---------------------------------------------------------------------------------


@dataclass
class Job:
    """An accepted edit: everything needed to make the pictures and shape the answer."""

    model: rules.Model
    prompt: str
    inputs: list[Image.Image | str]  # decoded pictures, or http(s) URLs still to fetch
    mask: Image.Image | None = None
    size: str = "auto"  # "auto" or WIDTHxHEIGHT
    n: int = 1
    response_format: str = "url"
    output_format: str = "png"
    quality: str | None = None
    background: str | None = None
    callback_url: str | None = None
    kind: str = "json"


def validate(body: Body, flavour: str) -> Job:
    """The job a request asks for, or the EditError the upstream would answer with."""
    if body.error:
        raise bad_request(body.error)
    if flavour == OPENAI:
        _refuse_what_openai_refuses(body)
    model = _model(body, flavour)
    prompt = _prompt(body, model)
    inputs = _inputs(body, model, flavour)
    job = Job(model=model, prompt=prompt, inputs=inputs, kind=body.kind)
    job.callback_url = _callback_url(body)
    if not model.is_nano_banana:
        job.size = _size(body, model)
        job.n = _n(body, model)
        job.response_format = _response_format(body, model)
        job.mask = _mask(body, model, inputs)
    if model.is_gpt_image:
        _gpt_image_options(body, model, job)
    if BLOCKED_WORDS.search(prompt):
        raise EditError("forbidden", "The prompt was rejected by content moderation.")
    return job


def _refuse_what_openai_refuses(body: Body) -> None:
    if body.kind == "json":
        raise bad_request(
            "The images edits endpoint requires multipart/form-data; "
            "application/json bodies are not accepted."
        )
    for name in ("response_format", "callback_url"):
        if body.has(name):
            raise bad_request(f"Unknown parameter: '{name}'.", name, "unknown_parameter")


def _model(body: Body, flavour: str) -> rules.Model:
    name = (body.text("model") or "").strip()
    known = [m for m in rules.MODELS.values() if flavour in m.flavours]
    model = rules.MODELS.get(name)
    if not name:
        raise bad_request("model is required.", "model", "missing_required_parameter")
    if model is None or flavour not in model.flavours:
        choices = ", ".join(f"'{m.name}'" for m in known)
        raise bad_request(
            f"Invalid value: '{name}'. Supported values are: {choices}.", "model", "invalid_value"
        )
    return model


def _prompt(body: Body, model: rules.Model) -> str:
    prompt = body.text("prompt") or ""
    if not prompt.strip():
        raise bad_request("prompt is required.", "prompt", "missing_required_parameter")
    if len(prompt) > model.max_prompt:
        raise bad_request(
            f"prompt is too long: {len(prompt):,} characters, "
            f"{model.name} accepts at most {model.max_prompt:,}.",
            "prompt",
            "string_above_max_length",
        )
    return prompt


def _inputs(body: Body, model: rules.Model, flavour: str) -> list[Image.Image | str]:
    sent = [value for name, value in body.parts if name in ("image", "image[]")]
    if not sent:
        raise bad_request("image is required.", "image", "missing_required_parameter")
    if len(sent) > MAX_IMAGES:
        raise bad_request(f"At most {MAX_IMAGES} images per request (got {len(sent)}).", "image")
    if len(sent) > model.max_images:
        raise bad_request(
            f"{model.name} accepts at most {model.max_images} image(s) (got {len(sent)}).", "image"
        )
    inputs: list[Image.Image | str] = []
    for number, value in enumerate(sent, start=1):
        if isinstance(value, Upload):
            inputs.append(_decode_upload(value, number, model, "image"))
        elif flavour == OPENAI:
            raise bad_request(
                "Invalid type for 'image': expected a file, but got a string instead.",
                "image",
                "invalid_type",
            )
        elif value.startswith(("http://", "https://")):
            inputs.append(value)
        else:
            raise bad_request(
                f"image {number} must be a file or an http(s) URL (got {value[:60]!r}).", "image"
            )
    return inputs


def _decode_upload(upload: Upload, number: int, model: rules.Model, param: str) -> Image.Image:
    if len(upload.data) > MAX_IMAGE_BYTES:
        raise bad_request(f"{param} {number} is larger than 50 MB.", param)
    try:
        image = pixels.decode(upload.data)
    except ValueError as error:
        raise bad_request(
            f"Invalid image file or mode for {param} {number} ({upload.filename}): "
            "it could not be decoded.",
            param,
            "invalid_image_file",
        ) from error
    problem = input_problem(model, image, len(upload.data))
    if problem:
        raise bad_request(f"Invalid {param} {number} ({upload.filename}): {problem}", param)
    return image


def input_problem(model: rules.Model, image: Image.Image, byte_count: int) -> str | None:
    """What the model's upstream would object to in a decoded input (upstream-notes.md)."""
    if model.family == "dall-e":
        if image.format != "PNG":
            return "dall-e-2 needs a PNG file."
        if image.width != image.height:
            return f"dall-e-2 needs a square image (this one is {image.width}x{image.height})."
        if byte_count >= rules.DALL_E_MAX_BYTES:
            return "dall-e-2 needs a file smaller than 4 MB."
    if model.is_gpt_image and image.format not in GPT_IMAGE_INPUT_FORMATS:
        return f"{model.name} accepts PNG, JPEG and WEBP files (this one is {image.format})."
    return None


def _callback_url(body: Body) -> str | None:
    url = (body.text("callback_url") or "").strip()
    if not url:
        return None
    if not url.startswith(("http://", "https://")):
        raise bad_request("callback_url must be an http(s) URL.", "callback_url")
    return url


def _size(body: Body, model: rules.Model) -> str:
    size = (body.text("size") or "").strip()
    if not size:
        # The upstream's defaults: dall-e-2 draws 1024x1024, the gpt-image models decide ("auto").
        return "auto" if model.sizes is None or "auto" in model.sizes else "1024x1024"
    error = rules.size_problem(model, size)
    if error:
        raise bad_request(error, "size", "invalid_value")
    return size


def _n(body: Body, model: rules.Model) -> int:
    given = (body.text("n") or "").strip()
    if not model.takes_n or not given:
        return 1  # every model but dall-e-2 answers with one image, whatever n says
    try:
        n = int(given)
    except ValueError:
        n = 0
    if not 1 <= n <= 10:
        raise bad_request("n must be a whole number from 1 to 10.", "n", "invalid_value")
    return n


def _response_format(body: Body, model: rules.Model) -> str:
    given = body.text("response_format")
    if given:
        if given not in RESPONSE_FORMATS:
            raise bad_request("response_format must be url or b64_json.", "response_format")
        return given
    # Ace answers gpt-image uploads as the OpenAI SDK expects them (b64_json), URLs otherwise.
    return "b64_json" if model.is_gpt_image and body.kind == "multipart" else "url"


def _mask(body: Body, model: rules.Model, inputs: list[Image.Image | str]) -> Image.Image | None:
    uploads = body.files.get("mask")
    if not uploads:
        return None
    mask = _decode_upload(uploads[0], 1, model, "mask")
    problem = mask_problem(mask, inputs[0])
    if problem:
        raise bad_request(problem, "mask")
    return mask


def mask_problem(mask: Image.Image, first: Image.Image | str) -> str | None:
    """OpenAI's mask rules: an alpha channel, and the first image's size (when it is known)."""
    if mask.mode != "RGBA":
        return "Invalid mask image format - mask image missing alpha channel"
    if isinstance(first, Image.Image) and mask.size != first.size:
        return "Invalid mask image format - mask size does not match image size"
    return None


def _gpt_image_options(body: Body, model: rules.Model, job: Job) -> None:
    given = {name: body.text(name) or "" for name in rules.PARAMS if body.has(name)}
    if problem := rules.param_problem(model, given):
        name, code, message = problem
        raise bad_request(message, name, code)
    job.quality = body.text("quality") or None
    job.background = body.text("background") or None
    job.output_format = body.text("output_format") or "png"
