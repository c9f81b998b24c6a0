"""The alert rules load, and every metric they watch is one the code exports."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tests.ops.exported import exported, queried

RULES: dict[str, Any] = yaml.safe_load(
    (Path(__file__).resolve().parents[2] / "deploy/prometheus/alerts.yml").read_text())


def test_every_rule_has_a_name_an_expression_a_severity_and_a_summary() -> None:
    rules = [rule for group in RULES["groups"] for rule in group["rules"]]
    assert {r["alert"] for r in rules} >= {
        "LeadlineDeadLettersWaiting", "LeadlineNoWorkQueueConsumer", "LeadlineRetryBacklogGrowing",
        "LeadlineProxyRefusingSubmissions", "LeadlinePermanentFailuresWaiting"}
    for rule in rules:
        assert rule["expr"].strip()
        assert rule["labels"]["severity"] in {"page", "ticket"}
        assert rule["annotations"]["summary"]


def test_every_metric_in_the_rules_is_exported_by_a_service() -> None:
    known = exported()
    for group in RULES["groups"]:
        for rule in group["rules"]:
            for metric in queried(rule["expr"]):
                assert metric in known, f"{rule['alert']} watches {metric}, which nothing exports"
