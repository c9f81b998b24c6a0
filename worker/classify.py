"""What a CRM answer means for the lead: done, try again later, or never.

Pure: the table in tests/worker/test_classify.py is the specification.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

# Statuses that say "not now" rather than "not ever".
TEMPORARY_4XX = frozenset({408, 425, 429})


class Verdict(enum.Enum):
    DONE = "done"
    TEMPORARY = "temporary"
    PERMANENT = "permanent"


@dataclass(frozen=True, slots=True)
class CrmResult:
    """One CRM call's outcome: an HTTP status, or the error that stopped the call."""

    status: int | None = None
    error_class: str = ""  # set when there is no status: "TimeoutError", "ClientConnectorError"...
    error: str = ""  # a short description, for the dead letter's story
    retry_after: str | None = None  # the raw Retry-After header, if any
    seconds: float = 0.0  # how long the call took

    @property
    def summary(self) -> str:
        if self.status is None:
            return f"{self.error_class}: {self.error}" if self.error else self.error_class
        return f"HTTP {self.status}" + (f": {self.error}" if self.error else "")


def classify(result: CrmResult) -> Verdict:
    status = result.status
    if status is None:  # connection refused, reset, timed out: the CRM may be back soon
        return Verdict.TEMPORARY
    if 200 <= status < 300:
        return Verdict.DONE
    if status in TEMPORARY_4XX or status >= 500:
        return Verdict.TEMPORARY
    # Other 4xx (and the odd 1xx/3xx a webhook should never send): retrying changes nothing.
    return Verdict.PERMANENT


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """`Retry-After` as seconds from now: delta-seconds or an HTTP date; None if absent or junk."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():  # "²".isdigit() is true, float("²") fails
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
