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


def test_error_reports_are_redacted_like_the_logs():
    from imageedits.logfilters import redact_event

    event = {
        "request": {
            "url": "https://edits.example.com/s/AShareTokenValue/result/0/",
            "headers": {"Referer": "https://edits.example.com/hooks/submissions/3/ASecret/"},
        },
        "breadcrumbs": {"values": [{"message": "Not Found: /s/AShareTokenValue/"}]},
    }
    redacted = redact_event(event)
    assert redacted["request"]["url"] == "https://edits.example.com/s/[redacted]/result/0/"
    assert redacted["request"]["headers"]["Referer"].endswith("/hooks/submissions/3/[redacted]/")
    assert redacted["breadcrumbs"]["values"][0]["message"] == "Not Found: /s/[redacted]/"


def test_sentry_is_on_only_with_a_dsn(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = (
        "import django; django.setup(); import sentry_sdk; client = sentry_sdk.get_client(); "
        "print(client.is_active(), client.options['send_default_pii'], "
        "client.options['before_send'].__name__ if client.is_active() else '')"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "SENTRY_"))}
    env.update(VAR_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="imageedits.settings")
    root = Path(__file__).resolve().parent.parent

    def run(**extra) -> str:
        done = subprocess.run([sys.executable, "-c", script], cwd=root, env={**env, **extra},
                              capture_output=True, text=True, timeout=60)  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    assert run().startswith("False")
    assert run(SENTRY_DSN="http://public@127.0.0.1:9/1") == "True False redact_event"
