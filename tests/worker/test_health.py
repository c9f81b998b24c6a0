"""Whose fault is a failed call: the lead's (the tiers) or the CRM's (a pause)?"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

from worker.crm.base import Outcome, call_failed, done, outage, refused
from worker.health import CrmHealth, mostly_failing

FAILED = call_failed(503, "HTTP503", "unavailable")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def scripted(*answers: Outcome) -> tuple[list[int], object]:
    calls: list[int] = []
    queue: Iterator[Outcome] = iter(answers)

    async def probe() -> Outcome:
        calls.append(1)
        await asyncio.sleep(0.01)
        return next(queue)

    return calls, probe


def test_mostly_failing_wants_four_in_five_of_the_recent_calls_failed() -> None:
    assert mostly_failing([False, False])
    assert mostly_failing([False] * 8 + [True] * 2)
    assert not mostly_failing([False] * 7 + [True] * 3)
    assert not mostly_failing([])


async def test_a_call_failing_after_the_crm_answered_a_later_call_is_the_leads_fault() -> None:
    clock = Clock()
    probes, probe = scripted()
    health = CrmHealth(probe, clock=clock)  # type: ignore[arg-type]
    started = clock.now
    clock.now += 1
    health.record(["other"], [done()])
    assert (await health.judge(started)).outage is None
    assert probes == []  # no probe needed


async def test_a_crm_that_fails_the_probe_too_and_most_calls_is_down() -> None:
    clock = Clock()
    _, probe = scripted(call_failed(None, "ClientConnectorError", "refused"))
    health = CrmHealth(probe, clock=clock)  # type: ignore[arg-type]
    health.record(["a"], [FAILED])
    judgement = await health.judge(clock.now - 1)
    assert judgement.outage == "down"
    assert judgement.evidence is not None
    assert judgement.evidence.error_class == "ClientConnectorError"


async def test_a_flaky_crm_failing_a_probe_now_and_then_is_not_down() -> None:
    clock = Clock()
    _, probe = scripted(FAILED)
    health = CrmHealth(probe, clock=clock)  # type: ignore[arg-type]
    for i in range(14):  # 30% of calls fail at random: mostly answered
        health.record([f"l{i}"], [FAILED if i % 3 == 0 else done()])
    clock.now += 1
    health.record(["x"], [FAILED])
    assert (await health.judge(clock.now)).outage is None


async def test_a_probe_that_names_the_credentials_pauses_for_that_reason() -> None:
    _, probe = scripted(outage("credentials", 401, "HTTP401", "token revoked"))
    health = CrmHealth(probe)  # type: ignore[arg-type]
    health.record(["a"], [FAILED])
    assert (await health.judge(0.0)).outage == "credentials"


async def test_a_probe_that_answers_makes_the_failure_the_leads() -> None:
    _, probe = scripted(done())
    health = CrmHealth(probe)  # type: ignore[arg-type]
    health.record(["a"], [FAILED])
    assert (await health.judge(0.0)).outage is None


async def test_many_calls_failing_at_once_share_one_probe() -> None:
    probes, probe = scripted(FAILED)
    health = CrmHealth(probe)  # type: ignore[arg-type]
    health.record(["a"], [FAILED])
    judgements = await asyncio.gather(*(health.judge(0.0) for _ in range(30)))
    assert {j.outage for j in judgements} == {"down"}
    assert len(probes) == 1


async def test_writes_failing_for_ten_different_leads_while_probes_pass_are_an_outage() -> None:
    _, probe = scripted(*[done()] * 20)
    health = CrmHealth(probe)  # type: ignore[arg-type]
    for i in range(9):
        health.record([f"lead{i}"], [FAILED])
        assert (await health.judge(0.0)).outage is None
    health.record(["lead9"], [FAILED])
    assert (await health.judge(0.0)).outage == "failing"


async def test_a_few_leads_failing_again_and_again_stay_their_own_problem() -> None:
    _, probe = scripted(*[done()] * 40)
    health = CrmHealth(probe)  # type: ignore[arg-type]
    for _ in range(10):
        for lead in ("a", "b", "c"):
            health.record([lead], [FAILED])
            assert (await health.judge(0.0)).outage is None


async def test_an_answered_call_clears_the_streak() -> None:
    _, probe = scripted(*[done()] * 20)
    health = CrmHealth(probe)  # type: ignore[arg-type]
    for i in range(9):
        health.record([f"lead{i}"], [FAILED])
    health.record(["ok"], [refused(422, "HTTP422", "bad data")])  # answered on its merits
    health.record(["lead9"], [FAILED])
    assert (await health.judge(0.0)).outage is None
