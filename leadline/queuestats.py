"""Depth and consumers of every queue of the topology, read with passive
declares (no management plugin needed). Used by `./dev status` and by the
worker's queue gauges, which the alert rules watch."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import aiormq
from aiormq.abc import AbstractConnection
from prometheus_client import CollectorRegistry, Gauge

from leadline.topology import Topology


@dataclass(frozen=True, slots=True)
class QueueStat:
    name: str
    role: str  # work | retry | dead
    messages: int | None  # None: the queue does not exist (yet)
    consumers: int | None


def queues_of(topology: Topology) -> list[tuple[str, str]]:
    """(name, role) for every queue, work first, dead last."""
    return ([(topology.work_queue, "work")]
            + [(name, "retry") for name in topology.retry_queues]
            + [(topology.dead_letter_queue, "dead")])


async def read_queue_stats(connection: AbstractConnection, topology: Topology) -> list[QueueStat]:
    stats: list[QueueStat] = []
    channel = await connection.channel(publisher_confirms=False)
    try:
        for name, role in queues_of(topology):
            try:
                ok = await channel.queue_declare(name, passive=True)
            except aiormq.exceptions.ChannelNotFoundEntity:
                # a passive declare of a missing queue closes the channel
                stats.append(QueueStat(name, role, None, None))
                channel = await connection.channel(publisher_confirms=False)
                continue
            stats.append(QueueStat(name, role, ok.message_count or 0, ok.consumer_count or 0))
    finally:
        if not channel.is_closed:
            await channel.close()
    return stats


class QueueGauges:
    """`leadline_queue_messages{queue,role}` and `leadline_queue_consumers{queue,role}`,
    the gauges the alert rules watch, refreshed by `watch()` on an interval."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.messages = Gauge("leadline_queue_messages", "Messages (ready + unacked) in each queue",
                              ["queue", "role"], registry=registry)
        self.consumers = Gauge("leadline_queue_consumers", "Consumers of each queue",
                               ["queue", "role"], registry=registry)

    def update(self, stats: list[QueueStat]) -> None:
        for stat in stats:
            if stat.messages is not None:
                self.messages.labels(stat.name, stat.role).set(stat.messages)
            if stat.consumers is not None:
                self.consumers.labels(stat.name, stat.role).set(stat.consumers)

    async def watch(self, connection: Callable[[], AbstractConnection | None], topology: Topology,
                    interval: float = 15.0) -> None:
        """Refresh forever (cancel to stop); skip a round while there is no connection."""
        while True:
            current = connection()
            if current is not None and not current.is_closed:
                with contextlib.suppress(aiormq.exceptions.AMQPError, ConnectionError, OSError):
                    self.update(await read_queue_stats(current, topology))
            await asyncio.sleep(interval)
