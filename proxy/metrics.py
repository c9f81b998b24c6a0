"""The proxy's Prometheus metrics, in a registry of the app's own.

A registry per app (not the process-global one) lets tests build many apps
in one process without "duplicated timeseries" errors.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

CONTENT_TYPE = CONTENT_TYPE_LATEST

# Publish-to-confirm takes about a millisecond on a quiet broker; the upper
# buckets show a broker under pressure, up to the publish timeout.
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


# Set (by `python -m proxy` with several workers, or by the operator) when the
# proxy's processes share their metrics: each writes its values to files there,
# and any of them answers /metrics with the sum over all (prometheus_client's
# multiprocess mode), so a scrape that lands on any process sees the proxy's.
MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROCESS_DIR) or None


def share_between_processes() -> None:
    """In a forked worker, before its metrics exist: values go to the shared files."""
    values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]  # prometheus_client


def forget_process(pid: int) -> None:
    """A worker that died: its live gauges (connected, node, blocked) no longer count."""
    path = multiprocess_dir()
    if path is not None:
        multiprocess.mark_process_dead(pid, path)  # type: ignore[no-untyped-call]


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.accepted = Counter(
            "leadline_proxy_accepted", "Submissions confirmed by the broker (answered 202/303).",
            ["form"], registry=self.registry)
        self.refused = Counter(
            "leadline_proxy_refused", "Submissions not queued, by reason.",
            ["reason"], registry=self.registry)
        self.stamps = Counter(
            "leadline_proxy_stamps", "Spam stamps checked, by verdict (valid, missing, invalid); "
            "none while SPAM_STAMP=off.", ["verdict"], registry=self.registry)
        self.publish_seconds = Histogram(
            "leadline_proxy_publish_seconds", "Publish until the broker's confirm, in seconds.",
            buckets=_LATENCY_BUCKETS, registry=self.registry)
        self.batch_size = Histogram(
            "leadline_proxy_batch_size", "Leads per confirmed broker message (group commit).",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256), registry=self.registry)
        # Across processes: the least (0 when one of them lost the broker).
        self.broker_connected = Gauge(
            "leadline_proxy_broker_connected", "1 while the proxy holds a broker connection.",
            registry=self.registry, multiprocess_mode="livemin")
        self.broker_connects = Counter(
            "leadline_proxy_broker_connects", "Broker connections made (reconnects included).",
            registry=self.registry)
        # A label of its own metric, not of broker_connected: min(broker_connected)
        # is what the "proxy without broker" alert watches, one series per proxy.
        self.broker_node = Gauge(
            "leadline_proxy_broker_node",
            "1 for the RabbitMQ node (host:port) the proxy is connected to, 0 for the others in AMQP_URL.",
            ["node"], registry=self.registry, multiprocess_mode="livemax")
        self.broker_blocked = Gauge(
            "leadline_proxy_broker_blocked",
            "1 while RabbitMQ blocks the proxy's publishing (a memory or disk alarm).",
            registry=self.registry, multiprocess_mode="livemax")
        self._blocked: Callable[[], bool] = lambda: False

        # labels() takes a lock and a dict lookup per call; the children are few.
        self._accepted: dict[str, Counter] = {}
        self._refused: dict[str, Counter] = {}
        self._stamps: dict[str, Counter] = {}
        self._nodes: set[str] = set()

    def accept(self, form: str) -> None:
        child = self._accepted.get(form)
        if child is None:
            child = self._accepted[form] = self.accepted.labels(form)
        child.inc()

    def refuse(self, reason: str) -> None:
        child = self._refused.get(reason)
        if child is None:
            child = self._refused[reason] = self.refused.labels(reason)
        child.inc()

    def stamp(self, verdict: str) -> None:
        child = self._stamps.get(verdict)
        if child is None:
            child = self._stamps[verdict] = self.stamps.labels(verdict)
        child.inc()

    def set_broker_state(self, connected: bool) -> None:
        self.broker_connected.set(1 if connected else 0)
        if connected:
            self.broker_connects.inc()

    def set_broker_nodes(self, nodes: Iterable[str]) -> None:
        """Every node the proxy may use, at 0 until it connects to one."""
        self._nodes.update(nodes)
        self.set_broker_node(None)

    def set_broker_node(self, node: str | None) -> None:
        """The node connected to now (None: none)."""
        if node is not None:
            self._nodes.add(node)
        for known in self._nodes:
            self.broker_node.labels(known).set(1 if known == node else 0)

    def watch_blocked(self, blocked: Callable[[], bool]) -> None:
        """Read `blocked` at every scrape (and, shared between processes, every second)."""
        self._blocked = blocked

    def refresh(self) -> None:
        self.broker_blocked.set(1 if self._blocked() else 0)

    def render(self) -> bytes:
        self.refresh()
        path = multiprocess_dir()
        if path is None:
            return generate_latest(self.registry)
        merged = CollectorRegistry()
        multiprocess.MultiProcessCollector(merged, path)  # type: ignore[no-untyped-call]
        return generate_latest(merged)
