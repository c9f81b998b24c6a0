"""The alert rules load, and every metric they watch is one the code exports."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from prometheus_client import CollectorRegistry

from proxy.metrics import Metrics as ProxyMetrics
from worker.metrics import Metrics as WorkerMetrics

RULES: dict[str, Any] = yaml.safe_load(
    (Path(__file__).resolve().parents[2] / "deploy/prometheus/alerts.yml").read_text())
SUFFIXES = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_count", "_sum"),
            "summary": ("_count", "_sum")}


def exported(registry: CollectorRegistry) -> set[str]:
    names: set[str] = set()
    for family in registry.collect():
        names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ("",)))
    return names


def test_every_rule_has_a_name_an_expression_a_severity_and_a_summary() -> None:
    rules = [rule for group in RULES["groups"] for rule in group["rules"]]
    assert {r["alert"] for r in rules} >= {
        "LeadlineDeadLettersWaiting", "LeadlineNoWorkQueueConsumer", "LeadlineRetryBacklogGrowing",
        "LeadlineProxyRefusingSubmissions", "LeadlinePermanentFailuresWaiting"}
    for rule in rules:
        assert rule["expr"].strip()
        assert rule["labels"]["severity"] in {"page", "ticket"}
        assert rule["annotations"]["summary"]


def test_every_metric_in_the_rules_is_exported_by_the_proxy_or_the_worker() -> None:
    known = exported(ProxyMetrics().registry) | exported(WorkerMetrics().registry)
    for group in RULES["groups"]:
        for rule in group["rules"]:
            for metric in set(re.findall(r"\bleadline_[a-z_]+", rule["expr"])):
                assert metric in known, f"{rule['alert']} watches {metric}, which nothing exports"
