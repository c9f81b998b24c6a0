"""Depth and consumers of every queue of the topology, read with passive
declares (no management plugin needed). Used by `./dev status` and by the
worker's queue gauges, which the alert rules watch."""

from __future__ import annotations

from dataclasses import dataclass

import aiormq
from aiormq.abc import AbstractConnection

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
