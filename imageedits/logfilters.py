"""What every log line goes through: secrets redacted, the request's id attached, and (with
LOG_FORMAT=json) one JSON object a line for log collectors."""

import contextvars
import json
import logging
import re
import uuid

# /hooks/submissions/<id>/<secret>/ lets anyone post a result for that request, and
# /s/<token>/ lets anyone see a shared edit: access logs must not hand them out.
_SECRET_PATHS = re.compile(r"(/hooks/submissions/\d+/|/s/)[^/\s\"]+")
# Personal API tokens (api_tokens.PREFIX), wherever they turn up: a header quoted, a URL.
_API_TOKENS = re.compile(r"\biet_[A-Za-z0-9_-]{20,}")
# An id a proxy in front may already have given the request, if it looks like one.
_GIVEN_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")


def redact(text: str) -> str:
    """`text` with every callback secret, share token and API token in it replaced by
    [redacted]."""
    return _API_TOKENS.sub("iet_[redacted]", _SECRET_PATHS.sub(r"\1[redacted]", text))


class RedactSecrets(logging.Filter):
    """Keep callback secrets, share tokens and API tokens out of every log line (access logs
    print paths)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        record.request_id = request_id.get()
        return True


class RequestIdMiddleware:
    """Give each request an id (the proxy's X-Request-ID when it sent a usable one), put it on
    every log line written while the request is served, and send it back in the response."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        given = request.headers.get("X-Request-ID", "")
        value = given if _GIVEN_ID.match(given) else uuid.uuid4().hex
        token = request_id.set(value)
        try:
            response = self.get_response(request)
        finally:
            request_id.reset(token)
        response["X-Request-ID"] = value
        return response


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, request id, and the traceback."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", ""),
        }
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry)


def redact_event(event: dict, hint: dict | None = None) -> dict:
    """Sentry's before_send: the same redaction for the request URL, its headers (the
    referrer) and the breadcrumbs' messages (log lines) of an error report."""
    request = event.get("request") or {}
    if isinstance(request.get("url"), str):
        request["url"] = redact(request["url"])
    headers = request.get("headers") or {}
    for name in list(headers):
        if isinstance(headers[name], str):
            headers[name] = redact(headers[name])
    for crumb in (event.get("breadcrumbs") or {}).get("values", []):
        if isinstance(crumb.get("message"), str):
            crumb["message"] = redact(crumb["message"])
    return event
