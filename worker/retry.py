"""Which way a failed lead goes next: a retry tier (and which) or the dead-letter queue.

Pure functions; the consumer only carries out what they decide.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


def choose_delay(delays: Sequence[float], attempt: int, minimum: float | None = None) -> float:
    """The wait before attempt `attempt + 1`, after attempt `attempt` (1-based) failed.

    `delays[0]` is the wait before attempt 2, the last delay repeats. A minimum
    (the CRM's `Retry-After`) picks the shortest configured tier at least that
    long, or the longest tier when none is: tiers are the only delays that exist.
    """
    if not delays:
        raise ValueError("at least one retry delay is needed")
    if attempt < 1:
        raise ValueError(f"attempt counts from 1, got {attempt}")
    delay = delays[min(attempt - 1, len(delays) - 1)]
    if minimum is None or minimum <= delay:
        return delay
    longer = [d for d in delays if d >= minimum]
    return min(longer) if longer else max(delays)


@dataclass(frozen=True, slots=True)
class Retry:
    delay: float


@dataclass(frozen=True, slots=True)
class GiveUp:
    """Attempts used up: dead-letter with the story."""


def after_temporary_failure(
    attempt: int, max_attempts: int, delays: Sequence[float], minimum: float | None = None
) -> Retry | GiveUp:
    if attempt >= max_attempts:
        return GiveUp()
    return Retry(choose_delay(delays, attempt, minimum))
