import logging

from imageedits.logfilters import RedactSecrets


def test_callback_secrets_are_redacted_from_log_lines():
    record = logging.LogRecord(
        "django.server", logging.INFO, __file__, 1,
        '"%s" %s', ("POST /hooks/submissions/12/Zx9-secret_value/ HTTP/1.1", 200), None,
    )  # fmt: skip
    assert RedactSecrets().filter(record)
    assert record.getMessage() == '"POST /hooks/submissions/12/[redacted]/ HTTP/1.1" 200'


def test_other_lines_pass_unchanged():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "GET /edits/%d/", (3,), None)
    assert RedactSecrets().filter(record)
    assert record.getMessage() == "GET /edits/3/"


def test_share_tokens_are_redacted_too():
    record = logging.LogRecord(
        "django.server", logging.INFO, __file__, 1, "GET %s", ("/s/AbC_123-xyz/result/0/",), None
    )
    assert RedactSecrets().filter(record)
    assert record.getMessage() == "GET /s/[redacted]/result/0/"


def test_each_response_carries_its_request_id(client):
    made = client.get("/health/")
    assert len(made["X-Request-ID"]) == 32
    given = client.get("/health/", headers={"X-Request-ID": "lb-7f3a9c21"})
    assert given["X-Request-ID"] == "lb-7f3a9c21"
    forged = client.get("/health/", headers={"X-Request-ID": "evil\nline"})
    assert forged["X-Request-ID"] != "evil\nline" and len(forged["X-Request-ID"]) == 32


def test_json_lines_carry_the_request_id_and_stay_redacted():
    import json

    from imageedits.logfilters import JsonFormatter, request_id

    token = request_id.set("req-1234abcd")
    try:
        record = logging.LogRecord(
            "django.request", logging.WARNING, __file__, 1, "Not Found: %s",
            ("/s/AShareTokenValue/",), None,
        )  # fmt: skip
        assert RedactSecrets().filter(record)
    finally:
        request_id.reset(token)
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "Not Found: /s/[redacted]/"
    assert (line["level"], line["logger"], line["request_id"]) == (
        "WARNING", "django.request", "req-1234abcd",
    )  # fmt: skip
