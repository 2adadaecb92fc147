"""The simulator's HTTP side: routes, auth, faults, the task store, result files and callbacks.

A stdlib ThreadingHTTPServer in a daemon thread. The handler only moves bytes; `SimulatorServer`
decides every answer, using `protocol` for what a request means and `pixels` for the pictures.
"""

import base64
import functools
import hmac
import io
import json
import logging
import random
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field, fields, replace
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

import httpx
from PIL import Image

from imageedits.simulator import pixels, protocol, rules
from imageedits.simulator.protocol import EditError, Job
from imageedits.simulator.rules import ACE, OPENAI

log = logging.getLogger("imageedits.simulator")

# "empty", "garbage" and "gone" spoil a successful answer: no image at all, image data that is
# not an image, and result URLs that answer 404.
FAULTS = ("429", "500", "slow", "malformed", "empty", "garbage", "gone")
SPOILERS = ("empty", "garbage", "gone")
# Injected fault name -> the Ace error code it answers with; Ace codes may be injected as is.
FAULT_CODES = {"429": "too_many_requests", "500": "api_error"}
INJECTABLE = frozenset(FAULTS) | frozenset(protocol.DEFAULT_MESSAGES)

MAX_BODY_BYTES = 200 * 1024 * 1024
FETCH_TIMEOUT = 10.0
CALLBACK_TIMEOUT = 10.0
CALLBACK_RETRIES = 3
CONTENT_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
# Relative output token cost per quality, for a plausible `usage` block (not OpenAI's formula).
QUALITY_TOKENS = {"low": 272, "medium": 1056, "high": 4160, "auto": 1056}

EDIT_PATHS = {ACE: ("/openai/images/edits", "/v1/images/edits"), OPENAI: ("/v1/images/edits",)}
TASK_PATHS = {ACE: ("/openai/tasks", "/v1/tasks"), OPENAI: ()}


@dataclass
class SimulatorConfig:
    """Knobs tests may turn while the server runs."""

    latency: float = 0.0  # seconds each edit takes
    fault_rate: float = 0.0  # chance (0..1) that a request gets a random fault from `faults`
    faults: tuple[str, ...] = FAULTS
    slow_seconds: float = 30.0  # how long a "slow" fault stalls
    url_ttl: float = 3600.0  # seconds a result URL stays valid


@dataclass
class Response:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    model: str = "-"  # for the log line


@dataclass
class StoredFile:
    data: bytes
    content_type: str
    expires_at: float


class _HTTPServer(ThreadingHTTPServer):
    # Room for many clients connecting at once (32 edits sent together by the benchmarks),
    # where the default backlog of 5 drops connections.
    request_queue_size = 128


class SimulatorServer:
    """An offline images edits upstream that answers over a real socket.

    `flavour` is "ace" (Ace Data Cloud: JSON or multipart, URLs, callbacks, task query) or
    "openai" (api.openai.com: multipart only, b64_json only).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str = "sk-simulator",
        flavour: str = ACE,
        latency: float = 0.0,
        fault_rate: float = 0.0,
    ) -> None:
        if flavour not in (ACE, OPENAI):
            raise ValueError(f"flavour must be {ACE!r} or {OPENAI!r}, not {flavour!r}")
        self.host = host
        self.port = port
        self.token = token
        self.flavour = flavour
        self._defaults = SimulatorConfig(latency=latency, fault_rate=fault_rate)
        self.config = replace(self._defaults)
        self.received: list[dict] = []
        self._faults: deque[str] = deque()
        self._tasks: dict[str, dict] = {}
        self._files: dict[str, StoredFile] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._random = random.Random()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- The public interface -------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Where clients reach the server, without a trailing slash."""
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> None:
        """Listen, then serve from a daemon thread; returns once connections are accepted."""
        self._stopping.clear()
        self._httpd = _HTTPServer((self.host, self.port), _Handler)
        self._httpd.sim = self  # type: ignore[attr-defined]
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"simulator-{self.port}",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()  # wakes requests and callbacks sleeping through latency
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def inject(self, fault: str, times: int = 1) -> None:
        """Give the next `times` edit requests this fault, after any already queued."""
        if fault not in INJECTABLE:
            raise ValueError(f"unknown fault {fault!r}; choose from {sorted(INJECTABLE)}")
        with self._lock:
            self._faults.extend([fault] * times)

    def reset(self) -> None:
        """Forget requests, faults, tasks and files; put the config back as it was created."""
        with self._lock:
            self.received.clear()
            self._faults.clear()
            self._tasks.clear()
            self._files.clear()
            for knob in fields(SimulatorConfig):
                setattr(self.config, knob.name, getattr(self._defaults, knob.name))

    # --- Routing --------------------------------------------------------------------------------

    def respond(self, method: str, target: str, headers: Message, raw: bytes) -> Response:
        """The answer to one HTTP request."""
        path = urlsplit(target).path
        if path != "/":
            path = path.rstrip("/")
        if path in EDIT_PATHS[self.flavour] or path in TASK_PATHS[self.flavour]:
            if method != "POST":
                return self._not_allowed(path, "POST")
            if path in EDIT_PATHS[self.flavour]:
                return self._edit(path, headers, raw)
            return self._task_query(headers, raw)
        if path in ("/healthz", "/samples") or path.startswith(("/samples/", "/files/")):
            if method != "GET":
                return self._not_allowed(path, "GET")
            if path == "/healthz":
                return Response(200, b"ok", "text/plain; charset=utf-8")
            if path == "/samples":
                return self._sample_list()
            if path.startswith("/samples/"):
                return self._sample(path.removeprefix("/samples/"))
            return self._file(unquote(path.removeprefix("/files/")))
        return self._error(EditError("not_found", f"No such endpoint: {path}"))

    def _not_allowed(self, path: str, allowed: str) -> Response:
        response = self._error(EditError("method_not_allowed", f"{path} answers {allowed} only."))
        response.headers["Allow"] = allowed
        return response

    def _json(self, status: int, payload: object) -> Response:
        return Response(status, json.dumps(payload).encode())

    def _error(self, error: EditError, trace_id: str | None = None) -> Response:
        status, payload, headers = protocol.error_answer(
            error, self.flavour, trace_id or str(uuid.uuid4())
        )
        return Response(status, json.dumps(payload).encode(), headers=headers)

    def _authorisation_error(self, headers: Message) -> EditError | None:
        given = headers.get("Authorization") or ""
        if not given.strip():
            return EditError(
                "invalid_token", "No token was provided: send Authorization: Bearer <token>."
            )
        scheme, _, token = given.strip().partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            token.strip().encode(), self.token.encode()
        ):
            return EditError("invalid_token", "The token is invalid.")
        return None

    # --- Edits ----------------------------------------------------------------------------------

    def _edit(self, path: str, headers: Message, raw: bytes) -> Response:
        started = time.monotonic()
        body = protocol.parse_body(headers.get("Content-Type") or "", raw)
        self._record(path, headers, body)
        trace_id = str(uuid.uuid4())
        model = body.text("model") or "-"
        refusal = self._authorisation_error(headers)
        if refusal:
            response = self._error(refusal, trace_id)
            response.model = model
            return response
        task_id = str(uuid.uuid4())
        self._open_task(task_id, trace_id, body)
        fault = self._next_fault()
        try:
            if fault not in (None, "slow", "malformed", *SPOILERS):
                raise EditError(FAULT_CODES.get(fault, fault))
            job = protocol.validate(body, self.flavour)
            base_url = "http://" + (headers.get("Host") or self.url.removeprefix("http://"))
            if job.callback_url:
                threading.Thread(
                    target=self._finish_in_background,
                    args=(job, job.callback_url, task_id, trace_id, base_url, fault),
                    daemon=True,
                ).start()
                return Response(200, json.dumps({"task_id": task_id}).encode(), model=model)
            if fault == "slow":
                self._wait(self.config.slow_seconds)
            self._wait(self.config.latency)
            answer = self._answer(job, task_id, trace_id, base_url, started)
            if fault in SPOILERS:
                self._spoil(answer["data"], fault, base_url)
        except EditError as error:
            status, answer, extra = protocol.error_answer(error, self.flavour, trace_id)
            response = Response(status, json.dumps(answer).encode(), headers=extra)
        else:
            response = Response(200, json.dumps(answer).encode())
        self._close_task(task_id, answer)
        if fault == "malformed":
            # Half of a JSON object is never valid JSON.
            response = Response(200, response.body[: len(response.body) // 2])
        if self.flavour == OPENAI:
            response.headers["x-request-id"] = f"req_{uuid.uuid4().hex}"
        response.model = model
        return response

    def _answer(self, job: Job, task_id: str, trace_id: str, base_url: str, started: float) -> dict:
        created, items, pictures = self._result(job, task_id, base_url)
        if self.flavour == OPENAI:
            width, height = pictures[0].size
            return {
                "created": created,
                "data": items,
                "usage": _usage(job, pictures[0]),
                "size": f"{width}x{height}",
                "quality": job.quality or "auto",
                "background": job.background or "opaque",
                "output_format": job.output_format,
            }
        if job.model.is_nano_banana:
            return {"created": created, "data": items}
        answer = {
            "success": True,
            "task_id": task_id,
            "trace_id": trace_id,
            "created": created,
            "data": items,
            "elapsed": round(time.monotonic() - started, 3),
        }
        if job.model.is_gpt_image:
            answer["usage"] = _usage(job, pictures[0])
        return answer

    def _finish_in_background(
        self,
        job: Job,
        callback_url: str,
        task_id: str,
        trace_id: str,
        base_url: str,
        fault: str | None,
    ) -> None:
        """The callback half of an edit: do the work, store the task, POST the payload."""
        if fault == "slow":
            self._wait(self.config.slow_seconds)
        self._wait(self.config.latency)
        try:
            created, items, _ = self._result(job, task_id, base_url)
            if fault in SPOILERS:
                self._spoil(items, fault, base_url)
            payload = {
                "success": True,
                "task_id": task_id,
                "trace_id": trace_id,
                "data": {"created": created, "data": items},
            }
        except EditError as error:
            payload = _failure(task_id, trace_id, error)
        except Exception:
            # Nobody waits on this thread: without a failure payload the task would hang forever.
            log.exception("edit %s failed", task_id)
            payload = _failure(task_id, trace_id, EditError("api_error"))
        self._close_task(task_id, payload)
        body = json.dumps(payload).encode()
        if fault == "malformed":
            body = body[: len(body) // 2]
        self._post_callback(callback_url, body)

    def _spoil(self, items: list[dict], fault: str, base_url: str) -> None:
        """Turn a good answer's data items into a faulty one, in place."""
        if fault == "empty":
            items.clear()
            return
        for item in items:
            if fault == "garbage" and "b64_json" in item:
                truncated = base64.b64decode(item["b64_json"])[:64]
                item["b64_json"] = base64.b64encode(truncated).decode("ascii")
            elif fault == "garbage" and "url" in item:
                garbage = b"<html>not an image</html>"
                item["url"] = self._publish(f"{uuid.uuid4()}.png", garbage, "image/png", base_url)
            elif fault == "gone" and "url" in item:
                item["url"] = f"{base_url}/files/{uuid.uuid4()}-gone.png"

    def _result(
        self, job: Job, task_id: str, base_url: str
    ) -> tuple[int, list[dict], list[Image.Image]]:
        """(created, data items, pictures) for an accepted job."""
        pictures = self._pictures(job)
        nano = job.model.is_nano_banana
        image_format = "jpeg" if nano else job.output_format
        items = []
        for index, picture in enumerate(pictures):
            data = pixels.encode(picture, image_format)
            if job.response_format == "b64_json" and not nano:
                item = {"b64_json": base64.b64encode(data).decode("ascii")}
            else:
                name = f"{uuid.uuid4()}.jpeg" if nano else f"{task_id}_{index}.{image_format}"
                item = {"url": self._publish(name, data, CONTENT_TYPES[image_format], base_url)}
            if nano:
                item["revised_prompt"] = job.prompt
            elif job.model.is_gpt_image and self.flavour == ACE:
                item["revised_prompt"] = _revised(job.prompt)
            items.append(item)
        return (0 if nano else int(time.time())), items, pictures

    def _pictures(self, job: Job) -> list[Image.Image]:
        """Fetch, combine, edit, mask and size the inputs: one picture per requested image."""
        images = []
        for number, given in enumerate(job.inputs, start=1):
            if isinstance(given, Image.Image):
                images.append(given)
                continue
            data = self._download(given)
            try:
                image = pixels.decode(data)
            except ValueError as error:
                log.info("fetched image %d is not an image: %s", number, error)
                raise EditError("api_error", "fetch failed") from error
            problem = protocol.input_problem(job.model, image, len(data))
            if problem:
                raise protocol.bad_request(f"Invalid image {number}: {problem}", "image")
            images.append(image)
        if job.mask is not None:
            problem = protocol.mask_problem(job.mask, images[0])
            if problem:
                raise protocol.bad_request(problem, "mask")
        picture = pixels.combine(images)
        edited = pixels.apply_prompt(picture, job.prompt)
        if job.mask is not None:
            edited = pixels.apply_mask(picture, edited, job.mask)
        if job.model.is_nano_banana or job.size == "auto":
            size = picture.size
        else:
            size = rules.parse_size(job.size) or picture.size
        edited = pixels.fit(edited, size)
        if job.background == "opaque":
            edited = pixels.flatten(edited)
        elif job.background == "transparent":
            edited = edited.convert("RGBA")
        return [pixels.variant(edited, index) for index in range(job.n)]

    def _download(self, url: str) -> bytes:
        """An input image URL's bytes, or the upstream's 500 "fetch failed"."""
        try:
            with httpx.stream("GET", url, timeout=FETCH_TIMEOUT, follow_redirects=True) as reply:
                if reply.status_code != 200:
                    log.info("fetching %s answered %d", url, reply.status_code)
                    raise EditError("api_error", "fetch failed")
                chunks, total = [], 0
                for chunk in reply.iter_bytes():
                    total += len(chunk)
                    if total > rules.MAX_IMAGE_BYTES:
                        raise EditError("api_error", "fetch failed")
                    chunks.append(chunk)
        except (httpx.HTTPError, httpx.InvalidURL) as error:
            log.info("fetching %s failed: %s", url, error)
            raise EditError("api_error", "fetch failed") from error
        return b"".join(chunks)

    def _post_callback(self, url: str, body: bytes) -> None:
        """POST the payload, retrying connection errors and 5xx answers a few times."""
        # Callback URLs carry a secret: log only where they point.
        where = urlsplit(url).netloc
        for attempt in range(1 + CALLBACK_RETRIES):
            if attempt:
                self._wait(0.25 * 2 ** (attempt - 1))
            if self._stopping.is_set():
                return
            try:
                reply = httpx.post(
                    url,
                    content=body,
                    headers={"Content-Type": "application/json"},
                    timeout=CALLBACK_TIMEOUT,
                )
            except httpx.HTTPError as error:
                log.info("callback to %s failed (attempt %d): %s", where, attempt + 1, error)
                continue
            log.info("callback to %s answered %d", where, reply.status_code)
            if reply.status_code < 500:
                return
        log.warning("gave up posting the callback to %s", where)

    def _next_fault(self) -> str | None:
        with self._lock:
            if self._faults:
                return self._faults.popleft()
        config = self.config
        if config.faults and self._random.random() < config.fault_rate:
            return self._random.choice(config.faults)
        return None

    def _wait(self, seconds: float) -> None:
        if seconds > 0:
            self._stopping.wait(seconds)

    def _record(self, path: str, headers: Message, body: protocol.Body) -> None:
        entry = {
            "path": path,
            "content_type": body.kind,
            "authorization": headers.get("Authorization"),
            "fields": body.fields,
            "files": {
                name: [_describe(upload) for upload in uploads]
                for name, uploads in body.files.items()
            },
        }
        with self._lock:
            self.received.append(entry)

    # --- Tasks ----------------------------------------------------------------------------------

    def _open_task(self, task_id: str, trace_id: str, body: protocol.Body) -> None:
        request: dict[str, object] = {"model": None, "prompt": None, "size": None}
        for name, values in body.fields.items():
            request[name] = values[0] if len(values) == 1 else values
        task = {
            "id": task_id,
            "trace_id": trace_id,
            "created_at": time.time(),
            "finished_at": None,
            "request": request,
            "response": None,
        }
        with self._lock:
            self._tasks[task_id] = task

    def _close_task(self, task_id: str, response: dict) -> None:
        with self._lock:
            task = self._tasks.get(task_id)
            if task is not None:
                task["response"] = response
                task["finished_at"] = time.time()

    def _task_query(self, headers: Message, raw: bytes) -> Response:
        trace_id = str(uuid.uuid4())
        refusal = self._authorisation_error(headers)
        if refusal:
            return self._error(refusal, trace_id)
        try:
            query = json.loads(raw)
        except ValueError:
            query = None
        if not isinstance(query, dict):
            return self._error(protocol.bad_request("The body must be a JSON object."), trace_id)
        if query.get("action") != "retrieve":
            message = "action must be retrieve."
            return self._error(protocol.bad_request(message, "action"), trace_id)
        if not query.get("id") and not query.get("trace_id"):
            message = "Give the task's id or trace_id."
            return self._error(protocol.bad_request(message, "id"), trace_id)
        with self._lock:
            if query.get("id"):
                task = self._tasks.get(query["id"])
            else:
                wanted = query["trace_id"]
                task = next((t for t in self._tasks.values() if t["trace_id"] == wanted), None)
            return self._json(200, task or {})

    # --- Files and samples ----------------------------------------------------------------------

    def _publish(self, name: str, data: bytes, content_type: str, base_url: str) -> str:
        now = time.time()
        with self._lock:
            for old in [key for key, stored in self._files.items() if stored.expires_at <= now]:
                del self._files[old]
            self._files[name] = StoredFile(data, content_type, now + self.config.url_ttl)
        return f"{base_url}/files/{name}"

    def _file(self, name: str) -> Response:
        with self._lock:
            stored = self._files.get(name)
        if stored is None or stored.expires_at <= time.time():
            return self._error(EditError("not_found", "This file does not exist or has expired."))
        return Response(200, stored.data, stored.content_type)

    def _sample_list(self) -> Response:
        return self._json(
            200, {"samples": [f"/samples/{name}.png" for name in pixels.SAMPLE_SIZES]}
        )

    def _sample(self, filename: str) -> Response:
        name = filename.removesuffix(".png")
        if name not in pixels.SAMPLE_SIZES or not filename.endswith(".png"):
            return self._error(EditError("not_found", f"No sample called {filename}."))
        return Response(200, _sample_png(name), "image/png")


@functools.cache
def _sample_png(name: str) -> bytes:
    return pixels.encode(pixels.make_sample(name), "png")


def _failure(task_id: str, trace_id: str, error: EditError) -> dict:
    return {
        "success": False,
        "task_id": task_id,
        "trace_id": trace_id,
        "error": {"code": error.code, "message": error.message},
    }


def _revised(prompt: str) -> str:
    """The prompt lightly reworded, as gpt-image models hand it back."""
    text = " ".join(prompt.split())
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


def _usage(job: Job, picture: Image.Image) -> dict:
    """A plausible token count: prompt length, inputs and output area (not OpenAI's formula)."""
    text_tokens = max(1, len(job.prompt) // 4)
    image_tokens = 194 * len(job.inputs)
    scale = picture.width * picture.height / (1024 * 1024)
    output_tokens = max(16, round(QUALITY_TOKENS[job.quality or "auto"] * scale))
    return {
        "total_tokens": text_tokens + image_tokens + output_tokens,
        "input_tokens": text_tokens + image_tokens,
        "output_tokens": output_tokens,
        "input_tokens_details": {"text_tokens": text_tokens, "image_tokens": image_tokens},
    }


def _describe(upload: protocol.Upload) -> dict:
    """What `received` keeps of an uploaded file: its name, type, size and dimensions."""
    width = height = None
    try:
        with Image.open(io.BytesIO(upload.data)) as image:
            width, height = image.size
    except Exception:  # not an image: the request is refused later; here the size stays unknown
        log.debug("upload %s is not an image", upload.filename)
    return {
        "filename": upload.filename,
        "content_type": upload.content_type,
        "size": len(upload.data),
        "width": width,
        "height": height,
    }


class _Handler(BaseHTTPRequestHandler):
    """Reads the request, asks the SimulatorServer for the answer, writes it, logs one line."""

    server_version = "ImageEditsSimulator/1.0"
    # HTTP/1.1 for keep-alive and "Expect: 100-continue" (curl -F waits a second without it);
    # every answer carries Content-Length and every body is read whole, as 1.1 requires.
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def log_message(self, format: str, *args: object) -> None:
        pass  # replaced by the one line per request in _serve, which never shows headers

    def _serve(self) -> None:
        sim: SimulatorServer = self.server.sim  # type: ignore[attr-defined]
        started = time.monotonic()
        raw = self._read_body()
        if raw is None:
            error = EditError("bad_request", "The request body is too large or unreadable.")
            response = sim._error(error)
            response.status = 413
            self.close_connection = True
        else:
            try:
                response = sim.respond(self.command, self.path, self.headers, raw)
            except Exception:
                # One broken request must not take the server down; answer as the upstream would.
                log.exception("%s %s failed", self.command, self.path)
                response = sim._error(EditError("api_error"))
        try:
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(response.body)
        except (BrokenPipeError, ConnectionResetError):
            log.info("%s %s: the client hung up", self.command, self.path)
        log.info(
            "%s %s %d model=%s %.2fs",
            self.command,
            urlsplit(self.path).path,
            response.status,
            response.model,
            time.monotonic() - started,
        )

    def _read_body(self) -> bytes | None:
        """The whole body (plain or chunked); None if it is too large or unreadable."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._read_chunked()
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            return None
        if length > MAX_BODY_BYTES:
            return None
        return self.rfile.read(length) if length > 0 else b""

    def _read_chunked(self) -> bytes | None:
        chunks, total = [], 0
        while True:
            try:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            except ValueError:
                return None
            if size == 0:
                break
            total += size
            if total > MAX_BODY_BYTES:
                return None
            chunks.append(self.rfile.read(size))
            self.rfile.readline()
        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
            pass  # trailers
        return b"".join(chunks)
