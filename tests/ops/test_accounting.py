"""The books balance lead by lead while group commit's batch messages wait in the queue.

accepted (proxy) = synced (worker) + queued or retrying + dead-lettered, where
the middle term counts leads: a batch message of 30 leads waiting out a CRM
outage is 30 leads, not one message. Real proxy app, real RabbitMQ, real
worker, the fake webhook CRM refusing our credentials (an outage: the worker
pauses at the first answer and spends no attempt) and then taking them again.
"""

from __future__ import annotations

import asyncio
import uuid

import aiohttp
import aiormq
import pytest
from aiohttp import web

from leadline.accounting import Accounting, account
from leadline.queuestats import QueueStat, read_queue_stats
from leadline.topology import Topology
from proxy.app import create_app
from proxy.settings import Settings as ProxySettings
from proxy.state import METRICS, PUBLISHER
from tests.support.ports import free_port
from tests.worker.conftest import fake_crm, running_worker, settings_for, wait_for
from worker.consumer import Worker
from worker.fakecrm import Behaviour

pytestmark = [pytest.mark.broker, pytest.mark.slow]
LEADS = 240


async def _stats(amqp_url: str, topology: Topology) -> list[QueueStat]:
    connection = await aiormq.connect(amqp_url)
    try:
        return await read_queue_stats(connection, topology)
    finally:
        await connection.close()


async def _books(amqp_url: str, topology: Topology, proxy: web.Application, worker: Worker) -> Accounting:
    return account(await _stats(amqp_url, topology), proxy[METRICS].render().decode(),
                   worker.metrics.render().decode())


async def _at_rest(amqp_url: str, topology: Topology, proxy: web.Application, worker: Worker,
                   settled: int) -> Accounting:
    """The books once nothing moves: the worker holds nothing and `settled` leads are accounted."""
    async def still() -> bool:
        if worker.in_flight or worker.dispatcher.waiting:
            return False
        books = await _books(amqp_url, topology, proxy, worker)
        return (books.synced or 0) + books.dead >= settled

    for _ in range(200):
        if await still():
            await asyncio.sleep(0.3)
            if await still():
                return await _books(amqp_url, topology, proxy, worker)
        await asyncio.sleep(0.05)
    raise AssertionError("the pipeline never came to rest")


async def test_the_books_balance_lead_by_lead_while_batches_wait_out_a_crm_outage(amqp_url: str) -> None:
    topology = Topology(prefix=f"acct{uuid.uuid4().hex[:10]}", retry_delays=(0.3,))
    proxy = create_app(ProxySettings.from_env({"AMQP_URL": amqp_url, "QUEUE_PREFIX": topology.prefix,
                                               "RATE_LIMIT": "off", "PUBLISH_TIMEOUT": "5s"}))
    runner = web.AppRunner(proxy, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        assert await proxy[PUBLISHER].broker.wait_connected(10)
        # A generous CRM timeout: a call that timed out on a loaded machine and is written
        # again would count twice in `synced` (the CRM keeps one record; the books count writes).
        async with fake_crm(Behaviour(refuse_auth=True)) as crm, \
                running_worker(settings_for(amqp_url, topology, crm, crm_timeout=10.0)) as worker:
            async with aiohttp.ClientSession() as session:
                async def submit(n: int) -> int:
                    async with session.post(f"http://127.0.0.1:{port}/api/forms/lead", json={
                            "name": "Ada", "email": f"ada.{n}@example.com", "consent": True}) as answer:
                        return answer.status

                statuses = await asyncio.gather(*(submit(n) for n in range(LEADS)))
            assert statuses == [202] * LEADS
            await wait_for(lambda: worker.paused is not None, 10, "the worker paused")
            waiting = await _at_rest(amqp_url, topology, proxy, worker, settled=0)
            [work] = [s for s in await _stats(amqp_url, topology) if s.role == "work"]
            assert work.messages is not None
            assert work.messages < LEADS  # group commit put several leads in a message
            assert (waiting.accepted, waiting.synced, waiting.retrying, waiting.dead) == (LEADS, 0, LEADS, 0)
            assert waiting.gap == 0

            crm.state.behaviour.refuse_auth = False  # credentials fixed: the probe resumes the worker
            drained = await _at_rest(amqp_url, topology, proxy, worker, settled=LEADS)
            assert (drained.accepted, drained.synced, drained.retrying, drained.dead) == (LEADS, LEADS, 0, 0)
            assert drained.gap == 0
            assert len(crm.state.leads) == LEADS
    finally:
        await runner.cleanup()

