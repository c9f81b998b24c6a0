"""The topology on the real broker: idempotent declares, retry tiers that
dead-letter back to work, and queue names that change with their arguments."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator

import aiormq
import pytest
from aiormq.abc import AbstractChannel, AbstractConnection, DeliveredMessage

from leadline.message import lead_properties
from leadline.topology import WORK_QUEUE_DELIVERY_LIMIT, Topology, declare_all

pytestmark = pytest.mark.broker


@pytest.fixture
async def channel(amqp_url: str) -> AsyncIterator[AbstractChannel]:
    connection: AbstractConnection = await aiormq.connect(amqp_url)
    try:
        yield await connection.channel()
    finally:
        await connection.close()


def test_queue_names_carry_what_their_arguments_depend_on() -> None:
    topo = Topology(prefix="leadline", retry_delays=(5.0, 30.0, 120.0, 120.0))
    assert topo.work_queue == "leadline.work.v1"
    assert topo.dead_letter_queue == "leadline.dead.v1"
    assert topo.retry_queues == ("leadline.retry.5s", "leadline.retry.30s", "leadline.retry.2m")


def test_work_queue_arguments_are_pinned_to_their_version() -> None:
    # Changing these arguments under a running deployment is a 406: if this
    # test fails because you changed them, bump WORK_QUEUE_VERSION too.
    assert Topology(prefix="p").work_queue_arguments() == {
        "x-queue-type": "quorum",
        "x-delivery-limit": 50,
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": "p.dead.v1",
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }


async def test_declaring_twice_is_harmless(channel: AbstractChannel, topology: Topology) -> None:
    await declare_all(channel, topology)
    await declare_all(channel, topology)
    assert not channel.is_closed


async def test_new_retry_delays_declare_new_tiers_without_a_406(
    channel: AbstractChannel, topology: Topology
) -> None:
    await declare_all(channel, topology)
    await declare_all(channel, dataclasses.replace(topology, retry_delays=(0.25, 3.0, 45.0)))
    assert not channel.is_closed


async def test_a_retry_tier_hands_the_message_back_to_work_after_its_delay(
    channel: AbstractChannel, topology: Topology
) -> None:
    await declare_all(channel, topology)
    tier = topology.retry_queue(topology.retry_delays[0])
    await channel.basic_publish(b'{"n":1}', exchange="", routing_key=tier, mandatory=True,
                                properties=lead_properties(submission_id="retry-0001", form="lead"))
    got = await _get_eventually(channel, topology.work_queue)
    assert got.body == b'{"n":1}'
    assert got.header.properties.message_id == "retry-0001"
    assert got.header.properties.delivery_mode == 2


async def test_a_message_that_keeps_coming_back_is_dead_lettered_not_dropped(
    channel: AbstractChannel, topology: Topology
) -> None:
    # A lead that crashes every worker comes back without an ack each time;
    # past the delivery limit the broker must move it to the dead queue.
    await declare_all(channel, topology)
    await channel.basic_publish(b"{}", exchange="", routing_key=topology.work_queue,
                                properties=lead_properties(submission_id="crashy-001", form="lead"))
    returned = 0
    for _ in range(WORK_QUEUE_DELIVERY_LIMIT * 2):
        got = await channel.basic_get(topology.work_queue)
        if got.delivery_tag is None:  # Basic.GetEmpty: the broker took it away
            break
        await channel.basic_reject(got.delivery_tag, requeue=True)
        returned += 1
    assert WORK_QUEUE_DELIVERY_LIMIT <= returned <= WORK_QUEUE_DELIVERY_LIMIT + 1
    dead = await _get_eventually(channel, topology.dead_letter_queue)
    assert dead.header.properties.message_id == "crashy-001"


async def _get_eventually(channel: AbstractChannel, queue: str, seconds: float = 3.0) -> DeliveredMessage:
    """The first message `queue` holds within `seconds` (taken, no ack needed)."""
    for _ in range(int(seconds / 0.05)):
        got = await channel.basic_get(queue, no_ack=True)
        if got.body:
            return got
        await asyncio.sleep(0.05)
    raise AssertionError(f"nothing arrived in {queue} within {seconds}s")
