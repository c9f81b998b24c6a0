"""JSON logs, one object per line, and masking of personal data.

A log line never holds a full e-mail address: `mask_email` keeps the first
letter and the domain, enough to tell leads apart without exposing them.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import orjson

_RESERVED = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message"}
_LEVELS = {name: name.lower() for name in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")}


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, event and the extra fields.

    Formatting is on every request's path, so the date and time part of the
    stamp is made once a second (`formatTime` calls strftime for each record).
    """

    def __init__(self) -> None:
        super().__init__()
        self._second: tuple[int, str] = (-1, "")

    def _stamp(self, record: logging.LogRecord) -> str:
        whole = int(record.created)
        second, text = self._second
        if whole != second:
            text = time.strftime("%Y-%m-%dT%H:%M:%S", self.converter(whole))
            self._second = (whole, text)
        return f"{text}.{int(record.msecs):03d}Z"

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": self._stamp(record),
            "level": _LEVELS.get(record.levelname) or record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _RESERVED and key[:1] != "_":
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def configure(level: str = "INFO") -> None:
    """Send JSON lines to stderr; called once by each program's entry point."""
    handler = logging.StreamHandler(sys.stderr)
    formatter = JsonFormatter()
    formatter.converter = time.gmtime
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiormq logs every dropped connection with a traceback at ERROR; our
    # reconnect loop logs one line for it instead.
    logging.getLogger("aiormq").setLevel(logging.CRITICAL)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


def mask_email(value: object) -> str:
    """`ada.lovelace@example.com` -> `a***@example.com`."""
    text = str(value)
    local, at, domain = text.rpartition("@")
    if not at:
        return "***"
    return f"{local[:1]}***@{domain}"


def trace_id(traceparent: str | None) -> str | None:
    """The trace id of a W3C `traceparent` (`00-<trace id>-<span id>-<flags>`)."""
    if not traceparent:
        return None
    parts = traceparent.split("-")
    if len(parts) == 4 and len(parts[1]) == 32:
        return parts[1]
    return None
