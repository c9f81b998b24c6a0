"""Several proxies and several workers on one broker: every lead lands once."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.support.ports import free_port
from tests.support.procs import Service

pytestmark = [pytest.mark.broker, pytest.mark.slow]
LEADS = 400


@pytest.fixture
def stack(amqp_url: str, tmp_path: Path) -> Iterator[tuple[list[str], str]]:
    prefix = f"scale{uuid.uuid4().hex[:8]}"
    common = {"AMQP_URL": amqp_url, "QUEUE_PREFIX": prefix, "LOG_LEVEL": "WARNING"}
    crm_port = free_port()
    crm = Service("crm", ["-m", "worker.fakecrm", "--port", str(crm_port), "--fail-rate", "0.2"],
                  {}, tmp_path)
    workers = [Service(f"worker{i}", ["-m", "worker"], {
        **common, "CRM_URL": f"http://127.0.0.1:{crm_port}/leads", "WORKER_METRICS_PORT": "0",
        "RETRY_DELAYS": "200ms", "MAX_ATTEMPTS": "20", "CRM_TIMEOUT": "2"}, tmp_path) for i in range(2)]
    proxy_ports = [free_port(), free_port()]
    proxies = [Service(f"proxy{i}", ["-m", "proxy", "--port", str(port)], {**common, "RATE_LIMIT": "off"},
                       tmp_path) for i, port in enumerate(proxy_ports)]
    services = [crm, *workers, *proxies]
    try:
        for service in services:
            service.start()
        crm.wait_http(f"http://127.0.0.1:{crm_port}/_stats")
        for port, proxy in zip(proxy_ports, proxies, strict=True):
            proxy.wait_http(f"http://127.0.0.1:{port}/readyz")
        yield [f"http://127.0.0.1:{p}" for p in proxy_ports], f"http://127.0.0.1:{crm_port}"
    finally:
        for service in reversed(services):
            service.stop()


async def test_two_proxies_and_two_workers_deliver_each_lead_exactly_once(
    stack: tuple[list[str], str],
) -> None:
    proxies, crm = stack
    async with aiohttp.ClientSession() as session:
        async def submit(i: int) -> str:
            key = str(uuid.uuid4())
            # the same lead goes to both proxies, as a browser retrying through
            # a load balancer might do: still one CRM record
            for proxy in (proxies[i % 2], proxies[(i + 1) % 2]) if i % 10 == 0 else (proxies[i % 2],):
                async with session.post(f"{proxy}/api/forms/lead", json={
                        "name": f"Lead {i}", "email": f"lead{i}@example.com", "consent": True},
                        headers={"Idempotency-Key": key}) as answer:
                    assert answer.status == 202
            return key

        keys = set(await asyncio.gather(*(submit(i) for i in range(LEADS))))
        stored: Counter[str] = Counter()
        for _ in range(300):
            async with session.get(f"{crm}/_leads") as answer:
                stored = Counter(str(lead["id"]) for lead in await answer.json())
            if set(stored) >= keys:
                break
            await asyncio.sleep(0.1)
    assert set(stored) == keys, f"{len(keys - set(stored))} lead(s) missing from the CRM"
    assert max(stored.values()) == 1
