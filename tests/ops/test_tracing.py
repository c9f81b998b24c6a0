"""One trace from the browser to the CRM: the W3C traceparent the page sends
reaches the CRM call, and every hop's log lines carry the submission id and
the trace id (and never a full e-mail address)."""

from __future__ import annotations

import json
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from tests.support.http import post
from tests.support.ports import free_port
from tests.support.procs import Service

pytestmark = [pytest.mark.broker, pytest.mark.slow]


def test_traceparent_and_submission_id_travel_from_browser_to_crm(amqp_url: str, tmp_path: Path) -> None:
    prefix = f"trace{uuid.uuid4().hex[:8]}"
    common = {"AMQP_URL": amqp_url, "QUEUE_PREFIX": prefix, "LOG_LEVEL": "INFO"}
    crm_port, proxy_port = free_port(), free_port()
    crm = Service("crm", ["-m", "worker.fakecrm", "--port", str(crm_port)], {}, tmp_path)
    worker = Service("worker", ["-m", "worker"], {**common, "WORKER_METRICS_PORT": "0",
                                                  "CRM_URL": f"http://127.0.0.1:{crm_port}/leads"}, tmp_path)
    proxy = Service("proxy", ["-m", "proxy", "--port", str(proxy_port)], common, tmp_path)
    services = [crm, worker, proxy]
    trace = uuid.uuid4().hex
    traceparent = f"00-{trace}-{uuid.uuid4().hex[:16]}-01"
    key = str(uuid.uuid4())
    try:
        for service in services:
            service.start()
        crm.wait_http(f"http://127.0.0.1:{crm_port}/_stats")
        proxy.wait_http(f"http://127.0.0.1:{proxy_port}/readyz")
        request = urllib.request.Request(
            f"http://127.0.0.1:{proxy_port}/api/forms/lead", method="POST",
            data=json.dumps({"name": "Grace", "email": "grace.hopper@example.com", "consent": True}).encode(),
            headers={"Content-Type": "application/json", "Idempotency-Key": key,
                     "traceparent": traceparent})
        assert post(request)[0] == 202
        stored: list[dict[str, str]] = []
        for _ in range(100):
            with urllib.request.urlopen(f"http://127.0.0.1:{crm_port}/_leads") as listing:
                stored = json.load(listing)
            if stored:
                break
            time.sleep(0.1)
    finally:
        for service in reversed(services):
            service.stop()

    assert [lead["id"] for lead in stored] == [key]
    crm_trace = stored[0]["traceparent"].split("-")
    assert crm_trace[1] == trace, "the CRM call continues the browser's trace"

    for service in (proxy, worker):
        lines = [json.loads(line) for line in service.log_path.read_text().splitlines()
                 if line.startswith("{")]
        about_it = [line for line in lines if key in json.dumps(line)]
        assert about_it, f"{service.name} logged nothing about the submission"
        for line in about_it:
            assert trace in json.dumps(line), f"{service.name}: a line without the trace id: {line}"
        assert "grace.hopper@example.com" not in service.log_path.read_text()
