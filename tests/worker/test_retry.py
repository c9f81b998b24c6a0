"""The decisions in the middle: Retry-After, retry tier, give up."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from worker.crm.http import retry_after_seconds
from worker.retry import GiveUp, Retry, after_temporary_failure, choose_delay

NOW = datetime(2025, 1, 6, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(("header", "seconds"), [
    (None, None),
    ("", None),
    ("120", 120.0),
    (" 5 ", 5.0),
    ("Mon, 06 Jan 2025 12:01:30 GMT", 90.0),
    ("Mon, 06 Jan 2025 11:00:00 GMT", 0.0),  # in the past: no minimum left
    ("soon", None),
    ("-3", None),
])
def test_retry_after_is_read_as_seconds_or_http_date(header: str | None, seconds: float | None) -> None:
    assert retry_after_seconds(header, now=NOW) == seconds


DELAYS = (5.0, 30.0, 120.0, 600.0, 3600.0)


@pytest.mark.parametrize(("attempt", "minimum", "delay"), [
    (1, None, 5.0),  # attempt 1 failed: wait before attempt 2
    (2, None, 30.0),
    (5, None, 3600.0),
    (6, None, 3600.0),  # the last delay repeats
    (40, None, 3600.0),
    (1, 3.0, 5.0),  # Retry-After shorter than the tier: the tier wins
    (1, 5.0, 5.0),
    (1, 6.0, 30.0),  # the shortest tier at least as long as Retry-After
    (1, 200.0, 600.0),
    (2, 31.0, 120.0),
    (1, 99_999.0, 3600.0),  # longer than every tier: the longest
])
def test_retry_tier_is_the_scheduled_delay_or_the_first_tier_covering_retry_after(
    attempt: int, minimum: float | None, delay: float
) -> None:
    assert choose_delay(DELAYS, attempt, minimum) == delay


def test_choose_delay_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="at least one"):
        choose_delay((), 1)
    with pytest.raises(ValueError, match="from 1"):
        choose_delay(DELAYS, 0)


@pytest.mark.parametrize(("attempt", "max_attempts", "decision"), [
    (1, 8, Retry(5.0)),
    (7, 8, Retry(3600.0)),
    (8, 8, GiveUp()),
    (9, 8, GiveUp()),
    (1, 1, GiveUp()),
])
def test_temporary_failure_retries_until_max_attempts_then_gives_up(
    attempt: int, max_attempts: int, decision: Retry | GiveUp
) -> None:
    assert after_temporary_failure(attempt, max_attempts, DELAYS) == decision


def test_retry_after_with_non_ascii_digits_is_junk_not_a_crash() -> None:
    assert retry_after_seconds("²") is None
    assert retry_after_seconds("١٢") is None
