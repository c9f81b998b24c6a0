"""The rolling-window limiter: pure arithmetic first, then the async limiter on a fake clock."""

from __future__ import annotations

import asyncio
import math

import pytest

from leadline.config import Rate
from worker.crm.ratelimit import WindowLimiter, next_start


def test_free_window_starts_now() -> None:
    assert next_start(10.0, [], 0, 3, 10.0) == 10.0
    assert next_start(10.0, [1.0, 2.0], 0, 3, 10.0) == 10.0


def test_full_window_waits_for_the_oldest_finish_to_leave_it() -> None:
    assert next_start(10.0, [5.0, 6.0, 7.0], 0, 3, 10.0) == 15.0


def test_finishes_older_than_the_window_do_not_count() -> None:
    assert next_start(20.0, [5.0, 6.0, 15.0], 0, 2, 10.0) == 20.0


def test_calls_in_flight_count_and_may_fill_the_window_alone() -> None:
    assert next_start(10.0, [5.0], 1, 2, 10.0) == 15.0
    assert next_start(10.0, [5.0], 2, 2, 10.0) == math.inf


def test_a_hold_wins_over_a_free_window() -> None:
    assert next_start(10.0, [], 0, 3, 10.0, not_before=12.5) == 12.5


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_the_limit_is_never_exceeded_in_any_window_however_many_calls_wait() -> None:
    limiter = WindowLimiter(Rate(5, 0.2))
    loop = asyncio.get_running_loop()
    started: list[float] = []
    finished: list[float] = []

    async def call() -> None:
        async with limiter.slot():
            started.append(loop.time())
            await asyncio.sleep(0.01)
            finished.append(loop.time())

    await asyncio.gather(*(call() for _ in range(17)))
    starts = sorted(started)
    # at most 5 calls start within any 0.2 s after an earlier call finished
    for i in range(len(starts) - 5):
        assert starts[i + 5] - sorted(finished)[i] >= 0.2 - 1e-3
    assert limiter.calls == 17
    # the first window's calls go at once: the pace a compliant client can reach
    assert starts[4] - starts[0] < 0.05


def test_a_429_holds_for_its_retry_after_and_halves_the_ceiling_which_recovers() -> None:
    clock = Clock()
    limiter = WindowLimiter(Rate(100, 10.0), clock=clock)
    limiter.refused(3.0)
    assert limiter.held_for() == (3.0, "rate_limited")
    assert limiter.ceiling == 50
    limiter.refused(None)  # no Retry-After: a whole window
    assert limiter.held_for() == (10.0, "rate_limited")
    assert limiter.ceiling == 25
    for _ in range(10):
        limiter.refused(None)
    assert limiter.ceiling == 1  # never below one call per window
    clock.now = 10.5
    assert limiter.ceiling == 11  # a tenth of the rate back per clean window
    clock.now = 100.0
    assert limiter.ceiling == 100
    assert limiter.refusals == 12


def test_the_vendor_saying_its_window_is_spent_holds_until_its_reset() -> None:
    clock = Clock()
    limiter = WindowLimiter(Rate(100, 10.0), clock=clock)
    limiter.observe(remaining=40, reset_in=None)
    assert limiter.held_for() == (0.0, "")
    limiter.observe(remaining=0, reset_in=1.5)
    assert limiter.held_for() == (1.5, "vendor_window")
    assert limiter.wait_time() == pytest.approx(1.5)


def test_no_rate_means_no_wait_but_holds_still_apply() -> None:
    clock = Clock()
    limiter = WindowLimiter(None, clock=clock)
    assert limiter.wait_time() == 0.0
    limiter.refused(2.0)
    assert limiter.wait_time() == 2.0
