"""Prometheus metrics on their own registry, served by a tiny aiohttp app."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from leadline.queuestats import QueueGauges
from worker.crm.base import PAUSE_REASONS, Outcome, Verdict


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.queues = QueueGauges(r)
        self.synced = Counter("leadline_worker_synced", "Leads the CRM accepted", registry=r)
        self.retried = Counter("leadline_worker_retried", "Leads sent to a retry tier",
                               ["tier"], registry=r)
        self.dead_lettered = Counter("leadline_worker_dead_lettered", "Leads sent to the DLQ",
                                     ["reason"], registry=r)
        self.crm_seconds = Histogram(
            "leadline_worker_crm_seconds", "CRM call duration, by the call's worst outcome", ["outcome"],
            registry=r, buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.crm_leads = Counter("leadline_crm_leads", "Leads by the outcome of their CRM call "
                                 "(done, temporary, permanent, call_failed, rate_limited, outage)",
                                 ["outcome"], registry=r)
        self._crm_leads_by_verdict: dict[Verdict, Counter] = {}
        self._crm_seconds_by_verdict: dict[Verdict, Histogram] = {}
        self.crm_batch_size = Histogram(
            "leadline_crm_batch_size", "Leads per CRM call", registry=r,
            buckets=(1, 2, 5, 10, 20, 50, 100, 200))
        self.crm_rate_limited = Counter("leadline_crm_rate_limited", "CRM calls answered 429", registry=r)
        self.crm_probes = Counter("leadline_crm_probes", "Probes of a paused CRM, by result", ["result"],
                                  registry=r)
        self.crm_paused = Gauge(
            "leadline_crm_paused", "1 while the worker waits out a CRM outage, by reason (down, failing, "
            "credentials, quota, rate_limited, config)", ["reason"], registry=r)
        self.in_flight = Gauge("leadline_worker_in_flight", "Deliveries being handled", registry=r)
        self.batch_leads = Histogram(
            "leadline_worker_batch_leads", "Leads per batch message taken from the work queue (group commit)",
            registry=r, buckets=(2, 4, 8, 16, 32, 64, 128, 256))
        # With the proxy's leadline_proxy_batch_size, these tell how many leads wait inside
        # batch messages still in the work queue (`leadline.accounting`).
        self.batches_acked = Counter(
            "leadline_worker_batch_messages_acked", "Batch messages acked (every lead settled, or split)",
            registry=r)
        self.batch_leads_acked = Counter(
            "leadline_worker_batch_message_leads_acked", "Leads in the batch messages acked", registry=r)
        self.batches_split = Counter(
            "leadline_worker_batches_split", "Redelivered batch messages split into single-lead messages",
            registry=r)
        self.connected = Gauge("leadline_worker_broker_connected", "1 while connected", registry=r)
        self.broker_node = Gauge(
            "leadline_worker_broker_node",
            "1 for the RabbitMQ node (host:port) the worker is connected to, 0 for the others it knew",
            ["node"], registry=r)
        self._nodes: set[str] = set()
        self.republish_failures = Counter(
            "leadline_worker_republish_failures", "Retry/DLQ publishes not confirmed (left unacked)",
            registry=r)
        # `python -m worker dlq process`'s (worker/dlq_process.py): the worker exports them as 0.
        self.dlq = DlqMetrics(r)

    def set_broker_node(self, node: str | None) -> None:
        if node is not None:
            self._nodes.add(node)
        for known in self._nodes:
            self.broker_node.labels(known).set(1 if known == node else 0)

    def set_paused(self, reason: str | None) -> None:
        for known in PAUSE_REASONS:
            self.crm_paused.labels(known).set(1 if known == reason else 0)

    def observe_call(self, outcomes: list[Outcome], seconds: float) -> None:
        # Each labelled child is looked up once (on first use, so /metrics shows only
        # the outcomes seen): labels() costs more than the increment, for every lead.
        leads, calls = self._crm_leads_by_verdict, self._crm_seconds_by_verdict
        worst = Verdict.DONE
        for outcome in outcomes:
            verdict = outcome.verdict
            counter = leads.get(verdict)
            if counter is None:
                counter = leads[verdict] = self.crm_leads.labels(verdict.value)
            counter.inc()
            if _RANK[verdict] < _RANK[worst]:
                worst = verdict
        histogram = calls.get(worst)
        if histogram is None:
            histogram = calls[worst] = self.crm_seconds.labels(worst.value)
        histogram.observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)


# The outcome a call is filed under: the worst among its leads.
_SEVERITY = [Verdict.OUTAGE, Verdict.CALL_FAILED, Verdict.RATE_LIMITED, Verdict.PERMANENT, Verdict.TEMPORARY,
             Verdict.DONE]
_RANK = {verdict: rank for rank, verdict in enumerate(_SEVERITY)}


class DlqMetrics:
    """What a `dlq process` pass did. The processor keeps them on a registry of its own
    (its `--metrics-port`, its `--textfile`), so it never exports the worker's metrics."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = r = registry or CollectorRegistry(auto_describe=True)
        self.redriven = Counter("leadline_dlq_redriven", "Dead letters re-driven to the work queue",
                                registry=r)
        self.reported = Counter("leadline_dlq_reported", "Dead letters reported for a person",
                                ["kind"], registry=r)
        self.left = Counter(
            "leadline_dlq_left", "Dead letters a pass left in the DLQ: too_young, needs_person, "
            "not_confirmed (re-drive publish failed) or not_reached (pass stopped early)",
            ["why"], registry=r)
        self.expired = Counter("leadline_dlq_expired",
                               "Dead letters purged because they were older than --retain", registry=r)
        self.reports_deleted = Counter("leadline_dlq_reports_deleted",
                                       "Report files deleted because they were older than --retain",
                                       registry=r)
        self.permanent_waiting = Gauge(
            "leadline_dlq_permanent_waiting", "Dead letters waiting for a person, as of the last pass",
            registry=r)
        self.last_pass = Gauge("leadline_dlq_last_pass_timestamp_seconds",
                               "When the last dlq process pass finished (Unix time)", registry=r)
        self.last_pass_seconds = Gauge("leadline_dlq_last_pass_duration_seconds",
                                       "How long the last dlq process pass took", registry=r)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _Renders(Protocol):
    def render(self) -> bytes: ...


def metrics_app(metrics: _Renders, ready: Callable[[], bool]) -> web.Application:
    async def serve_metrics(_: web.Request) -> web.Response:
        response = web.Response(body=metrics.render())
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(_: web.Request) -> web.Response:
        ok = ready()
        return web.json_response({"status": "ready" if ok else "not ready"}, status=200 if ok else 503)

    app = web.Application()
    app.router.add_get("/metrics", serve_metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    return app

