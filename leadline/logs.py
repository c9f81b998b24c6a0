"""JSON logs, one object per line, and masking of personal data.

A log line never holds a full e-mail address: `mask_email` keeps the first
letter and the domain, enough to tell leads apart without exposing them.
"""

from __future__ import annotations

import asyncio
import contextlib
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


class JsonLines(logging.StreamHandler):  # type: ignore[type-arg]
    """The JSON handler; lines from `line()` written in bursts (one write a loop turn).

    A request's log line is one `write` system call otherwise, on every
    request's path. Lines wait at most until the event loop's next turn, and
    any other record (a warning, an error) writes the waiting ones first, so
    the order of lines is kept.
    """

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._pending: list[str] = []
        self._scheduled = False

    def add_line(self, text: str) -> None:
        self._pending.append(text)
        if self._scheduled:
            return
        try:
            asyncio.get_running_loop().call_soon(self.flush)
        except RuntimeError:  # no loop: write now
            self.flush()
            return
        self._scheduled = True

    def flush(self) -> None:
        self._scheduled = False
        if self._pending:
            lines, self._pending = self._pending, []
            with self.lock or _NO_LOCK, contextlib.suppress(OSError, ValueError):
                self.stream.write(self.terminator.join(lines) + self.terminator)
        super().flush()

    def emit(self, record: logging.LogRecord) -> None:
        if self._pending:
            self.flush()
        super().emit(record)


def configure(level: str = "INFO") -> None:
    """Send JSON lines to stderr; called once by each program's entry point."""
    global _json_handler
    handler = JsonLines(sys.stderr)
    formatter = JsonFormatter()
    formatter.converter = time.gmtime
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    _json_handler = handler
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


# The handler `configure` installed, for `line()`.
_json_handler: JsonLines | None = None


def line(logger: logging.Logger, level: int, event: str, fields: dict[str, Any]) -> None:
    """What `logger.log(level, event, extra=fields)` writes, for a line on every request's path.

    When the only place the line can go is the JSON handler `configure` set up
    (no filters, no other handler), the line is written as the formatter would
    write it, without building a `LogRecord` (a tenth of a small request's CPU);
    otherwise through `logging` as usual. The caller checks `isEnabledFor`.
    """
    handler = _json_handler
    root = logging.getLogger()
    if (handler is None or logger.filters or logger.handlers or not logger.propagate or root.filters
            or root.handlers != [handler] or handler.filters or level < handler.level):
        logger.log(level, event, extra=fields)
        return
    formatter = handler.formatter
    assert isinstance(formatter, JsonFormatter)
    now = time.time()
    whole = int(now)
    second, stamp = formatter._second
    if whole != second:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
        formatter._second = (whole, stamp)
    entry: dict[str, Any] = {"ts": f"{stamp}.{int((now - whole) * 1000):03d}Z",
                             "level": _LEVELS.get(logging.getLevelName(level)) or str(level).lower(),
                             "logger": logger.name, "event": event}
    entry.update(fields)
    handler.add_line(orjson.dumps(entry, default=str).decode())


class _NoLock:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


_NO_LOCK = _NoLock()
