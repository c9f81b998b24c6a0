"""Quorum lost and regained: one node of three left, and the whole cluster
stopped and started. A confirm needs a majority: without one, 503s, never a
202; with it back, 202s again, and every lead ever confirmed is still there."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import aiormq
import pytest
from pamqp.commands import Basic

from devtools.cluster import Cluster
from leadline import batch
from leadline.message import lead_properties
from leadline.topology import Topology
from tests.cluster.conftest import (
    PUBLISH_TIMEOUT,
    MakeProxy,
    Visitors,
    broker_of,
    figure,
    get_json,
    until,
)
from tests.worker.conftest import dead_letters, declare, publish_raw

pytestmark = [pytest.mark.cluster, pytest.mark.slow]


async def take_all(url: str, queue: str) -> Counter[str]:
    """Every lead in `queue` taken off it (a batch message's, each), counted by submission id."""
    connection = await aiormq.connect(url)
    try:
        channel = await connection.channel()
        ids: Counter[str] = Counter()
        while True:
            message = await channel.basic_get(queue, no_ack=True)
            if isinstance(message.delivery, Basic.GetEmpty):
                return ids
            if batch.is_batch(message.header.properties):
                ids.update(entry.id for entry in batch.decode(message.body))
            else:
                ids[message.header.properties.message_id or ""] += 1
    finally:
        await connection.close()


async def test_with_one_node_of_three_every_answer_is_503_until_a_second_node_returns(
    healthy: Cluster, make_proxy: MakeProxy, topology: Topology
) -> None:
    cluster = healthy
    proxy = await make_proxy(cluster.amqp_url())
    broker = broker_of(proxy)
    survivor = cluster.node_at(broker.node)
    first, second = cluster.others(survivor)
    visitors = Visitors(proxy)
    async with visitors.streaming(pages=6):
        await asyncio.sleep(0.5)
        await asyncio.gather(asyncio.to_thread(cluster.stop_app, first),
                             asyncio.to_thread(cluster.stop_app, second))
        alone_at = time.monotonic()
        try:
            await asyncio.sleep(2.5)
            alone_until = time.monotonic()
            await asyncio.to_thread(cluster.start_app, first)
            back_at = time.monotonic()
            await until(lambda: visitors.first_202_after(back_at) is not None, 30,
                        "a 202 once two nodes run")
            await asyncio.sleep(0.5)
        finally:
            await asyncio.to_thread(cluster.start_app, first)  # a no-op if it runs
            await asyncio.to_thread(cluster.start_app, second)
    # Requests sent once the proxy was alone (after one publish timeout, for
    # publishes already under way when quorum went).
    alone = visitors.statuses(alone_at + PUBLISH_TIMEOUT + 0.2, alone_until)
    assert alone, "no request was sent while one node was left"
    assert set(alone) <= {0, 503}, f"answers with one node of three: {alone}"
    slowest = visitors.longest(alone_at, alone_until)
    assert slowest < PUBLISH_TIMEOUT + 1.0
    recovered = visitors.first_202_after(back_at)
    assert recovered is not None
    queued = await take_all(cluster.nodes[0].url, topology.work_queue)
    assert visitors.accepted <= set(queued), "a lead answered 202 is not in the work queue"
    assert set(queued) == visitors.accepted
    landed_twice = sum(n - 1 for n in queued.values())
    figure(f"one node of three left: {sum(alone.values())} answers, all 503, each within "
           f"{slowest:.2f}s; first 202 {recovered:.2f}s after a second node's start_app returned; "
           f"{len(visitors.accepted)} leads answered 202, all in the work queue, {landed_twice} of them "
           "twice (a publish answered 503 was queued after all: a 503 means 'not confirmed', "
           "not 'not queued'; the Idempotency-Key makes it harmless)")


async def test_the_whole_cluster_stopped_and_started_keeps_every_queue_and_confirmed_lead(
    healthy: Cluster, make_proxy: MakeProxy, topology: Topology
) -> None:
    cluster = healthy
    url = cluster.nodes[0].url
    await declare(url, topology)
    proxy = await make_proxy(cluster.amqp_url())
    broker = broker_of(proxy)
    visitors = Visitors(proxy)
    await asyncio.gather(*(visitors.one_lead(i) for i in range(60)))
    await publish_raw(url, topology.dead_letter_queue, b'{"name":"Ada"}',
                      lead_properties(submission_id="dead-letter-before-restart", form="lead"))
    began = time.monotonic()
    await asyncio.to_thread(cluster.restart_all)
    restarted = time.monotonic() - began
    await until(lambda: broker.connected, 60, "the proxy connected again by itself")
    reconnected = time.monotonic() - began - restarted
    status, ready = await get_json(proxy, "/readyz")
    assert status == 200, ready
    await visitors.one_lead(60)  # and it takes leads again
    queued = await take_all(url, topology.work_queue)
    assert set(queued) == visitors.accepted, "every confirmed lead survived the restart"
    letters = await dead_letters(url, topology)
    assert [letter.id for letter in letters] == ["dead-letter-before-restart"]
    connection = await aiormq.connect(url)
    try:
        channel = await connection.channel()
        for queue in topology.retry_queues:  # passive: raises if the restart lost one
            await channel.queue_declare(queue, passive=True)
    finally:
        await connection.close()
    figure(f"whole cluster stopped and started: {restarted:.1f}s for the restart, the proxy "
           f"connected again {reconnected:.2f}s later by itself; all {len(visitors.accepted) - 1} leads "
           "confirmed before it, the dead letter and every queue still there")
