"""Is it the lead or the CRM? The judgement behind "outages are not a lead's fault".

A call that failed as a whole (5xx, a timeout, a refused connection) says
nothing yet about its leads. It is the lead's failure (the retry tiers) when
the CRM answered another call that began after this one, or answers a probe
now; it is an outage (pause, no attempt spent) when the probe fails too, or
when calls fail for lead after lead while probes pass (a CRM whose reads work
and whose writes do not); a few leads failing again and again are those
leads' own problem. Probes are coalesced: however many calls fail together, one
probe is in flight.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from worker.crm.base import REASON_DOWN, REASON_FAILING, Outcome, Verdict

# Calls failing as a whole for this many different leads in a row, with no
# answered call between, are an outage even while probes pass (30% random
# failures make ten in a row once in 170,000 calls).
FAILED_LEADS_TO_PAUSE = 10


@dataclass(frozen=True, slots=True)
class Judgement:
    """`outage` None: the lead's own failure; otherwise the pause reason and the evidence."""

    outage: str | None
    evidence: Outcome | None = None


LEADS_FAULT = Judgement(None)


class CrmHealth:
    def __init__(self, probe: Callable[[], Awaitable[Outcome]], *,
                 clock: Callable[[], float] = time.monotonic,
                 failed_leads_to_pause: int = FAILED_LEADS_TO_PAUSE) -> None:
        self._probe = probe
        self._clock = clock
        self._threshold = failed_leads_to_pause
        self.last_answer = -1.0  # when the CRM last answered a call or a probe on its merits
        self.failing: set[str] = set()  # leads whose calls failed since the last answered call
        self._probing: asyncio.Task[Outcome] | None = None
        self.probes = 0

    def record(self, leads: Sequence[str], outcomes: Sequence[Outcome]) -> None:
        """What a finished call (its leads' ids and outcomes) says about the CRM; before judging."""
        if any(o.answered or o.verdict is Verdict.RATE_LIMITED for o in outcomes):
            self.last_answer = self._clock()
            self.failing.clear()
        else:
            self.failing.update(lead for lead, o in zip(leads, outcomes, strict=True)
                                if o.verdict is Verdict.CALL_FAILED)

    async def judge(self, started: float) -> Judgement:
        """A call begun at `started` failed as a whole: whose fault?"""
        if self.last_answer > started:
            return LEADS_FAULT
        if len(self.failing) >= self._threshold:
            return Judgement(REASON_FAILING)
        outcome = await self.probe()
        if outcome.verdict in {Verdict.DONE, Verdict.RATE_LIMITED}:
            return LEADS_FAULT
        return Judgement(outcome.reason if outcome.verdict is Verdict.OUTAGE else REASON_DOWN, outcome)

    async def probe(self) -> Outcome:
        """One probe at a time; callers arriving meanwhile share its answer."""
        if self._probing is None or self._probing.done():
            self._probing = asyncio.create_task(self._run_probe())
        return await asyncio.shield(self._probing)

    async def _run_probe(self) -> Outcome:
        self.probes += 1
        outcome = await self._probe()
        if outcome.verdict in {Verdict.DONE, Verdict.RATE_LIMITED}:
            self.last_answer = self._clock()
        return outcome
