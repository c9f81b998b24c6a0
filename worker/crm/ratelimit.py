"""The client-side limit on CRM calls: at most `count` calls in any `per_seconds` window.

A rolling window, not a token bucket: a bucket of 100 refilling at 10/s lets
200 calls into one 10-second window (100 at once, then 100 refilled), which
HubSpot's rolling limit refuses. A call holds its slot from the moment it
starts until `per_seconds` after it *finished*: the vendor counts a call when
it arrives, which is after we start it and before we hear the answer, so
stamping the finish keeps our window behind the vendor's whatever the network
delay. The fastest compliant pace follows: a window's worth of calls at once,
then the limit in every further window.

The vendor's own headers and refusals can only make us slower: few calls
remaining in its window -> wait until it resets; a 429 -> wait as long as it
asks and lower our own ceiling, which climbs back window by window.
One limiter per worker, shared by every call in flight (writes, lookups and
probes alike: the vendor counts them all).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar

from leadline.config import Rate

# Set by `expected()` in a call that `expect()` counted: its first slot is already counted.
_expected: ContextVar[list[bool] | None] = ContextVar("leadline_crm_expected", default=None)

# A 429 halves our ceiling (down to one call per window): the vendor's real
# limit may be far below the one configured (another app shares it). Every
# window without a 429 gives back a tenth of the configured rate.
RECOVERY_STEP = 0.1


def next_start(now: float, finished: Sequence[float], in_flight: int, count: int, window: float,
               not_before: float = 0.0) -> float:
    """When the next call may start; `math.inf` while calls in flight alone fill the window.

    `finished` holds the finish times of earlier calls, oldest first; those
    older than `now - window` no longer count. Pure.
    """
    start = bisect.bisect_right(finished, now - window)
    recent = len(finished) - start
    occupied = in_flight + recent
    if occupied < count:
        return max(now, not_before)
    # (occupied - count + 1) of the recent calls must leave the window first.
    must_leave = occupied - count + 1
    if must_leave > recent:
        return math.inf
    return max(finished[start + must_leave - 1] + window, not_before)


class WindowLimiter:
    """`async with limiter.slot():` around every call to the vendor."""

    def __init__(self, rate: Rate | None, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self._clock = clock
        self._finished: deque[float] = deque()
        self._in_flight = 0
        self._announced = 0  # calls formed and about to take a slot
        self._not_before = 0.0
        self._hold_reason = ""
        self._factor = 1.0
        self._last_refusal = -math.inf
        self._changed = asyncio.Condition()
        self.calls = 0
        self.refusals = 0  # 429s the vendor answered: the number to keep near zero
        self.slowdowns = 0  # times the vendor's headers said its window was spent

    @property
    def ceiling(self) -> int:
        """The calls per window we allow ourselves now (below the rate after a 429)."""
        if self.rate is None:
            return 0
        self._recover()
        return max(1, math.floor(self.rate.count * self._factor))

    def held_for(self) -> tuple[float, str]:
        """How long the vendor told us to wait from now, and why ("" when not held)."""
        wait = self._not_before - self._clock()
        return (wait, self._hold_reason) if wait > 0 else (0.0, "")

    def wait_time(self) -> float:
        """Seconds until a call could start now; `math.inf` until a call in flight ends."""
        now = self._clock()
        if self.rate is None:
            return max(0.0, self._not_before - now)
        self._trim(now)
        mine = _expected.get()
        others = self._announced - (1 if mine is not None and not mine[0] else 0)
        return next_start(now, self._finished, self._in_flight + others, self.ceiling,
                          self.rate.per_seconds, self._not_before) - now

    def expect(self) -> None:
        """A call was formed after `ready()`: count its first slot from now on.

        So that the next batch waits for the limiter (and fills up meanwhile)
        instead of being formed at once and then waiting half empty. The call
        runs inside `expected()`, which hands the count over to its first slot.
        """
        self._announced += 1

    @contextmanager
    def expected(self) -> Iterator[None]:
        """Around the call `expect()` counted; gives the count back if it never took a slot."""
        mine = [False]
        token = _expected.set(mine)
        try:
            yield
        finally:
            _expected.reset(token)
            if not mine[0]:
                self._announced -= 1

    async def ready(self) -> None:
        """Until a call could start (without taking the slot: for forming a fuller batch)."""
        async with self._changed:
            while (wait := self.wait_time()) > 0:
                await self._sleep_or_change(wait)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        async with self._changed:
            while (wait := self.wait_time()) > 0:
                await self._sleep_or_change(wait)
            self._in_flight += 1
            self.calls += 1
            mine = _expected.get()
            if mine is not None and not mine[0]:
                mine[0] = True
                self._announced -= 1
        try:
            yield
        finally:
            self._in_flight -= 1
            self._finished.append(self._clock())
            await self._notify()

    def hold(self, seconds: float, reason: str) -> None:
        """No call starts for `seconds` (a reset the vendor announced, a daily quota)."""
        until = self._clock() + max(0.0, seconds)
        if until > self._not_before:
            self._not_before = until
            self._hold_reason = reason

    def refused(self, retry_after: float | None) -> None:
        """The vendor answered 429: wait as asked (else a window) and lower the ceiling."""
        self.refusals += 1
        floor = 1 / self.rate.count if self.rate is not None else 1.0
        self._factor = max(floor, self._factor / 2)
        self._last_refusal = self._clock()
        window = self.rate.per_seconds if self.rate is not None else 1.0
        self.hold(retry_after if retry_after is not None else window, "rate_limited")

    def observe(self, remaining: int | None, reset_in: float | None) -> None:
        """The vendor's count of calls left in its window: slow down before it refuses.

        Calls already in flight will spend some of what remains, so a window
        with no more than that left is treated as spent.
        """
        if remaining is None or remaining > self._in_flight:
            return
        window = self.rate.per_seconds if self.rate is not None else 1.0
        self.slowdowns += 1
        self.hold(reset_in if reset_in is not None else window, "vendor_window")

    def _recover(self) -> None:
        if self._factor >= 1.0 or self.rate is None:
            return
        windows = int((self._clock() - self._last_refusal) / self.rate.per_seconds)
        if windows > 0:
            self._factor = min(1.0, self._factor + RECOVERY_STEP * windows)
            self._last_refusal += windows * self.rate.per_seconds

    def _trim(self, now: float) -> None:
        if self.rate is None:
            self._finished.clear()
            return
        horizon = now - self.rate.per_seconds
        while self._finished and self._finished[0] <= horizon:
            self._finished.popleft()

    async def _sleep_or_change(self, wait: float) -> None:
        # Inside the condition's lock: wait releases it while sleeping. A wait
        # for "a slot to free up" is re-checked each second, so that a change
        # made without a notification (an expected call that never took its
        # slot) cannot leave a waiter asleep.
        timeout = min(wait, 1.0)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), timeout)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()
