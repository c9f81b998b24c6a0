"""When RabbitMQ is away, refuses or stalls: 503 + Retry-After in bounded
time, never a 202 for a lead the broker does not hold, never a 500."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from urllib.parse import urlsplit, urlunsplit

import aiormq
import pytest

from leadline.topology import Topology
from tests.proxy.conftest import VALID_LEAD, Client, drain, eventually, post_json
from tests.proxy.relay import FreezableRelay
from tests.support import rabbit
from tests.support.ports import free_port

pytestmark = pytest.mark.broker

MakeClient = Callable[..., Awaitable[Client]]


async def _status(client: Client, path: str) -> int:
    async with client.get(path) as answer:
        return answer.status


async def test_broker_down_at_start_readyz_503_and_posts_503_quickly(make_client: MakeClient) -> None:
    client = await make_client(wait_ready=False,
                               AMQP_URL=f"amqp://guest:guest@127.0.0.1:{free_port()}/")
    async with client.get("/readyz") as answer:
        assert answer.status == 503
        assert int(answer.headers["Retry-After"]) > 0
    started = time.monotonic()
    status, payload, headers = await post_json(client, VALID_LEAD)
    assert time.monotonic() - started < 1.0
    assert (status, payload["status"]) == (503, "unavailable")
    assert int(headers["Retry-After"]) > 0
    # the client's mistakes are still its own: the answer that tells it not to retry
    assert (await post_json(client, {"name": "Ada"}))[0] == 422
    async with client.get("/metrics") as answer:
        assert "leadline_proxy_broker_connected 0.0" in await answer.text()


async def test_broker_coming_up_later_makes_the_proxy_ready_by_itself(
        make_client: MakeClient, amqp_url: str) -> None:
    relay_port = free_port()
    parts = urlsplit(amqp_url)
    client = await make_client(wait_ready=False, AMQP_URL=urlunsplit(
        parts._replace(netloc=f"guest:guest@127.0.0.1:{relay_port}")))
    assert await _status(client, "/readyz") == 503
    # the "broker" appears on the port the proxy keeps trying
    relay = FreezableRelay("127.0.0.1", parts.port or 5672)
    await relay.start(relay_port)
    try:
        await eventually(lambda: _is(client, "/readyz", 200), timeout=10)
        assert (await post_json(client, VALID_LEAD))[0] == 202
    finally:
        await client.close()
        await relay.close()


async def _is(client: Client, path: str, status: int) -> bool:
    return await _status(client, path) == status


async def test_unroutable_publish_is_503_and_nothing_is_claimed(
        client: Client, amqp: aiormq.abc.AbstractChannel, topology: Topology) -> None:
    await amqp.queue_unbind(topology.work_queue, topology.work_exchange, routing_key="form.*")
    status, payload, headers = await post_json(client, VALID_LEAD)
    assert (status, payload["status"]) == (503, "unavailable")
    assert int(headers["Retry-After"]) > 0
    async with client.get("/metrics") as answer:
        assert 'leadline_proxy_refused_total{reason="not_confirmed"} 1.0' in await answer.text()
    await amqp.queue_bind(topology.work_queue, topology.work_exchange, routing_key="form.*")
    assert (await post_json(client, VALID_LEAD))[0] == 202


async def test_publish_nacked_by_a_full_queue_is_503(
        client: Client, vhost: str, topology: Topology) -> None:
    policy = f"full-{topology.prefix}"
    # x-overflow=reject-publish on the work queue: past max-length the broker nacks.
    await asyncio.to_thread(rabbit.ctl, "set_policy", "-p", vhost, "--apply-to", "queues",
                            "--priority", "100", policy, f"^{topology.work_queue}$", '{"max-length":0}')
    try:
        async def refused() -> bool:
            return (await post_json(client, VALID_LEAD))[0] == 503
        await eventually(refused, timeout=10)
    finally:
        await asyncio.to_thread(rabbit.ctl, "clear_policy", "-p", vhost, policy)


@pytest.fixture
async def relay() -> AsyncIterator[FreezableRelay]:
    relay = FreezableRelay("127.0.0.1", 5672)
    await relay.start()
    yield relay
    relay.thaw()
    await relay.close()


async def test_stalled_broker_answers_503_within_the_publish_timeout(
        make_client: MakeClient, amqp_url: str, relay: FreezableRelay) -> None:
    parts = urlsplit(amqp_url)
    client = await make_client(PUBLISH_TIMEOUT="400ms", AMQP_URL=urlunsplit(
        parts._replace(netloc=f"guest:guest@127.0.0.1:{relay.port}")))
    assert (await post_json(client, VALID_LEAD))[0] == 202
    relay.freeze()
    started = time.monotonic()
    results = await asyncio.gather(*(post_json(client, VALID_LEAD) for _ in range(5)))
    elapsed = time.monotonic() - started
    assert [status for status, _, _ in results] == [503] * 5
    assert all(int(headers["Retry-After"]) > 0 for _, _, headers in results)
    assert elapsed < 2.0
    relay.thaw()
    await eventually(lambda: _accepts(client), timeout=10)


async def _accepts(client: Client) -> bool:
    return (await post_json(client, VALID_LEAD))[0] == 202


async def test_connection_dropped_under_load_no_500_every_202_is_queued_and_it_reconnects(
        client: Client, amqp_url: str, vhost: str, topology: Topology) -> None:
    accepted: list[str] = []
    statuses: list[int] = []
    dropped = asyncio.Event()
    after_drop = 0

    async def worker() -> None:
        nonlocal after_drop
        while not dropped.is_set() or after_drop < 300:
            status, payload, _ = await post_json(client, VALID_LEAD)
            statuses.append(status)
            if status == 202:
                accepted.append(payload["id"])
            if dropped.is_set():
                after_drop += 1

    load = [asyncio.create_task(worker()) for _ in range(64)]
    await asyncio.sleep(0.3)
    await asyncio.to_thread(rabbit.close_connections, vhost)
    dropped.set()
    await asyncio.gather(*load)

    assert set(statuses) <= {202, 503}, f"unexpected statuses: {sorted(set(statuses))}"
    assert statuses.count(202) > 0
    await eventually(lambda: _is(client, "/readyz", 200), timeout=10)
    assert (await post_json(client, VALID_LEAD))[0] == 202
    async with client.get("/metrics") as answer:
        text = await answer.text()
    assert "leadline_proxy_broker_connects_total 2.0" in text

    connection = await aiormq.connect(amqp_url)
    try:
        queued = {m.properties.message_id for m in await drain(await connection.channel(),
                                                               topology.work_queue)}
    finally:
        await connection.close()
    missing = set(accepted) - queued
    assert not missing, f"{len(missing)} leads answered 202 are not in the queue"
