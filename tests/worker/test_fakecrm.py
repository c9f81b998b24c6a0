"""The fake CRM behaves as docs/architecture.md says: tests, demo and benchmarks depend on it."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from typing import Any

import aiohttp
import pytest

from tests.support.ports import free_port
from tests.support.procs import ROOT, Service
from tests.worker.conftest import Crm, fake_crm, http_json
from worker.fakecrm import Behaviour


async def post(session: aiohttp.ClientSession, crm: Crm, key: str, email: str = "a@example.com",
               timeout: float = 5.0) -> int:
    payload: dict[str, Any] = {"id": key, "form": "lead", "received_at": "", "lead": {"email": email}}
    async with session.post(crm.leads_url, json=payload, headers={"Idempotency-Key": key},
                            timeout=aiohttp.ClientTimeout(total=timeout)) as answer:
        return answer.status


async def test_stores_each_idempotency_key_once_and_counts_duplicates(crm: Crm) -> None:
    async with aiohttp.ClientSession() as session:
        assert await post(session, crm, "k1") == 201
        assert await post(session, crm, "k1") == 200
        assert await post(session, crm, "k2") == 201
    leads = await http_json(f"{crm.url}/_leads")
    assert sorted(lead["id"] for lead in leads) == ["k1", "k2"]
    stats = await http_json(f"{crm.url}/_stats")
    assert (stats["requests"], stats["created"], stats["duplicates"], stats["failed"]) == (3, 2, 1, 0)


async def test_reject_domain_answers_422_and_stores_nothing(crm: Crm) -> None:
    async with aiohttp.ClientSession() as session:
        assert await post(session, crm, "k1", email="bob@reject.test") == 422
        assert await post(session, crm, "k2", email="bob@example.com") == 201
    assert [lead["id"] for lead in await http_json(f"{crm.url}/_leads")] == ["k2"]


async def test_missing_idempotency_key_is_a_400(crm: Crm) -> None:
    async with aiohttp.ClientSession() as session, session.post(crm.leads_url, json={}) as answer:
        assert answer.status == 400


async def test_fail_rate_answers_503_without_storing_and_can_be_changed_at_run_time(crm: Crm) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{crm.url}/_config", json={"fail_rate": 1.0}) as answer:
            assert answer.status == 200
        assert [await post(session, crm, f"k{i}") for i in range(3)] == [503] * 3
        async with session.post(f"{crm.url}/_config", json={"fail_rate": 0}) as answer:
            assert answer.status == 200
        assert await post(session, crm, "k0") == 201
        async with session.post(f"{crm.url}/_config", json={"fail_rate": 3}) as answer:
            assert answer.status == 400
    stats = await http_json(f"{crm.url}/_stats")
    assert (stats["failed"], stats["created"]) == (3, 1)


async def test_timeout_rate_stores_the_lead_then_answers_too_late() -> None:
    async with fake_crm(Behaviour(timeout_rate=1.0, hang_seconds=30)) as crm:
        async with aiohttp.ClientSession() as session:
            with pytest.raises(asyncio.TimeoutError):
                await post(session, crm, "k1", timeout=0.3)
        assert [lead["id"] for lead in await http_json(f"{crm.url}/_leads")] == ["k1"]


async def test_latency_delays_every_answer() -> None:
    async with fake_crm(Behaviour(latency_ms=200)) as crm, aiohttp.ClientSession() as session:
        started = asyncio.get_running_loop().time()
        assert await post(session, crm, "k1") == 201
        assert asyncio.get_running_loop().time() - started >= 0.19


async def test_reset_forgets_leads_and_counts(crm: Crm) -> None:
    async with aiohttp.ClientSession() as session:
        await post(session, crm, "k1")
        async with session.post(f"{crm.url}/_reset") as answer:
            assert answer.status == 200
    assert await http_json(f"{crm.url}/_leads") == []
    assert (await http_json(f"{crm.url}/_stats"))["requests"] == 0


def test_command_line_runs_the_fake_crm_with_its_options(tmp_path: Any) -> None:
    port = free_port()
    service = Service("fakecrm", ["-m", "worker.fakecrm", "--port", str(port), "--fail-rate", "1",
                                  "--latency-ms", "1", "--reject-domain", "nope.test"], {}, tmp_path)
    service.start()
    try:
        service.wait_http(f"http://127.0.0.1:{port}/_stats")
        config = subprocess.run(
            ["curl", "-s", "-X", "POST", "-d", "{}", f"http://127.0.0.1:{port}/_config"],
            capture_output=True, text=True, timeout=10, check=True)
        assert '"fail_rate":1.0' in config.stdout
        assert '"reject_domain":"nope.test"' in config.stdout
    finally:
        assert service.stop() == 0


def test_command_line_refuses_a_rate_above_one() -> None:
    done = subprocess.run([sys.executable, "-m", "worker.fakecrm", "--fail-rate", "2"], cwd=ROOT,
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert "between 0 and 1" in done.stderr
