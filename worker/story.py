"""The failure story a lead carries in its headers, and reading a delivered lead.

Pure: headers in, headers out. The attempt count is ours (H_ATTEMPTS), never
the broker's `x-death`, whose meaning changed between RabbitMQ 3.x and 4.x.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from leadline.message import (
    H_ATTEMPTS,
    H_CRM_STATUS,
    H_DEAD_AT,
    H_ERROR,
    H_ERROR_CLASS,
    H_FAILURE_KIND,
    H_FIRST_FAILURE_AT,
    H_LAST_FAILURE_AT,
)

ERROR_MAX_CHARS = 500
# Headers the broker writes when it dead-letters; ours is the story that counts,
# and a republished copy should not drag the broker's old bookkeeping along.
BROKER_DEATH_HEADERS = frozenset({
    "x-death", "x-first-death-reason", "x-first-death-queue", "x-first-death-exchange",
    "x-last-death-reason", "x-last-death-queue", "x-last-death-exchange", "x-delivery-count",
})

KIND_TEMPORARY = "temporary"
KIND_PERMANENT = "permanent"
KIND_POISON = "poison"


def text(value: object) -> str:
    """A header value as text (pamqp may hand back bytes for long strings)."""
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "replace")
    return "" if value is None else str(value)


def attempts_of(headers: Mapping[str, Any] | None) -> int:
    """Attempts already made; a missing or odd header counts as none."""
    value = (headers or {}).get(H_ATTEMPTS, 0)
    try:
        return max(0, int(text(value) if isinstance(value, bytes | bytearray) else value))
    except (TypeError, ValueError, OverflowError):  # junk, NaN, infinity
        return 0


def clean(headers: Mapping[str, Any] | None) -> dict[str, Any]:
    return {k: v for k, v in (headers or {}).items() if k not in BROKER_DEATH_HEADERS}


def failure_headers(
    headers: Mapping[str, Any] | None,
    *,
    attempts: int,
    kind: str,
    error_class: str,
    error: str,
    crm_status: int | None,
    now: str,
    dead: bool,
) -> dict[str, Any]:
    """The headers for a retry tier (`dead=False`) or the dead-letter queue."""
    out = clean(headers)
    out[H_ATTEMPTS] = attempts
    out.setdefault(H_FIRST_FAILURE_AT, now)
    out[H_LAST_FAILURE_AT] = now
    out[H_ERROR_CLASS] = error_class[:100]
    out[H_ERROR] = error[:ERROR_MAX_CHARS]
    if crm_status is None:
        out.pop(H_CRM_STATUS, None)
    else:
        out[H_CRM_STATUS] = crm_status
    out[H_FAILURE_KIND] = kind
    if dead:
        out[H_DEAD_AT] = now
    else:
        out.pop(H_DEAD_AT, None)
    return out
