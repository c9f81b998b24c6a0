"""Is it the lead or the CRM? The judgement behind "outages are not a lead's fault".

A call that failed as a whole (5xx, a timeout, a refused connection) says
nothing yet about its leads. It is the lead's failure (the retry tiers) when
the CRM answered another call that began after this one, or answers a probe
now, or answers most calls of late (a flaky CRM: the tiers are made for it).
It is an outage (pause, no attempt spent) when the probe fails too and most
recent calls failed, or when calls fail for lead after lead while probes
pass (a CRM whose reads work and whose writes do not); a few leads failing
again and again are those leads' own problem. Probes are coalesced: however
many calls fail together, one probe is in flight.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from worker.crm.base import REASON_DOWN, REASON_FAILING, Outcome, Verdict

# Calls failing as a whole for this many different leads in a row, with no
# answered call between, are an outage even while probes pass (30% random
# failures make ten in a row once in 170,000 calls).
FAILED_LEADS_TO_PAUSE = 10
# The recent calls and probes a "down" verdict looks at, and the share of them
# that must have failed: a CRM failing 30% of calls at random is flaky, not down.
RECENT = 20
DOWN_SHARE = 0.8


@dataclass(frozen=True, slots=True)
class Judgement:
    """`outage` None: the lead's own failure; otherwise the pause reason and the evidence."""

    outage: str | None
    evidence: Outcome | None = None


LEADS_FAULT = Judgement(None)


def mostly_failing(recent: Sequence[bool], share: float = DOWN_SHARE) -> bool:
    """Did at least `share` of the recent calls and probes (True: answered) fail? Pure."""
    return bool(recent) and recent.count(False) >= share * len(recent)


class CrmHealth:
    def __init__(self, probe: Callable[[], Awaitable[Outcome]], *,
                 clock: Callable[[], float] = time.monotonic,
                 failed_leads_to_pause: int = FAILED_LEADS_TO_PAUSE) -> None:
        self._probe = probe
        self._clock = clock
        self._threshold = failed_leads_to_pause
        self.last_answer = -1.0  # when the CRM last answered a call or a probe on its merits
        self.failing: set[str] = set()  # leads whose calls failed since the last answered call
        self.recent: deque[bool] = deque(maxlen=RECENT)  # calls and probes: answered or not
        self._probing: asyncio.Task[Outcome] | None = None
        self.probes = 0

    def record(self, leads: Sequence[str], outcomes: Sequence[Outcome]) -> None:
        """What a finished call (its leads' ids and outcomes) says about the CRM; before judging."""
        if any(o.answered or o.verdict is Verdict.RATE_LIMITED for o in outcomes):
            self.last_answer = self._clock()
            self.failing.clear()
            self.recent.append(True)
        elif any(o.verdict is Verdict.CALL_FAILED for o in outcomes):
            self.failing.update(lead for lead, o in zip(leads, outcomes, strict=True)
                                if o.verdict is Verdict.CALL_FAILED)
            self.recent.append(False)

    async def judge(self, started: float) -> Judgement:
        """A call begun at `started` failed as a whole: whose fault?"""
        if len(self.failing) >= self._threshold:
            return Judgement(REASON_FAILING)
        if self.last_answer > started:
            return LEADS_FAULT
        outcome = await self.probe()
        if outcome.verdict in {Verdict.DONE, Verdict.RATE_LIMITED}:
            return LEADS_FAULT
        if outcome.verdict is Verdict.OUTAGE:  # the probe itself says why (credentials, quota…)
            return Judgement(outcome.reason, outcome)
        if not mostly_failing(self.recent):
            return LEADS_FAULT  # flaky, not down: the tiers are made for this
        return Judgement(REASON_DOWN, outcome)

    async def probe(self) -> Outcome:
        """One probe at a time; callers arriving meanwhile share its answer."""
        if self._probing is None or self._probing.done():
            self._probing = asyncio.create_task(self._run_probe())
        return await asyncio.shield(self._probing)

    async def _run_probe(self) -> Outcome:
        self.probes += 1
        outcome = await self._probe()
        answered = outcome.verdict in {Verdict.DONE, Verdict.RATE_LIMITED}
        if answered:
            self.last_answer = self._clock()
        self.recent.append(answered)
        return outcome
