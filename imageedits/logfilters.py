import logging
import re

# /hooks/submissions/<id>/<secret>/: the secret lets anyone post a result for that request.
_CALLBACK_PATH = re.compile(r"(/hooks/submissions/\d+/)[^/\s\"]+")


class RedactCallbackSecrets(logging.Filter):
    """Keep callback secrets out of every log line (access logs print request paths)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = _CALLBACK_PATH.sub(r"\1[redacted]", message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True
