"""The proxy under test: the real app on the real broker, one prefix per test."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiormq
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pamqp.commands import Basic

from leadline import batch
from leadline.topology import Topology
from proxy.app import create_app
from proxy.settings import Settings
from proxy.state import PUBLISHER

ORIGIN = "http://localhost:8000"
VALID_LEAD: dict[str, Any] = {"name": "Ada Lovelace", "email": "ada@example.com", "consent": True}

AiohttpClient = Callable[[web.Application], Awaitable[TestClient[web.Request, web.Application]]]
Client = TestClient[web.Request, web.Application]


@dataclass
class Published:
    """One lead as published: alone in its message, or one of a batch's (`batch` leads)."""

    body: dict[str, Any]
    properties: Basic.Properties  # the lead's own (a batch's lead: as its own message would carry)
    routing_key: str
    batch: int = 1
    message: Basic.Properties | None = None  # the message's, when that differs (a batch)


@pytest.fixture
def env(amqp_url: str, topology: Topology) -> dict[str, str]:
    """The settings every proxy test starts from; a test changes what it is about."""
    return {"AMQP_URL": amqp_url, "QUEUE_PREFIX": topology.prefix, "RATE_LIMIT": "off",
            "ALLOWED_ORIGINS": ORIGIN, "PUBLISH_TIMEOUT": "2s"}


@pytest.fixture
def make_client(aiohttp_client: AiohttpClient, env: dict[str, str]
                ) -> Callable[..., Awaitable[Client]]:
    async def make(wait_ready: bool = True, **overrides: str) -> Client:
        app = create_app(Settings.from_env({**env, **overrides}))
        client = await aiohttp_client(app)
        if wait_ready:
            assert await app[PUBLISHER].broker.wait_connected(10), "the proxy never reached RabbitMQ"
        return client

    return make


@pytest.fixture
async def client(make_client: Callable[..., Awaitable[Client]]) -> Client:
    return await make_client()


@pytest.fixture
async def amqp(amqp_url: str) -> AsyncIterator[aiormq.abc.AbstractChannel]:
    """A channel of the test's own, to look at what the proxy published."""
    connection = await aiormq.connect(amqp_url)
    try:
        yield await connection.channel()
    finally:
        await connection.close()


async def drain(channel: aiormq.abc.AbstractChannel, queue: str) -> list[Published]:
    """Every lead in `queue` (a batch message's, each), taken off it."""
    found: list[Published] = []
    while True:
        message = await channel.basic_get(queue, no_ack=True)
        if message.delivery is None or isinstance(message.delivery, Basic.GetEmpty):
            return found
        assert isinstance(message.delivery, Basic.GetOk)
        props = message.header.properties
        if not batch.is_batch(props):
            found.append(Published(orjson.loads(message.body), props, message.delivery.routing_key or ""))
            continue
        entries = batch.decode(message.body)
        for entry in entries:
            body, own = batch.single(entry)
            found.append(Published(orjson.loads(body), own, f"form.{entry.form}", len(entries), props))


async def post_json(client: Client, body: object, headers: Mapping[str, str] | None = None,
                    form: str = "lead") -> tuple[int, dict[str, Any], Mapping[str, str]]:
    async with client.post(f"/api/forms/{form}", data=orjson.dumps(body),
                           headers={"Content-Type": "application/json", **(headers or {})}) as answer:
        payload = await answer.json() if answer.content_type == "application/json" else {}
        return answer.status, payload, answer.headers


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)
