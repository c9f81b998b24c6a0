"""Fixtures for the worker's tests: an in-process fake CRM, leads on the real broker."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any

import aiohttp
import aiormq
import orjson
import pytest
from aiohttp import web
from pamqp.commands import Basic

from leadline.message import lead_properties
from leadline.topology import Topology, declare_all, declare_for_publishing
from tests.support.ports import free_port
from worker.consumer import Worker
from worker.dlq import DeadLetter, browse
from worker.fakecrm import CRM_KEY, Behaviour, FakeCrm, create_app
from worker.settings import Settings


@dataclass
class Crm:
    url: str
    state: FakeCrm

    @property
    def leads_url(self) -> str:
        return f"{self.url}/leads"

    def configure(self, **changes: Any) -> None:
        self.state.behaviour = replace(self.state.behaviour, **changes)


@asynccontextmanager
async def fake_crm(behaviour: Behaviour | None = None, seed: int | None = 7) -> AsyncIterator[Crm]:
    app = create_app(behaviour, seed=seed)
    # handler_cancellation: a "too late" answer stops when the caller gave up,
    # so the server shuts down at once after the test.
    runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=0.5)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield Crm(f"http://127.0.0.1:{port}", app[CRM_KEY])
    finally:
        await runner.cleanup()


@pytest.fixture
async def crm() -> AsyncIterator[Crm]:
    async with fake_crm() as running:
        yield running


def settings_for(amqp_url: str, topology: Topology, crm: Crm, **overrides: Any) -> Settings:
    base = Settings(amqp_url=amqp_url, queue_prefix=topology.prefix, crm_url=crm.leads_url,
                    crm_timeout=0.5, max_attempts=8, retry_delays=topology.retry_delays,
                    prefetch=64, metrics_port=0, shutdown_grace=5.0, crm_probe_interval=0.2)
    return replace(base, **overrides)


@asynccontextmanager
async def running_worker(settings: Settings) -> AsyncIterator[Worker]:
    worker = Worker(settings)
    await worker.start()
    try:
        assert await worker.broker.wait_connected(10), "worker did not connect"
        yield worker
    finally:
        await worker.stop()


def make_lead(domain: str = "example.com") -> tuple[str, dict[str, Any]]:
    sid = str(uuid.uuid4())
    return sid, {"name": "Ada Lovelace", "email": f"ada.{sid[:8]}@{domain}", "consent": True}


async def publish(amqp_url: str, topology: Topology, leads: Iterable[tuple[str, dict[str, Any]]]) -> None:
    """Publish like the proxy does: persistent, mandatory, confirmed."""
    async with amqp_channel(amqp_url) as channel:
        await declare_for_publishing(channel, topology)
        confirms = [
            await channel.basic_publish(
                orjson.dumps(fields), exchange=topology.work_exchange,
                routing_key=topology.routing_key("lead"), mandatory=True,
                properties=lead_properties(submission_id=sid, form="lead",
                                           traceparent=f"00-{uuid.uuid4().hex}-{'1' * 16}-01"),
            )
            for sid, fields in leads
        ]
        assert all(isinstance(c, Basic.Ack) for c in confirms)


async def declare(amqp_url: str, topology: Topology) -> None:
    async with amqp_channel(amqp_url) as channel:
        await declare_all(channel, topology)


async def publish_raw(amqp_url: str, routing_key: str, body: bytes, properties: Basic.Properties,
                      exchange: str = "") -> None:
    async with amqp_channel(amqp_url) as channel:
        confirm = await channel.basic_publish(body, exchange=exchange, routing_key=routing_key,
                                              properties=properties, mandatory=True)
        assert isinstance(confirm, Basic.Ack)


@asynccontextmanager
async def amqp_channel(amqp_url: str) -> AsyncIterator[aiormq.abc.AbstractChannel]:
    connection = await aiormq.connect(amqp_url)
    try:
        yield await connection.channel(publisher_confirms=True)
    finally:
        await connection.close()


async def depth(amqp_url: str, queue: str) -> int:
    """Ready messages in `queue` (unacked ones are not counted)."""
    async with amqp_channel(amqp_url) as channel:
        ok = await channel.queue_declare(queue, passive=True)
        assert ok is not None
        return int(ok.message_count or 0)


async def queues_empty(amqp_url: str, topology: Topology) -> bool:
    """Nothing ready in the work queue nor in any retry tier of `topology`."""
    for queue in (topology.work_queue, *topology.retry_queues):
        if await depth(amqp_url, queue):
            return False
    return True


async def dead_letters(amqp_url: str, topology: Topology) -> list[DeadLetter]:
    connection = await aiormq.connect(amqp_url)
    try:
        async with browse(connection, topology) as taken:
            return taken.letters
    finally:
        await connection.close()


async def wait_for(check: Callable[[], bool | Awaitable[bool]], timeout: float, what: str,
                   every: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while True:
        outcome = check()
        if not isinstance(outcome, bool):
            outcome = await outcome
        if outcome:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(every)


async def http_json(url: str) -> Any:
    async with aiohttp.ClientSession() as session, session.get(url) as answer:
        return await answer.json()
