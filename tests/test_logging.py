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
