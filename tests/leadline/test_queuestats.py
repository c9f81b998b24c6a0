"""Queue depths read from the real broker, as `./dev status` and the alert gauges see them."""

from __future__ import annotations

import aiormq
import pytest
from aiormq.abc import DeliveredMessage
from prometheus_client import CollectorRegistry, generate_latest

from leadline.message import lead_properties
from leadline.queuestats import QueueGauges, read_queue_stats
from leadline.topology import Topology, declare_all

pytestmark = pytest.mark.broker


async def test_depths_and_consumers_per_queue_and_missing_queues_marked(
    amqp_url: str, topology: Topology
) -> None:
    connection = await aiormq.connect(amqp_url)
    try:
        before = await read_queue_stats(connection, topology)
        assert all(s.messages is None for s in before), "nothing is declared yet"

        channel = await connection.channel()
        await declare_all(channel, topology)
        for i in range(3):
            props = lead_properties(submission_id=f"dead-{i:04d}", form="lead")
            await channel.basic_publish(b"{}", routing_key=topology.dead_letter_queue, properties=props)

        async def ignore(_: DeliveredMessage) -> None:
            return None

        await channel.basic_consume(topology.work_queue, ignore)
        stats = {s.role + ":" + s.name: s for s in await read_queue_stats(connection, topology)}
        assert stats[f"dead:{topology.dead_letter_queue}"].messages == 3
        assert stats[f"work:{topology.work_queue}"].consumers == 1
        assert len([s for s in stats.values() if s.role == "retry"]) == len(topology.retry_queues)

        gauges = QueueGauges(registry := CollectorRegistry())
        gauges.update(list(stats.values()))
        text = generate_latest(registry).decode()
        assert f'leadline_queue_messages{{queue="{topology.dead_letter_queue}",role="dead"}} 3.0' in text
        assert f'leadline_queue_consumers{{queue="{topology.work_queue}",role="work"}} 1.0' in text
    finally:
        await connection.close()
