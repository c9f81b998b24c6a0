"""schemathesis, from PyPI, against the live proxy: `python -m proxy` on a free
port, the real RabbitMQ (the session's vhost), every check, zero failures.

It reads `GET /openapi.json` as any API tester would and sends what the
document allows and what it forbids. `schemathesis.toml` beside this file
counts 408 and 413 as refusals, `schemathesis_hooks.py` leaves out the
form-encoded cases that encoding cannot carry (a `true` that arrives as the
string "true"); both say why. Its figures (operations, test cases,
failures) come from the JSON report it writes and are printed on every run;
a failure shows schemathesis's reproduction and the proxy's log.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from leadline.topology import Topology
from tests.support.ports import free_port
from tests.support.procs import ROOT, Service

pytestmark = [pytest.mark.broker, pytest.mark.slow]

CONFIG = Path(__file__).with_name("schemathesis.toml")
HOOKS = "tests.proxy.schemathesis_hooks"  # what form-encoding cannot carry is left out
# Enough to find what the runs before this test found (a regex engine's
# disagreement showed within 150), small enough for the suite: about 400 cases.
MAX_EXAMPLES = 300
OPERATIONS = 5  # POST and OPTIONS /api/forms/lead, /healthz, /readyz, /metrics


def run_schemathesis(url: str, work: Path) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    reports = work / "reports"
    done = subprocess.run(
        [sys.executable, "-m", "schemathesis.cli", "--config-file", str(CONFIG), "--no-color", "run", url,
         "--checks", "all", "--max-examples", str(MAX_EXAMPLES), "--generation-database", "none",
         "--request-timeout", "15", "--report", "json", "--report-dir", str(reports)],
        cwd=work, env={**os.environ, "PYTHONPATH": str(ROOT), "SCHEMATHESIS_HOOKS": HOOKS},
        capture_output=True, text=True, timeout=420, check=False)
    found = sorted(reports.glob("*.json"))
    assert found, f"schemathesis wrote no report:\n{done.stdout[-4000:]}\n{done.stderr[-2000:]}"
    report: dict[str, Any] = json.loads(found[-1].read_text())
    return done, report


def test_schemathesis_finds_no_failure_of_any_check_against_the_live_proxy(
        amqp_url: str, topology: Topology, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    proxy = Service("proxy", ["-m", "proxy", "--port", str(port)],
                    {"AMQP_URL": amqp_url, "QUEUE_PREFIX": topology.prefix, "RATE_LIMIT": "off"}, tmp_path)
    proxy.start()
    try:
        proxy.wait_http(f"http://127.0.0.1:{port}/readyz")
        done, report = run_schemathesis(f"http://127.0.0.1:{port}/openapi.json", tmp_path)
    finally:
        proxy.stop()
    figures = {"operations": report["operations"]["tested"], "test_cases": report["test_cases"]["generated"],
               "failures": len(report["failures"]), "errors": len(report["errors"]), "seed": report["seed"]}
    with capsys.disabled():  # the figures, on every run of the suite
        print(f"\nschemathesis: {figures['operations']} operations, {figures['test_cases']} test cases, "
              f"{figures['failures']} failures, {figures['errors']} errors (seed {figures['seed']})")
    story = f"{figures}\n{done.stdout[-6000:]}\nproxy log:\n{proxy.output()}"
    assert report["failures"] == [], story
    assert report["errors"] == [], story
    assert done.returncode == 0, story
    assert report["operations"]["tested"] == OPERATIONS, figures
    assert report["test_cases"]["generated"] >= 100, figures
    assert "Server error" not in done.stdout
