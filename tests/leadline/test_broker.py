"""The connection owner against the real RabbitMQ: start while it is down,
reconnect after a drop, and never call an unroutable publish a success."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiormq
import pytest
from aiormq.abc import AbstractChannel
from pamqp.commands import Basic

from leadline.broker import Broker, backoff_delay, connect_once, redact_url
from leadline.errors import BrokerUnavailable, PublishNotConfirmed
from leadline.message import lead_properties
from leadline.topology import Topology, declare_for_publishing
from tests.support import rabbit
from tests.support.ports import free_port

pytestmark = pytest.mark.broker


@pytest.fixture
async def broker(amqp_url: str, topology: Topology) -> AsyncIterator[Broker]:
    async def declare(channel: AbstractChannel) -> None:
        await declare_for_publishing(channel, topology)

    owner = Broker(amqp_url, name="test", on_channel=declare, backoff=(0.05, 0.1, 0.2))
    await owner.start()
    assert await owner.wait_connected(10)
    yield owner
    await owner.stop()


def _props(submission_id: str = "sub-1234567") -> Basic.Properties:
    return lead_properties(submission_id=submission_id, form="lead")


async def test_starts_while_the_broker_is_down_and_refuses_to_publish() -> None:
    states: list[bool] = []
    owner = Broker(f"amqp://guest:guest@127.0.0.1:{free_port()}/", name="down",
                   on_state=states.append, backoff=(0.05,))
    await owner.start()
    try:
        assert not await owner.wait_connected(0.3)
        assert not owner.connected
        with pytest.raises(BrokerUnavailable):
            await owner.publish(b"{}", exchange="", routing_key="q", properties=_props(), timeout=1)
    finally:
        await owner.stop()
    assert states == []


async def test_confirmed_publish_lands_persistent_in_the_work_queue(
    broker: Broker, topology: Topology
) -> None:
    await broker.publish(b'{"name":"Ada"}', exchange=topology.work_exchange,
                         routing_key=topology.routing_key("lead"), properties=_props(), timeout=5)
    got = await broker.channel.basic_get(topology.work_queue, no_ack=True)
    assert got.body == b'{"name":"Ada"}'
    assert got.header.properties.delivery_mode == 2
    assert got.header.properties.message_id == "sub-1234567"


async def test_unroutable_publish_is_not_confirmed(broker: Broker) -> None:
    with pytest.raises(PublishNotConfirmed, match="unroutable"):
        await broker.publish(b"{}", exchange="", routing_key="no-such-queue-here",
                             properties=_props(), timeout=5)
    assert broker.connected, "a returned message must not cost the connection"


async def test_reconnects_by_itself_after_the_broker_drops_every_connection(
    broker: Broker, topology: Topology, vhost: str
) -> None:
    await asyncio.to_thread(rabbit.close_connections, vhost)
    for _ in range(200):
        if broker.connects >= 2 and broker.connected:
            break
        await asyncio.sleep(0.05)
    assert broker.connects >= 2
    await broker.publish(b"{}", exchange=topology.work_exchange,
                         routing_key=topology.routing_key("lead"), properties=_props(), timeout=5)


async def test_a_publish_cut_off_by_a_dropped_connection_fails_fast_never_hangs(
    broker: Broker, topology: Topology, vhost: str
) -> None:
    async def publish(i: int) -> str:
        try:
            await broker.publish(b"{}", exchange=topology.work_exchange,
                                 routing_key=topology.routing_key("lead"),
                                 properties=_props(f"sub-{i:08d}"), timeout=3)
        except (BrokerUnavailable, PublishNotConfirmed):
            return "refused"
        return "confirmed"

    tasks = [asyncio.create_task(publish(i)) for i in range(300)]
    await asyncio.to_thread(rabbit.close_connections, vhost)
    outcomes = await asyncio.wait_for(asyncio.gather(*tasks), 10)
    confirmed = outcomes.count("confirmed")
    assert await broker.wait_connected(10)
    # Every confirmed publish is really in the queue: a confirm is a promise.
    declared = await broker.channel.queue_declare(topology.work_queue, passive=True)
    assert declared.message_count is not None
    assert declared.message_count >= confirmed


def test_backoff_grows_to_a_cap_with_jitter() -> None:
    steps = (1.0, 2.0, 5.0)
    assert 0.8 <= backoff_delay(0, steps) <= 1.2
    assert 4.0 <= backoff_delay(10, steps) <= 6.0


async def test_connect_once_fails_fast_with_one_line_and_no_password() -> None:
    url = f"amqp://guest:s3cret@127.0.0.1:{free_port()}/"
    with pytest.raises(BrokerUnavailable) as caught:
        await connect_once(url, name="cli", timeout=2)
    assert "s3cret" not in str(caught.value)
    assert "cannot reach RabbitMQ" in str(caught.value)
    assert redact_url(url).startswith("amqp://guest:***@127.0.0.1")


async def test_connection_error_types_are_what_aiormq_raises() -> None:
    # Guards TRANSIENT_ERRORS against an aiormq upgrade renaming its errors.
    assert issubclass(aiormq.exceptions.ConnectionClosed, aiormq.exceptions.AMQPConnectionError)


async def test_a_nacked_publish_is_not_confirmed(broker: Broker) -> None:
    # A full queue that rejects new messages makes the broker nack: that must
    # read as "not confirmed" (a 503 upstream), never as an unexpected error.
    queue = f"full-{id(broker)}"
    await broker.channel.queue_declare(queue, auto_delete=True,
                                       arguments={"x-max-length": 0, "x-overflow": "reject-publish"})
    with pytest.raises(PublishNotConfirmed, match="nack"):
        await broker.publish(b"{}", exchange="", routing_key=queue, properties=_props(), timeout=5)
    assert broker.connected


async def test_a_connection_lost_soon_after_it_came_up_reconnects_with_backoff_not_at_once(
    amqp_url: str, topology: Topology, vhost: str
) -> None:
    events: list[tuple[bool, float]] = []
    loop = asyncio.get_running_loop()
    owner = Broker(amqp_url, name="flappy", backoff=(0.6,),
                   on_state=lambda up: events.append((up, loop.time())))
    await owner.start()
    try:
        assert await owner.wait_connected(10)
        for _ in range(2):  # two losses in a row, each right after a connect
            await asyncio.to_thread(rabbit.close_connections, vhost)
            for _ in range(100):
                await asyncio.sleep(0.05)
                if owner.connected and events[-1][0]:
                    break
        downs = [(t, next(u for up, u in events[i:] if up))
                 for i, (up, t) in enumerate(events) if not up]
        assert len(downs) == 2
        first, second = (back - lost for lost, back in downs)
        assert second >= 0.45, f"reconnected {second:.2f}s after a short-lived connection died"
        assert first < second
    finally:
        await owner.stop()
