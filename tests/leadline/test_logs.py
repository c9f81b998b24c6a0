"""The JSON log line: its fast time stamp reads as `formatTime` would, and the
extra fields of a record become fields of the line."""

from __future__ import annotations

import io
import logging
import time

import orjson
from hypothesis import given
from hypothesis import strategies as st

from leadline import logs
from leadline.logs import JsonFormatter, mask_email


def _record(created: float, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("leadline.proxy.access", logging.INFO, "", 0, "request", None, None)
    record.created = created
    record.msecs = int((created - int(created)) * 1000) + 0.0
    record.__dict__.update(extra)
    return record


@given(st.floats(min_value=0, max_value=4e9))
def test_the_stamp_is_what_formattime_writes(created: float) -> None:
    formatter = JsonFormatter()
    formatter.converter = time.gmtime
    record = _record(created)
    expected = formatter.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z"
    assert orjson.loads(formatter.format(record))["ts"] == expected
    assert orjson.loads(formatter.format(_record(created + 1.0)))["ts"] != expected


def test_a_line_carries_level_logger_event_and_the_extra_fields() -> None:
    formatter = JsonFormatter()
    line = orjson.loads(formatter.format(_record(time.time(), id="key-0001", status=202, _private=1)))
    assert line["level"] == "info"
    assert line["logger"] == "leadline.proxy.access"
    assert line["event"] == "request"
    assert (line["id"], line["status"]) == ("key-0001", 202)
    assert "_private" not in line
    assert "msecs" not in line


def test_mask_email_keeps_the_first_letter_and_the_domain() -> None:
    assert mask_email("ada.lovelace@example.com") == "a***@example.com"
    assert mask_email("nobody") == "***"


def test_the_fast_request_line_is_the_line_logging_would_write() -> None:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    stream = io.StringIO()
    try:
        logs.configure("INFO")
        assert logs._json_handler is not None
        logs._json_handler.setStream(stream)
        logger = logging.getLogger("leadline.proxy.access")
        fields = {"method": "POST", "path": "/api/forms/lead", "status": 202, "id": "sid-1"}
        logs.line(logger, logging.INFO, "request", fields)
        logger.log(logging.INFO, "request", extra=fields)
        logger.addFilter(lambda r: True)  # a filter: the slow path, which honours it
        logs.line(logger, logging.INFO, "request", fields)
        logger.filters.clear()
    finally:
        root.handlers[:], root.level = saved
        logs._json_handler = None
        logging.getLogger("aiormq").setLevel(logging.NOTSET)
    fast, slow, filtered = (orjson.loads(text) for text in stream.getvalue().splitlines())
    fast_ts, slow_ts = fast.pop("ts"), slow.pop("ts")
    filtered.pop("ts")
    expected = {"level": "info", "logger": "leadline.proxy.access", "event": "request", **fields}
    assert fast == slow == filtered == expected
    assert len(fast_ts) == len(slow_ts) == len("2026-12-01T08:00:00.000Z")


async def test_request_lines_go_out_in_one_write_a_loop_turn_and_keep_their_order_with_others() -> None:
    import asyncio

    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    writes: list[str] = []

    class Recorder(io.StringIO):
        def write(self, text: str) -> int:
            writes.append(text)
            return len(text)

    try:
        logs.configure("INFO")
        assert logs._json_handler is not None
        logs._json_handler.setStream(Recorder())
        logger = logging.getLogger("leadline.proxy.access")
        for n in range(3):
            logs.line(logger, logging.INFO, "request", {"n": n})
        assert writes == []  # not yet: they wait for the loop's turn
        await asyncio.sleep(0)
        assert len(writes) == 1
        assert [orjson.loads(t)["n"] for t in writes[0].splitlines()] == [0, 1, 2]
        logs.line(logger, logging.INFO, "request", {"n": 3})
        logging.getLogger("leadline.proxy").warning("broker lost")  # writes the waiting line first
        events = [orjson.loads(t).get("n", t) for w in writes[1:] for t in w.splitlines()]
        assert events[0] == 3
    finally:
        root.handlers[:], root.level = saved
        logs._json_handler = None
        logging.getLogger("aiormq").setLevel(logging.NOTSET)
