"""Leads into CRM calls: batches of up to CRM_BATCH_SIZE, within the rate limit, CRM_CONCURRENCY at once.

Leads wait in one queue in arrival order. A call starts when a call slot is
free and the rate limiter would let it start; while fewer leads than a batch
are waiting and more may still come, it lingers until no lead arrived for
CRM_BATCH_LINGER (under a binding rate limit the wait for the limiter fills
the batch on its own). Two leads with one `key` (one person in
HubSpot, one submission anywhere) never share a call nor run in two calls at
once: the later waits, so that the CRM sees them in order.

The dispatcher only forms calls and hands each call's outcomes to the
worker, which settles every lead (ack, retry tier, dead letter, pause).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from worker.crm.base import Connector, Lead, Outcome, call_failed
from worker.crm.http import CALL_SPANS
from worker.crm.ratelimit import WindowLimiter

log = logging.getLogger("leadline.worker")

# A batch lingers for company at most this many CRM_BATCH_LINGERs in all.
LINGER_CAP = 10


class HasLead(Protocol):
    @property
    def lead(self) -> Lead: ...


T = TypeVar("T", bound=HasLead)


def take_batch(waiting: Sequence[T], size: int, busy: Collection[str],
               key: Callable[[Lead], str]) -> list[int]:
    """Indexes of the next call's leads: the oldest first, no key twice, no key that is busy. Pure."""
    chosen: list[int] = []
    keys: set[str] = set()
    for index, item in enumerate(waiting):
        k = key(item.lead)
        if k in keys or k in busy:
            continue
        chosen.append(index)
        keys.add(k)
        if len(chosen) == size:
            break
    return chosen


@dataclass(eq=False)
class Waiting(Generic[T]):
    item: T
    since: float = field(default_factory=time.monotonic)

    @property
    def lead(self) -> Lead:
        return self.item.lead


OnOutcomes = Callable[[list[T], list[Outcome], float], Awaitable[None]]


class Dispatcher(Generic[T]):
    def __init__(self, connector: Connector, limiter: WindowLimiter, on_outcomes: OnOutcomes[T], *,
                 batch_size: int, linger: float, concurrency: int,
                 more_may_come: Callable[[], bool] = lambda: True) -> None:
        self.connector = connector
        self.limiter = limiter
        self._on_outcomes = on_outcomes
        self.batch_size = min(batch_size, connector.max_batch)
        self.linger = linger
        self.concurrency = concurrency
        self._more_may_come = more_may_come
        self._waiting: deque[Waiting[T]] = deque()
        self._busy: Counter[str] = Counter()
        self._calls: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._paused = False
        self._task: asyncio.Task[None] | None = None
        self.batch_sizes: Callable[[int], None] = lambda n: None  # metrics hook
        # The leads' spans, for the CLIENT spans of the call's HTTP requests (tracing hook).
        self.call_spans: Callable[[list[T]], Sequence[Any]] = lambda batch: ()

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    @property
    def calls_in_flight(self) -> int:
        return len(self._calls)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="crm-dispatch")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def wait_calls(self, timeout: float | None = None) -> bool:
        """Until the calls in flight (and their settling) are over; False on timeout."""
        if not self._calls:
            return True
        _, pending = await asyncio.wait(set(self._calls), timeout=timeout)
        return not pending

    def cancel_calls(self) -> None:
        for call in self._calls:
            call.cancel()

    def submit(self, item: T) -> None:
        self._waiting.append(Waiting(item))
        self._wake.set()

    def put_back(self, items: Sequence[T]) -> None:
        """Leads whose call was refused for now (429): first in line again, in their order."""
        self._waiting.extendleft(Waiting(item) for item in reversed(items))
        self._wake.set()

    def discard(self, stale: Callable[[T], bool]) -> list[T]:
        """Take out the waiting leads `stale` picks (their delivery's channel is gone)."""
        gone = [w.item for w in self._waiting if stale(w.item)]
        if gone:
            self._waiting = deque(w for w in self._waiting if not stale(w.item))
        return gone

    def pause(self) -> list[T]:
        """Form no more calls; the waiting leads, to hand back."""
        self._paused = True
        taken = [w.item for w in self._waiting]
        self._waiting.clear()
        return taken

    def resume(self) -> None:
        self._paused = False
        self._wake.set()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while not self._paused and self._waiting and len(self._calls) < self.concurrency:
                await self.limiter.ready()
                await self._linger()
                if self._paused or not self._waiting:
                    break
                indexes = take_batch(self._waiting, self.batch_size, self._busy, self.connector.key)
                if not indexes:
                    break  # every waiting key is busy: a call's end wakes us
                batch = self._take(indexes)
                self.limiter.expect()
                call = asyncio.create_task(self._call(batch), name="crm-call")
                self._calls.add(call)
                call.add_done_callback(self._call_done)

    def _take(self, indexes: list[int]) -> list[T]:
        if indexes[-1] == len(indexes) - 1:  # the oldest ones, the common case: no rebuild
            return [self._waiting.popleft().item for _ in indexes]
        chosen = set(indexes)
        batch = [self._waiting[i].item for i in indexes]
        self._waiting = deque(w for i, w in enumerate(self._waiting) if i not in chosen)
        return batch

    async def _linger(self) -> None:
        """While fewer than a batch wait and more may come: until none came for `linger`.

        Quiet for `linger` ends it, so a lone lead waits that long at most; while
        leads keep arriving (a worker filling its prefetch, a burst) the batch
        fills up, up to LINGER_CAP lingers: under a rate limit, a call spent on
        a half batch is a call the window does not give back.
        """
        if self.linger <= 0 or self.batch_size <= 1 or not self._waiting:
            return
        cap = self._waiting[0].since + LINGER_CAP * self.linger
        while len(self._waiting) < self.batch_size and self._more_may_come() and not self._paused:
            now = time.monotonic()
            left = min(self._waiting[-1].since + self.linger, cap) - now
            if left <= 0:
                break
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), left)
        self._wake.set()  # whatever woke us may matter to the outer loop too

    def _call_done(self, call: asyncio.Task[None]) -> None:
        self._calls.discard(call)
        self._wake.set()

    def _release(self, keys: list[str]) -> None:
        busy = self._busy
        for key in keys:
            left = busy[key] - 1
            if left > 0:
                busy[key] = left
            else:
                del busy[key]  # the busy set stays as small as the calls in flight

    async def _call(self, batch: list[T]) -> None:
        leads = [item.lead for item in batch]
        keys = [self.connector.key(lead) for lead in leads]
        self._busy.update(keys)
        self.batch_sizes(len(batch))
        started = time.monotonic()
        spans = CALL_SPANS.set(self.call_spans(batch))
        try:
            with self.limiter.expected():
                outcomes = await self.connector.write(leads)
            if len(outcomes) != len(leads):
                raise RuntimeError(f"{self.connector.name} answered {len(outcomes)} outcomes for "
                                   f"{len(leads)} leads")
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # A bug in a connector: the leads take the failed-call path, never a lost ack.
            log.exception("CRM connector failed", extra={"crm": self.connector.name})
            outcomes = [call_failed(None, type(exc).__name__, str(exc))] * len(leads)
        finally:
            CALL_SPANS.reset(spans)
            self._release(keys)
        await self._on_outcomes(batch, outcomes, started)
