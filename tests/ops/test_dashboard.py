"""The Grafana dashboard, its provisioning and the observability services in
compose.yaml: they parse, every metric a panel queries is one the services
export (their real registries), and the wiring between them holds."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.ops.exported import exported, queried

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARD: dict[str, Any] = json.loads((GRAFANA / "dashboards" / "leadline.json").read_text())
DATASOURCES: dict[str, Any] = yaml.safe_load(
    (GRAFANA / "provisioning" / "datasources" / "leadline.yml").read_text())
PROVIDERS: dict[str, Any] = yaml.safe_load(
    (GRAFANA / "provisioning" / "dashboards" / "leadline.yml").read_text())
PROMETHEUS: dict[str, Any] = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]


def panels(items: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Every panel, those inside rows too."""
    out = []
    for panel in DASHBOARD["panels"] if items is None else items:
        out.append(panel)
        out.extend(panels(panel.get("panels", [])))
    return out


def expressions() -> list[tuple[str, str]]:
    return [(panel["title"], target["expr"]) for panel in panels() for target in panel.get("targets", [])]


def test_every_metric_the_dashboard_queries_is_one_a_service_exports() -> None:
    known = exported()
    used = set()
    for title, expr in expressions():
        assert queried(expr), f"{title!r} queries no Leadline metric: {expr}"
        for metric in queried(expr):
            assert metric in known, f"panel {title!r} queries {metric}, which no service exports"
            used.add(metric)
    assert len(used) >= 15


@pytest.mark.parametrize(("what", "pattern"), [
    ("accepted rate", r"rate\(leadline_proxy_accepted_total"),
    ("refused rate by reason", r"sum by \(reason\) \(rate\(leadline_proxy_refused_total"),
    ("publish latency", r"histogram_quantile\(0\.99, .*leadline_proxy_publish_seconds_bucket"),
    ("queue depths by role", r"sum by \(role\) .*leadline_queue_messages"),
    ("CRM latency by outcome",
     r"histogram_quantile\(.*by \(le, outcome\) .*leadline_worker_crm_seconds_bucket"),
    ("CRM outcomes", r"sum by \(outcome\) \(rate\(leadline_worker_crm_seconds_count"),
    ("dead letters by reason", r"leadline_worker_dead_lettered_total"),
    ("dead letters waiting", r'leadline_queue_messages\{role="dead"\}'),
])
def test_the_dashboard_shows_what_operators_look_for(what: str, pattern: str) -> None:
    assert any(re.search(pattern, expr) for _, expr in expressions()), f"no panel shows {what}"


def test_panels_are_laid_out_and_use_a_provisioned_data_source() -> None:
    uids = {source["uid"] for source in DATASOURCES["datasources"]}
    assert {source["type"] for source in DATASOURCES["datasources"]} == {"prometheus", "jaeger"}
    ids = [panel["id"] for panel in panels()]
    assert len(ids) == len(set(ids))
    for panel in panels():
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] in uids, panel["title"]
            assert panel.get("description"), f"{panel['title']!r}: say what it shows"
            for target in panel["targets"]:
                assert target["datasource"]["uid"] in uids
    assert DASHBOARD["uid"] == "leadline-overview"


def test_compose_provisions_grafana_from_deploy() -> None:
    grafana = SERVICES["grafana"]
    mounts = {volume.split(":")[1]: volume.split(":")[0] for volume in grafana["volumes"]}
    assert mounts["/etc/grafana/provisioning"] == "./deploy/grafana/provisioning"
    [provider] = PROVIDERS["providers"]
    assert mounts[provider["options"]["path"]] == "./deploy/grafana/dashboards"
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == provider["options"]["path"] + "/leadline.json"
    for source in DATASOURCES["datasources"]:
        host = re.match(r"http://([a-z-]+):\d+", source["url"])
        assert host, source["url"]
        assert host.group(1) in SERVICES, f"{source['name']} points at no compose service"


def test_compose_prometheus_scrapes_the_proxy_and_the_worker_and_loads_the_rules() -> None:
    prometheus = SERVICES["prometheus"]
    mounts = {volume.split(":")[1]: volume.split(":")[0] for volume in prometheus["volumes"]}
    assert mounts["/etc/prometheus/prometheus.yml"] == "./deploy/prometheus/prometheus.yml"
    assert mounts["/etc/prometheus/alerts.yml"] == "./deploy/prometheus/alerts.yml"
    assert PROMETHEUS["rule_files"] == ["/etc/prometheus/alerts.yml"]
    targets = {job["job_name"]: job["static_configs"][0]["targets"] for job in PROMETHEUS["scrape_configs"]}
    assert targets == {"leadline-proxy": ["proxy:8080"], "leadline-worker": ["worker:9100"]}
    for service, port in (("proxy", "8080"), ("worker", "9100")):
        assert SERVICES[service]["ports"] == [f"{port}:{port}"]


def test_compose_traces_the_proxy_and_the_worker_into_jaeger_over_otlp_http() -> None:
    jaeger = SERVICES["jaeger"]
    assert jaeger["environment"]["COLLECTOR_OTLP_ENABLED"] == "true"
    shared = COMPOSE["x-app"]["environment"]
    for service in ("proxy", "worker"):
        env = {**shared, **SERVICES[service]["environment"]}
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://jaeger:4318"  # 4318: OTLP over HTTP
        assert env["OTEL_SERVICE_NAME"] == f"leadline-{service}"


def test_compose_runs_the_console_as_its_own_service_that_needs_a_token() -> None:
    console = SERVICES["dlq-console"]
    assert console["command"][:5] == ["python", "-m", "worker", "dlq", "serve"]
    assert console["environment"]["DLQ_CONSOLE_TOKEN"].startswith("${DLQ_CONSOLE_TOKEN:?")
    assert console["environment"]["WORKER_METRICS_URL"] == "http://worker:9100/metrics"
    assert console["environment"]["PROXY_METRICS_URL"] == "http://proxy:8080/metrics"
    port = console["command"][console["command"].index("--port") + 1]
    assert console["ports"] == [f"127.0.0.1:{port}:{port}"]
    assert console["environment"]["HEALTHCHECK_URL"] == f"http://127.0.0.1:{port}/healthz"


@pytest.mark.parametrize("name", ["jaeger", "prometheus", "grafana"])
def test_observability_images_are_pinned_and_their_ports_stay_on_localhost(name: str) -> None:
    service = SERVICES[name]
    assert re.fullmatch(r"[a-z/-]+:v?\d+\.\d+\.\d+", service["image"]), service["image"]
    for port in service.get("ports", []):
        assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond this machine"


def test_console_settings_in_compose_are_read_by_the_code() -> None:
    code = "\n".join(p.read_text() for d in ("leadline", "worker") for p in (ROOT / d).rglob("*.py"))
    for setting in SERVICES["dlq-console"]["environment"]:
        assert f'"{setting}"' in code, f"the code reads no setting named {setting}"
