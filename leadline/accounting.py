"""The pipeline's accounting, from the services' /metrics and the queue depths:

    accepted (proxy) = synced (worker) + retrying (work + retry tiers) + dead-lettered

Pure: Prometheus text and queue statistics in, numbers out. `./dev status`
prints it; the dead-letter console shows it on top of every page.
The counters start at zero when their process starts, so the balance holds
for a pipeline whose processes ran since its queues were empty.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from leadline.queuestats import QueueStat

ACCEPTED = "leadline_proxy_accepted_total"
SYNCED = "leadline_worker_synced_total"

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+([-+0-9.eEinfNa]+)")


def metric_sum(text: str, name: str) -> float | None:
    """The sum over all label sets of one metric in Prometheus text, None when absent."""
    total, seen = 0.0, False
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match and match.group(1) == name:
            total += float(match.group(3))
            seen = True
    return total if seen else None


@dataclass(frozen=True, slots=True)
class Accounting:
    accepted: float | None  # None: the proxy's metrics were unreachable
    synced: float | None  # None: the worker's metrics were unreachable
    retrying: int  # in the work queue and the retry tiers
    dead: int  # in the dead-letter queue
    consumers: int | None  # on the work queue; None when it does not exist
    paused: tuple[str, ...] = ()  # why the worker waits out a CRM outage, if it does

    @property
    def gap(self) -> float | None:
        """accepted - (synced + retrying + dead); 0 is balanced, None when unknown."""
        if self.accepted is None or self.synced is None:
            return None
        return self.accepted - (self.synced + self.retrying + self.dead)


def account(stats: Sequence[QueueStat], proxy_metrics: str | None, worker_metrics: str | None) -> Accounting:
    return Accounting(
        accepted=metric_sum(proxy_metrics, ACCEPTED) if proxy_metrics else None,
        synced=metric_sum(worker_metrics, SYNCED) if worker_metrics else None,
        retrying=sum(s.messages or 0 for s in stats if s.role in {"work", "retry"}),
        dead=sum(s.messages or 0 for s in stats if s.role == "dead"),
        consumers=next((s.consumers for s in stats if s.role == "work"), None),
        paused=tuple(paused_reasons(worker_metrics)) if worker_metrics else (),
    )


def paused_reasons(text: str) -> list[str]:
    """The reasons `leadline_crm_paused{reason=…}` is 1 for: why the worker waits out the CRM."""
    reasons = []
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match and match.group(1) == "leadline_crm_paused" and float(match.group(3)) == 1:
            label = re.search(r'reason="([^"]*)"', match.group(2) or "")
            reasons.append(label.group(1) if label else "?")
    return reasons
