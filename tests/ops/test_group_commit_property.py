"""A property over many concurrent submissions through group commit: exactly the 202'd leads
reach the CRM, each once, whatever the mix (invalid bodies, a key sent twice, connections cut).

Real proxy app, real RabbitMQ, real worker, the fake webhook CRM; the clients
retry a 503 with the same key, as the page's outbox does.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leadline.topology import Topology
from proxy.app import create_app
from proxy.settings import Settings as ProxySettings
from proxy.state import PUBLISHER
from tests.support import rabbit
from tests.support.ports import free_port
from tests.worker.conftest import fake_crm, running_worker, settings_for, wait_for

pytestmark = [pytest.mark.broker, pytest.mark.slow]
ORIGIN = "http://127.0.0.1:8000"

# (valid body: nine in ten, key: 0 a fresh one, n the n-th of five shared ones)
submission = st.tuples(st.integers(min_value=0, max_value=9).map(lambda n: n > 0),
                       st.integers(min_value=0, max_value=4))


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(submissions=st.lists(submission, min_size=5, max_size=80), cut=st.booleans())
def test_exactly_the_accepted_leads_reach_the_crm_each_once(
    amqp_url: str, vhost: str, submissions: list[tuple[bool, int]], cut: bool
) -> None:
    asyncio.run(_scenario(amqp_url, vhost, submissions, cut))


async def _scenario(amqp_url: str, vhost: str, submissions: list[tuple[bool, int]], cut: bool) -> None:
    topology = Topology(prefix=f"gcp{uuid.uuid4().hex[:10]}", retry_delays=(0.3,))
    keys = [str(uuid.uuid4()) for _ in range(5)]
    plan: list[tuple[str, dict[str, Any]]] = []
    for valid, reuse in submissions:
        key = keys[reuse] if reuse else str(uuid.uuid4())
        body: dict[str, Any] = {"name": "Ada", "email": f"ada.{key[:8]}@example.com", "consent": True}
        if not valid:
            body["email"] = "not an address"
        plan.append((key, body))
    proxy_settings = ProxySettings.from_env({"AMQP_URL": amqp_url, "QUEUE_PREFIX": topology.prefix,
                                             "RATE_LIMIT": "off", "ALLOWED_ORIGINS": ORIGIN,
                                             "PUBLISH_TIMEOUT": "2s"})
    app = create_app(proxy_settings)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    accepted: set[str] = set()
    try:
        assert await app[PUBLISHER].broker.wait_connected(10)
        async with fake_crm() as crm, running_worker(settings_for(amqp_url, topology, crm)):
            async with aiohttp.ClientSession() as session:
                async def submit(key: str, body: dict[str, Any]) -> None:
                    for _ in range(40):
                        try:
                            async with session.post(
                                    f"http://127.0.0.1:{port}/api/forms/lead", json=body,
                                    headers={"Idempotency-Key": key, "Origin": ORIGIN}) as answer:
                                if answer.status == 202:
                                    accepted.add(key)
                                    return
                                if answer.status == 422:
                                    return
                                assert answer.status == 503, answer.status
                        except aiohttp.ClientError:
                            pass
                        await asyncio.sleep(0.1)
                    raise AssertionError(f"{key} never accepted")

                tasks = [asyncio.create_task(submit(k, b)) for k, b in plan]
                if cut:
                    await asyncio.sleep(0.05)
                    await asyncio.to_thread(rabbit.close_connections, vhost, "property: connections cut")
                await asyncio.gather(*tasks)
            # every key sent with a valid body at least once was accepted (503s are retried)
            assert accepted == {k for k, b in plan if b["email"] != "not an address"}
            await wait_for(lambda: set(crm.state.leads) >= accepted, 20, "every accepted lead in the CRM")
            await asyncio.sleep(0.3)  # let redeliveries, if any, arrive
            assert set(crm.state.leads) == accepted  # nothing else: a 422 is never published
            assert crm.state.stats.created == len(accepted)  # one record each
    finally:
        await runner.cleanup()
