"""What the console shows of the dead letters: groups, masked data, the hourly chart. Pure."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import orjson

from leadline.logs import mask_email, trace_id
from leadline.message import H_TRACEPARENT
from worker import story
from worker.dlq import DeadLetter
from worker.dlq_process import parse_time, report_reason

# Enough of an address to mask it wherever it appears in a visitor's text.
_ADDRESS = re.compile(r"[^\s@<>\"',;:()\[\]]+@[^\s@<>\"',;:()\[\]]+")


def reason_of(letter: DeadLetter) -> str:
    """The group a letter belongs to, in words (the same words as `dlq process` reports)."""
    if letter.kind == story.KIND_TEMPORARY:
        return f"CRM unavailable until the attempts ran out ({letter.error_class or 'no error recorded'})"
    return report_reason(letter)


@dataclass(frozen=True, slots=True)
class Group:
    reason: str
    kind: str
    letters: tuple[DeadLetter, ...]

    @property
    def count(self) -> int:
        return len(self.letters)


def grouped(letters: Iterable[DeadLetter]) -> list[Group]:
    """Letters by reason, the biggest group first; queue order within a group."""
    groups: dict[str, list[DeadLetter]] = {}
    for letter in letters:
        groups.setdefault(reason_of(letter), []).append(letter)
    return [Group(reason, found[0].kind, tuple(found))
            for reason, found in sorted(groups.items(), key=lambda item: (-len(item[1]), item[0]))]


def mask_text(text: str) -> str:
    """Every e-mail address in `text` as `a***@example.com`."""
    return _ADDRESS.sub(lambda match: mask_email(match.group(0)), text)


@dataclass(frozen=True, slots=True)
class LeadData:
    fields: tuple[tuple[str, str], ...]  # (name, value as text), empty for a body that is not fields
    raw: str | None  # the body as text when it is not a JSON object
    masked: bool  # True when some value was masked


def lead_data(letter: DeadLetter, *, reveal: bool) -> LeadData:
    """What the visitor sent; addresses masked unless `reveal`."""
    try:
        lead: object = orjson.loads(letter.body)
    except orjson.JSONDecodeError:
        lead = None
    if not isinstance(lead, dict):
        raw = letter.body.decode("utf-8", "replace")
        shown = raw if reveal else mask_text(raw)
        return LeadData((), shown, shown != raw)
    fields = []
    masked = False
    for name, value in lead.items():
        text = value if isinstance(value, str) else orjson.dumps(value).decode()
        shown = text if reveal else mask_text(text)
        masked = masked or shown != text
        fields.append((str(name), shown))
    return LeadData(tuple(fields), None, masked)


def trace_of(letter: DeadLetter) -> str | None:
    """The trace id the lead carries, to look it up in the tracing backend."""
    return trace_id(story.text(letter.headers.get(H_TRACEPARENT)) or None)


# -- dead letters per hour -------------------------------------------------------------

BAR_WIDTH = 18
BAR_GAP = 4
PLOT_HEIGHT = 90
TOP = 14


@dataclass(frozen=True, slots=True)
class Bar:
    x: int
    y: int
    width: int
    height: int
    count: int
    label: str  # "2025-01-06 12:00 UTC"
    tick: str  # "12:00" under every sixth bar, else ""


@dataclass(frozen=True, slots=True)
class Chart:
    bars: tuple[Bar, ...]
    width: int
    height: int
    peak: int
    older: int  # dead before the chart's first hour
    unknown: int  # no time recorded


def hourly(letters: Sequence[DeadLetter], now: datetime, hours: int = 24) -> Chart:
    """Bars of the letters by the hour they died (else last failed), the last `hours` hours."""
    end = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    start = end - timedelta(hours=hours)
    counts = [0] * hours
    older = unknown = 0
    for letter in letters:
        when = parse_time(letter.dead_at) or parse_time(letter.failed_at)
        if when is None:
            unknown += 1
        elif when < start:
            older += 1
        elif when < end:
            counts[int((when - start).total_seconds() // 3600)] += 1
    peak = max(counts, default=0)
    bars = []
    for i, count in enumerate(counts):
        hour = start + timedelta(hours=i)
        height = round(count / peak * PLOT_HEIGHT) if peak else 0
        height = max(height, 2) if count else 0
        bars.append(Bar(x=i * (BAR_WIDTH + BAR_GAP), y=TOP + PLOT_HEIGHT - height, width=BAR_WIDTH,
                        height=height, count=count, label=hour.strftime("%Y-%m-%d %H:00 UTC"),
                        tick=hour.strftime("%H:00") if i % 6 == 0 else ""))
    return Chart(tuple(bars), width=hours * (BAR_WIDTH + BAR_GAP), height=TOP + PLOT_HEIGHT + 18,
                 peak=peak, older=older, unknown=unknown)
