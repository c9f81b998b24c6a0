"""Forming CRM calls: batch size, linger, one key at a time, concurrency, the rate limit."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from leadline.config import Rate
from worker.crm.base import Finding, Lead, Outcome, done
from worker.crm.ratelimit import WindowLimiter
from worker.dispatch import Dispatcher, take_batch


@dataclass(eq=False)
class Item:
    lead: Lead


def lead(sid: str, email: str = "") -> Item:
    return Item(Lead(sid, "lead", {"email": email or f"{sid}@example.com"}))


def by_email(lead: Lead) -> str:
    return str(lead.fields["email"])


def test_take_batch_takes_the_oldest_up_to_the_size() -> None:
    waiting = [lead(str(i)) for i in range(5)]
    assert take_batch(waiting, 3, set(), by_email) == [0, 1, 2]


def test_take_batch_never_puts_one_key_twice_nor_a_busy_key() -> None:
    waiting = [lead("a", "p@x"), lead("b", "p@x"), lead("c", "q@x"), lead("d", "r@x")]
    assert take_batch(waiting, 10, set(), by_email) == [0, 2, 3]
    assert take_batch(waiting, 10, {"q@x"}, by_email) == [0, 3]
    assert take_batch(waiting, 10, {"p@x", "q@x", "r@x"}, by_email) == []


class Recorder:
    """A connector that records its calls and answers done after `latency`."""

    name = "recorder"

    def __init__(self, max_batch: int, latency: float = 0.0, rate: Rate | None = None) -> None:
        self.max_batch = max_batch
        self.latency = latency
        self.calls: list[list[str]] = []
        self.active = 0
        self.most_active = 0
        self._limiter = WindowLimiter(rate)

    @property
    def limiter(self) -> WindowLimiter:
        return self._limiter

    def key(self, lead: Lead) -> str:
        return by_email(lead)

    async def write(self, leads: Sequence[Lead]) -> list[Outcome]:
        async with self._limiter.slot():
            self.active += 1
            self.most_active = max(self.most_active, self.active)
            self.calls.append([lead.submission_id for lead in leads])
            await asyncio.sleep(self.latency)
            self.active -= 1
        return [done()] * len(leads)

    async def probe(self) -> Outcome:
        return done()

    async def check(self) -> list[Finding]:
        return []

    async def setup(self) -> list[Finding]:
        return []

    async def close(self) -> None:
        return None


async def run(dispatcher: Dispatcher[Item], items: list[Item], settled: list[str],
              timeout: float = 5) -> None:
    dispatcher.start()
    for item in items:
        dispatcher.submit(item)
    await until(lambda: len(settled) == len(items), timeout)
    await dispatcher.stop()


async def until(check: Callable[[], bool], timeout: float) -> None:
    async with asyncio.timeout(timeout):
        while not check():  # noqa: ASYNC110 - polling what a callback fills in
            await asyncio.sleep(0.01)


def recording(settled: list[str]):  # type: ignore[no-untyped-def]
    async def on_outcomes(batch: list[Item], outcomes: list[Outcome], started: float) -> None:
        settled.extend(item.lead.submission_id for item in batch)
    return on_outcomes


async def test_a_burst_goes_out_in_full_batches() -> None:
    crm = Recorder(max_batch=10, latency=0.02)
    settled: list[str] = []
    dispatcher = Dispatcher(crm, crm.limiter, recording(settled), batch_size=10, linger=0.2, concurrency=1)
    await run(dispatcher, [lead(str(i)) for i in range(35)], settled)
    assert [len(c) for c in crm.calls] == [10, 10, 10, 5]
    assert sorted(settled) == sorted(str(i) for i in range(35))


async def test_a_lone_lead_waits_no_longer_than_the_linger() -> None:
    crm = Recorder(max_batch=100)
    settled: list[str] = []
    dispatcher = Dispatcher(crm, crm.limiter, recording(settled), batch_size=100, linger=0.05, concurrency=2)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await run(dispatcher, [lead("only")], settled)
    assert crm.calls == [["only"]]
    assert loop.time() - started < 1.0


async def test_no_linger_when_nothing_more_can_come() -> None:
    crm = Recorder(max_batch=100)
    settled: list[str] = []
    dispatcher = Dispatcher(crm, crm.limiter, recording(settled), batch_size=100, linger=30.0, concurrency=2,
                            more_may_come=lambda: False)
    await run(dispatcher, [lead("a"), lead("b")], settled, timeout=2)
    assert crm.calls == [["a", "b"]]


async def test_two_leads_of_one_person_are_written_one_after_the_other_in_order() -> None:
    crm = Recorder(max_batch=10, latency=0.05)
    settled: list[str] = []
    dispatcher = Dispatcher(crm, crm.limiter, recording(settled), batch_size=10, linger=0.0, concurrency=4)
    await run(dispatcher, [lead("first", "ada@x"), lead("other", "bob@x"), lead("second", "ada@x")], settled)
    firsts = [i for i, call in enumerate(crm.calls) if "first" in call]
    seconds = [i for i, call in enumerate(crm.calls) if "second" in call]
    assert firsts < seconds
    assert all(not ({"first", "second"} <= set(call)) for call in crm.calls)


async def test_calls_in_flight_never_exceed_the_concurrency() -> None:
    crm = Recorder(max_batch=1, latency=0.02)
    settled: list[str] = []
    dispatcher = Dispatcher(crm, crm.limiter, recording(settled), batch_size=1, linger=0.0, concurrency=3)
    await run(dispatcher, [lead(str(i)) for i in range(20)], settled)
    assert crm.most_active == 3
    assert len(crm.calls) == 20


async def test_under_a_binding_rate_limit_the_wait_fills_the_batches() -> None:
    # 2 calls per 0.3 s: 2 calls at once, then the limit; 60 leads in batches of 20 is 3 calls.
    crm = Recorder(max_batch=20, rate=Rate(2, 0.3))
    settled: list[str] = []
    dispatcher = Dispatcher(crm, crm.limiter, recording(settled), batch_size=20, linger=0.01, concurrency=4)
    dispatcher.start()
    for i in range(5):
        dispatcher.submit(lead(f"early{i}"))
    await asyncio.sleep(0.05)
    for i in range(55):
        dispatcher.submit(lead(f"late{i}"))
    await until(lambda: len(settled) == 60, 5)
    await dispatcher.stop()
    sizes = [len(c) for c in crm.calls]
    assert sum(sizes) == 60
    # the first call may go with the early few; once the window is full the rest wait and fill up
    assert len(sizes) <= 5
    assert max(sizes) == 20
