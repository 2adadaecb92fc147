import logging
import re

# /hooks/submissions/<id>/<secret>/ lets anyone post a result for that request, and
# /s/<token>/ lets anyone see a shared edit: access logs must not hand them out.
_SECRET_PATHS = re.compile(r"(/hooks/submissions/\d+/|/s/)[^/\s\"]+")


def redact(text: str) -> str:
    """`text` with every callback secret and share token in it replaced by [redacted]."""
    return _SECRET_PATHS.sub(r"\1[redacted]", text)


class RedactSecrets(logging.Filter):
    """Keep callback secrets and share tokens out of every log line (access logs print paths)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True
