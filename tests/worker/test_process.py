"""`python -m worker` as a real process: crash, graceful stop, metrics."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from leadline.topology import Topology
from tests.support.ports import free_port
from tests.support.procs import Service
from tests.worker.conftest import Crm, depth, http_json, make_lead, publish, wait_for


class WorkerProcess:
    def __init__(self, amqp_url: str, topology: Topology, crm: Crm, log_dir: Path, **env: str) -> None:
        self.metrics_port = free_port()
        self.env = {"AMQP_URL": amqp_url, "QUEUE_PREFIX": topology.prefix, "CRM_URL": crm.leads_url,
                    "CRM_TIMEOUT": "1", "RETRY_DELAYS": "0.5s,1s", "SHUTDOWN_GRACE": "10s",
                    "WORKER_METRICS_PORT": str(self.metrics_port), **env}
        self.log_dir = log_dir
        self.services: list[Service] = []

    async def start(self) -> Service:
        service = Service(f"worker{len(self.services)}", ["-m", "worker"], self.env, self.log_dir).start()
        self.services.append(service)
        await asyncio.to_thread(service.wait_http, f"http://127.0.0.1:{self.metrics_port}/readyz")
        return service

    def kill_all(self) -> None:
        for service in self.services:
            service.kill()


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[list[WorkerProcess]]:
    made: list[WorkerProcess] = []
    yield made
    for process in made:
        process.kill_all()


async def test_worker_sigkilled_mid_stream_and_restarted_lands_every_lead_once(
    amqp_url: str, topology: Topology, crm: Crm, tmp_path: Path, workers: list[WorkerProcess]
) -> None:
    crm.configure(latency_ms=10)
    leads = [make_lead() for _ in range(300)]
    await publish(amqp_url, topology, leads)
    process = WorkerProcess(amqp_url, topology, crm, tmp_path, PREFETCH="32")
    workers.append(process)
    first = await process.start()
    await wait_for(lambda: len(crm.state.leads) >= 60, 15, "the first leads through")
    first.kill()  # in flight: up to 32 calls whose acks never happen
    assert len(crm.state.leads) < 300
    second = await process.start()
    await wait_for(lambda: len(crm.state.leads) == 300, 30, "every lead after the restart", 0.1)
    assert second.stop() == 0
    assert set(crm.state.leads) == {sid for sid, _ in leads}
    assert crm.state.stats.created == 300  # redeliveries are duplicates, never second records
    assert await depth(amqp_url, topology.work_queue) == 0
    assert await depth(amqp_url, topology.dead_letter_queue) == 0


async def test_sigterm_lets_leads_in_flight_finish_then_exits_0(
    amqp_url: str, topology: Topology, crm: Crm, tmp_path: Path, workers: list[WorkerProcess]
) -> None:
    crm.configure(latency_ms=1500)
    leads = [make_lead() for _ in range(10)]
    process = WorkerProcess(amqp_url, topology, crm, tmp_path, CRM_TIMEOUT="5", PREFETCH="10")
    workers.append(process)
    service = await process.start()
    metrics_url = f"http://127.0.0.1:{process.metrics_port}/metrics"
    await publish(amqp_url, topology, leads)
    await wait_for(lambda: crm.state.stats.requests == 10, 10, "ten calls in flight")
    assert "leadline_worker_in_flight 10.0" in await _text(metrics_url)
    assert len(crm.state.leads) == 0
    assert await asyncio.to_thread(service.stop, 15) == 0
    assert len(crm.state.leads) == 10
    assert await depth(amqp_url, topology.work_queue) == 0  # acked, not handed back
    assert '"worker stopped"' in service.output()


async def test_sigterm_hands_leads_back_when_the_grace_runs_out(
    amqp_url: str, topology: Topology, crm: Crm, tmp_path: Path, workers: list[WorkerProcess]
) -> None:
    crm.configure(latency_ms=4000)
    process = WorkerProcess(amqp_url, topology, crm, tmp_path, CRM_TIMEOUT="10", SHUTDOWN_GRACE="300ms")
    workers.append(process)
    service = await process.start()
    await publish(amqp_url, topology, [make_lead() for _ in range(5)])
    await wait_for(lambda: crm.state.stats.requests == 5, 10, "five calls in flight")
    assert await asyncio.to_thread(service.stop, 5) == 0
    # Back in the queue for the next worker: the broker requeues a closed connection's
    # unacked deliveries on its own time, a moment after the process is gone.
    await wait_for(lambda: _depth_is(amqp_url, topology.work_queue, 5), 5, "the five leads back in the queue")
    assert await depth(amqp_url, topology.work_queue) == 5


async def test_metrics_count_synced_retried_and_dead_lettered(
    amqp_url: str, topology: Topology, crm: Crm, tmp_path: Path, workers: list[WorkerProcess]
) -> None:
    process = WorkerProcess(amqp_url, topology, crm, tmp_path, MAX_ATTEMPTS="2")
    workers.append(process)
    service = await process.start()
    crm.configure(fail_domain="flaky.test")  # this lead fails alone, twice
    await publish(amqp_url, topology, [make_lead("flaky.test")])
    await wait_for(lambda: crm.state.stats.failed == 2, 10, "two failed calls")
    await publish(amqp_url, topology, [make_lead(), make_lead("reject.test")])
    await wait_for(lambda: len(crm.state.leads) == 1, 10, "a synced lead")
    text = ""
    for _ in range(50):
        text = await _text(f"http://127.0.0.1:{process.metrics_port}/metrics")
        if 'reason="permanent"} 1.0' in text and 'reason="attempts_exhausted"} 1.0' in text:
            break
        await asyncio.sleep(0.1)
    assert "leadline_worker_synced_total 1.0" in text
    assert 'leadline_worker_retried_total{tier="500ms"} 1.0' in text
    assert 'leadline_worker_dead_lettered_total{reason="permanent"} 1.0' in text
    assert 'leadline_worker_dead_lettered_total{reason="attempts_exhausted"} 1.0' in text
    assert "leadline_worker_crm_seconds_bucket" in text
    assert (await http_json(f"http://127.0.0.1:{process.metrics_port}/readyz"))["status"] == "ready"
    assert service.stop() == 0
    log = service.output()
    assert "@reject.test" in log
    assert "ada." not in log  # never a full e-mail address
    lines = [orjson.loads(line) for line in log.splitlines() if line.startswith("{")]
    [synced] = [line for line in lines if line["event"] == "lead synced"]
    assert synced["level"] == "info"
    assert synced["logger"] == "leadline.worker"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", synced["ts"])
    assert synced["submission_id"]
    assert len(synced["trace_id"]) == 32
    assert (synced["attempt"], synced["crm_status"], synced["batch"]) == (1, 201, 1)
    assert synced["crm_ms"] >= 0
    retried = [line for line in lines if line["event"] == "lead will be retried"]
    assert [line["retry_tier"] for line in retried] == ["500ms"]
    assert retried[0]["attempt"] == 1
    assert "error" in retried[0]


async def _depth_is(amqp_url: str, queue: str, expected: int) -> bool:
    return await depth(amqp_url, queue) == expected


async def _text(url: str) -> str:
    import aiohttp

    async with aiohttp.ClientSession() as session, session.get(url) as answer:
        return await answer.text()
