"""The connection owner against the real RabbitMQ: start while it is down,
reconnect after a drop, and never call an unroutable publish a success."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import aiormq
import pytest
from aiormq.abc import AbstractChannel
from pamqp.commands import Basic

from leadline.broker import Broker, backoff_delay, connect_once, redact_url
from leadline.errors import BrokerUnavailable, PublishNotConfirmed
from leadline.message import lead_properties
from leadline.topology import Topology, declare_for_publishing
from tests.proxy.relay import FreezableRelay
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


async def test_connect_once_tries_every_node_and_names_each_that_failed(amqp_url: str) -> None:
    dead = [_with_port(amqp_url, free_port()) for _ in range(2)]
    connection = await connect_once(",".join([*dead, amqp_url]), name="cli", timeout=2)
    await connection.close()
    with pytest.raises(BrokerUnavailable) as caught:
        await connect_once(",".join(dead), name="cli", timeout=2)
    message = str(caught.value)
    assert all(f":{urlsplit(u).port}/" in message for u in dead)
    assert "guest:guest" not in message
    assert "\n" not in message


def _with_port(url: str, port: int) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{parts.username}:{parts.password}@127.0.0.1:{port}"))


@pytest.fixture
async def second_address() -> AsyncIterator[FreezableRelay]:
    """The same broker on a second port: a "node" that can be cut or frozen."""
    relay = FreezableRelay("127.0.0.1", urlsplit(rabbit.base_url()).port or 5672)
    await relay.start()
    yield relay
    relay.thaw()
    await relay.close()


async def test_a_node_that_refuses_connections_is_passed_over_for_the_next(
    amqp_url: str, topology: Topology
) -> None:
    down = _with_port(amqp_url, free_port())
    nodes: list[str | None] = []
    owner = Broker(f"{down},{amqp_url}", name="failover", backoff=(0.05,), on_node=nodes.append)
    await owner.start()
    try:
        assert await owner.wait_connected(10)
        up = f"127.0.0.1:{urlsplit(amqp_url).port}"
        assert owner.node == up
        assert owner.nodes == (f"127.0.0.1:{urlsplit(down).port}", up)
        assert nodes == [up]
    finally:
        await owner.stop()
    assert nodes == [up, None]


async def test_clients_start_at_a_random_node_so_they_spread(
    amqp_url: str, second_address: FreezableRelay
) -> None:
    url = f"{amqp_url},{_with_port(amqp_url, second_address.port)}"
    owners = [Broker(url, name=f"spread-{i}") for i in range(16)]
    try:
        await asyncio.gather(*(o.start() for o in owners))
        assert all(await asyncio.gather(*(o.wait_connected(10) for o in owners)))
        assert len({o.node for o in owners}) == 2, "16 clients all chose the same node"
    finally:
        await asyncio.gather(*(o.stop() for o in owners))


async def test_a_lost_node_is_left_for_the_next_one(
    amqp_url: str, topology: Topology, second_address: FreezableRelay
) -> None:
    relayed = _with_port(amqp_url, second_address.port)
    owner = Broker(f"{relayed},{amqp_url}", name="lost", backoff=(0.05,))
    owner._next = 0  # start on the relay, to lose it
    await owner.start()
    try:
        assert await owner.wait_connected(10)
        assert owner.node == f"127.0.0.1:{second_address.port}"
        await second_address.close()  # the "node" dies: every connection through it drops
        for _ in range(100):
            if owner.connected and owner.node == f"127.0.0.1:{urlsplit(amqp_url).port}":
                break
            await asyncio.sleep(0.05)
        assert owner.node == f"127.0.0.1:{urlsplit(amqp_url).port}"
        assert owner.connects == 2
    finally:
        await owner.stop()


async def test_a_node_that_stops_answering_is_left_within_the_probe_timeout(
    amqp_url: str, topology: Topology, second_address: FreezableRelay
) -> None:
    async def declare(channel: AbstractChannel) -> None:
        await declare_for_publishing(channel, topology)

    relayed = _with_port(amqp_url, second_address.port)
    owner = Broker(f"{relayed},{amqp_url}", name="hung", on_channel=declare, backoff=(0.05,),
                   probe_interval=0.2, probe_timeout=0.5)
    owner._next = 0
    await owner.start()
    try:
        assert await owner.wait_connected(10)
        second_address.freeze()  # the socket stays open, nothing comes back: a hung node
        loop = asyncio.get_running_loop()
        frozen_at = loop.time()
        with pytest.raises(PublishNotConfirmed, match=r"no confirm within 0\.3s"):
            await owner.publish(b"{}", exchange=topology.work_exchange,
                                routing_key=topology.routing_key("lead"), properties=_props(), timeout=0.3)
        for _ in range(100):
            if owner.connected and owner.node == f"127.0.0.1:{urlsplit(amqp_url).port}":
                break
            await asyncio.sleep(0.05)
        left_after = loop.time() - frozen_at
        assert owner.node == f"127.0.0.1:{urlsplit(amqp_url).port}"
        assert left_after < 3.0, f"took {left_after:.1f}s to leave a hung node"
        await owner.publish(b"{}", exchange=topology.work_exchange,
                            routing_key=topology.routing_key("lead"), properties=_props(), timeout=5)
    finally:
        await owner.stop()


async def test_an_idle_healthy_connection_is_probed_without_being_dropped(
    amqp_url: str, topology: Topology
) -> None:
    owner = Broker(amqp_url, name="probed", probe_interval=0.05, probe_timeout=2.0)
    await owner.start()
    try:
        assert await owner.wait_connected(10)
        await asyncio.sleep(0.6)  # a dozen probes
        assert owner.connected
        assert owner.connects == 1
    finally:
        await owner.stop()


async def test_blocked_reads_the_event_aiormq_keeps_for_connection_blocked() -> None:
    # Guards Broker.blocked against an aiormq upgrade renaming its private event:
    # the alarm itself is proven on the cluster (tests/cluster/test_alarms.py).
    connection = aiormq.Connection("amqp://guest:guest@127.0.0.1:1/")
    assert isinstance(getattr(connection, "_Connection__connection_unblocked", None), asyncio.Event)


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


async def test_after_a_nack_the_next_publish_goes_on_a_fresh_channel(
    broker: Broker, topology: Topology
) -> None:
    # A channel opened while a quorum queue had no leader keeps getting nacks
    # (seen on the cluster); a fresh one does not. The owner's channel stays.
    owners_channel = broker.channel
    queue = f"full-{id(broker)}"
    await broker.channel.queue_declare(queue, auto_delete=True,
                                       arguments={"x-max-length": 0, "x-overflow": "reject-publish"})
    for _ in range(2):
        with pytest.raises(PublishNotConfirmed, match="nack"):
            await broker.publish(b"{}", exchange="", routing_key=queue, properties=_props(), timeout=5)
    await broker.publish(b"{}", exchange=topology.work_exchange, routing_key=topology.routing_key("lead"),
                         properties=_props(), timeout=5)
    assert broker.channels_replaced == 2
    assert broker.channel is owners_channel
    assert not owners_channel.is_closed
    assert broker.connects == 1


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
