"""The pipeline's accounting, from the services' /metrics and the queue depths:

    accepted (proxy) = synced (worker) + retrying (work + retry tiers) + dead-lettered

in leads. A queue's depth counts messages, and one of group commit's batch
messages holds many leads: the leads inside the batch messages still queued
are those the proxy put in batches less those of the batches the worker
acked, and each such message counts once in the depth already.

Pure: Prometheus text and queue statistics in, numbers out. `./dev status`
prints it; the dead-letter console shows it on top of every page.
The counters start at zero when their process starts, so the balance holds
for a pipeline whose processes ran since its queues were empty. It holds
at rest: a batch the worker is settling counts whole until its ack.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from leadline.queuestats import QueueStat

ACCEPTED = "leadline_proxy_accepted_total"
SYNCED = "leadline_worker_synced_total"
# The proxy's confirmed messages (count) and the leads in them (sum), single leads included.
PUBLISHED_MESSAGES = "leadline_proxy_batch_size_count"
PUBLISHED_LEADS = "leadline_proxy_batch_size_sum"
ACKED_BATCHES = "leadline_worker_batch_messages_acked_total"
ACKED_BATCH_LEADS = "leadline_worker_batch_message_leads_acked_total"

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
    retrying: int  # leads in the work queue and the retry tiers
    dead: int  # in the dead-letter queue
    consumers: int | None  # on the work queue; None when it does not exist
    paused: tuple[str, ...] = ()  # why the worker waits out a CRM outage, if it does
    batched: int = 0  # of `retrying`, the leads beyond the first of each batch message queued

    @property
    def gap(self) -> float | None:
        """accepted - (synced + retrying + dead); 0 is balanced, None when unknown."""
        if self.accepted is None or self.synced is None:
            return None
        return self.accepted - (self.synced + self.retrying + self.dead)


def account(stats: Sequence[QueueStat], proxy_metrics: str | None, worker_metrics: str | None) -> Accounting:
    batched = batched_leads(proxy_metrics, worker_metrics)
    return Accounting(
        accepted=metric_sum(proxy_metrics, ACCEPTED) if proxy_metrics else None,
        synced=metric_sum(worker_metrics, SYNCED) if worker_metrics else None,
        retrying=sum(s.messages or 0 for s in stats if s.role in {"work", "retry"}) + batched,
        batched=batched,
        dead=sum(s.messages or 0 for s in stats if s.role == "dead"),
        consumers=next((s.consumers for s in stats if s.role == "work"), None),
        paused=tuple(paused_reasons(worker_metrics)) if worker_metrics else (),
    )


def batched_leads(proxy_metrics: str | None, worker_metrics: str | None) -> int:
    """Leads inside the batch messages still queued, beyond one per message (the depth has that).

    The proxy's batches hold (leads - messages) more leads than messages; the
    batches the worker acked took (leads - messages) of them out. 0 when either
    side's metrics are unknown, or before any batch.
    """
    if not proxy_metrics or not worker_metrics:
        return 0
    def beyond_one_a_message(text: str, leads: str, messages: str) -> float:
        return (metric_sum(text, leads) or 0) - (metric_sum(text, messages) or 0)

    published = beyond_one_a_message(proxy_metrics, PUBLISHED_LEADS, PUBLISHED_MESSAGES)
    acked = beyond_one_a_message(worker_metrics, ACKED_BATCH_LEADS, ACKED_BATCHES)
    return max(0, round(published - acked))


def paused_reasons(text: str) -> list[str]:
    """The reasons `leadline_crm_paused{reason=…}` is 1 for: why the worker waits out the CRM."""
    reasons = []
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match and match.group(1) == "leadline_crm_paused" and float(match.group(3)) == 1:
            label = re.search(r'reason="([^"]*)"', match.group(2) or "")
            reasons.append(label.group(1) if label else "?")
    return reasons
