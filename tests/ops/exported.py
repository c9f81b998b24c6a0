"""Every metric name the services export, from their real registries.

The dashboard and the alert rules may query only these. A new set of metrics
on a registry of its own (say, CRM-connector metrics in a class of their own)
is one more line in EXPORTERS; metrics added to one of these registries need
no edit at all.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from prometheus_client import CollectorRegistry

from proxy.metrics import Metrics as ProxyMetrics
from worker.metrics import DlqMetrics
from worker.metrics import Metrics as WorkerMetrics

EXPORTERS: dict[str, Callable[[], CollectorRegistry]] = {
    "proxy": lambda: ProxyMetrics().registry,
    "worker": lambda: WorkerMetrics().registry,
    "dlq process": lambda: DlqMetrics().registry,
}
SUFFIXES = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_count", "_sum"),
            "summary": ("_count", "_sum")}
LEADLINE_METRIC = re.compile(r"\bleadline_[a-z0-9_]+")


def names(registry: CollectorRegistry) -> set[str]:
    found: set[str] = set()
    for family in registry.collect():
        found.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ("",)))
    return found


def exported() -> set[str]:
    return set().union(*(names(build()) for build in EXPORTERS.values()))


def queried(expression: str) -> set[str]:
    """The Leadline metrics a PromQL expression reads."""
    return set(LEADLINE_METRIC.findall(expression))
