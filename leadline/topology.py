"""The RabbitMQ topology, defined once for the proxy, the worker and the tools.

    proxy --publish--> <prefix>.leads (topic) --form.*--> <prefix>.work.v1 (quorum)
    worker, temporary failure --> <prefix>.retry.<delay> (quorum, TTL) --expired--> work queue
    worker, permanent failure / attempts used up --> <prefix>.dead.v1 (classic)
    work queue delivery limit reached (a message that kills workers) --> dead queue

Queue arguments never change under a running deployment (a redeclare with
other arguments is a 406 that closes the channel), so a queue's name says
what its arguments are: a retry tier is named after its delay, and the work
and dead-letter queues carry a version to bump whenever their arguments change.
Retry and dead-letter traffic goes through the default exchange straight to
a queue by name, with `mandatory`, so a missing queue is a returned publish,
never a silent drop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any

import aiormq
from aiormq.abc import AbstractChannel

from leadline.config import format_duration

log = logging.getLogger("leadline.topology")
_CLOSE_ERRORS = (aiormq.exceptions.AMQPError, aiormq.exceptions.ChannelInvalidStateError, OSError)

DEFAULT_PREFIX = "leadline"
# 8 attempts over about a day: wait 30s, 2m, 10m, 1h, 3h, 6h, then 12h.
DEFAULT_RETRY_DELAYS: tuple[float, ...] = (30.0, 120.0, 600.0, 3600.0, 10_800.0, 21_600.0, 43_200.0)
# A message redelivered this often without an ack or a reject killed its
# consumers each time; the broker dead-letters it instead of dropping it.
WORK_QUEUE_DELIVERY_LIMIT = 50

# How long declaring the dead-letter queue, or binding the work queue, waits
# for a cluster with a hung node before going on without it.
DEAD_QUEUE_DECLARE_TIMEOUT = 2.0
BIND_TIMEOUT = 2.0

# Bump the version in the name when these arguments change (see module doc).
WORK_QUEUE_VERSION = "v1"
DEAD_QUEUE_VERSION = "v1"


@dataclass(frozen=True, slots=True)
class Topology:
    prefix: str = DEFAULT_PREFIX
    retry_delays: tuple[float, ...] = DEFAULT_RETRY_DELAYS

    @property
    def work_exchange(self) -> str:
        return f"{self.prefix}.leads"

    @property
    def work_queue(self) -> str:
        return f"{self.prefix}.work.{WORK_QUEUE_VERSION}"

    @property
    def dead_letter_queue(self) -> str:
        return f"{self.prefix}.dead.{DEAD_QUEUE_VERSION}"

    @staticmethod
    def routing_key(form: str) -> str:
        return f"form.{form}"

    def retry_queue(self, delay_seconds: float) -> str:
        return f"{self.prefix}.retry.{format_duration(delay_seconds)}"

    @property
    def retry_queues(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.retry_queue(d) for d in self.retry_delays))

    def work_queue_arguments(self) -> dict[str, Any]:
        return {
            "x-queue-type": "quorum",
            "x-delivery-limit": WORK_QUEUE_DELIVERY_LIMIT,
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": self.dead_letter_queue,
            # at-least-once dead-lettering needs reject-publish overflow
            "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish",
        }

    def retry_queue_arguments(self, delay_seconds: float) -> dict[str, Any]:
        return {
            "x-queue-type": "quorum",
            "x-message-ttl": round(delay_seconds * 1000),
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": self.work_queue,
            "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish",
        }

    @staticmethod
    def dead_queue_arguments() -> dict[str, Any]:
        # Classic, not quorum: inspecting dead letters means taking them and
        # handing them back, and a quorum queue's delivery limit (20 by
        # default on 4.x) would drop a letter that has been looked at often
        # (on 3.10, x-delivery-limit -1 drops it at the first hand-back:
        # measured). Becoming quorum would change this queue's name, so the
        # work queue's dead-letter argument, so its name, so every retry
        # tier's: the README's scaling section says what that costs, and
        # what a classic DLQ means in a cluster.
        return {"x-queue-type": "classic"}


async def declare_for_publishing(channel: AbstractChannel, topology: Topology) -> None:
    """What the proxy needs: the exchange, the work queue and its binding.

    The dead-letter queue comes too, since the work queue dead-letters into it,
    unless its node is down (`declare_dead_letter_queue`).
    """
    await channel.exchange_declare(topology.work_exchange, exchange_type="topic", durable=True)

    async def work_queue() -> None:
        await channel.queue_declare(
            topology.work_queue, durable=True, arguments=topology.work_queue_arguments()
        )
        await bind_work_queue(channel, topology)

    # Side by side: each may wait out its bound for a hung node.
    outcomes = await asyncio.gather(declare_dead_letter_queue(channel, topology), work_queue(),
                                    return_exceptions=True)
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome


async def bind_work_queue(channel: AbstractChannel, topology: Topology) -> bool:
    """Bind the work queue on a channel of its own; False if the cluster did not answer in time.

    A binding, even one that exists, takes a lock on every node of a cluster:
    while one node hangs and the others have not noticed yet (net_ticktime,
    60 s), it waits, and a client that insisted could not connect at all. The
    binding is there from any earlier declare, so going on costs nothing; a
    client for which it is not gets its publishes back unroutable (a 503 at
    the proxy, which then declares again).
    """
    side = await channel.connection.channel(publisher_confirms=False)
    try:
        await side.queue_bind(topology.work_queue, topology.work_exchange, routing_key="form.*",
                              timeout=BIND_TIMEOUT)
    except TimeoutError:
        log.warning("binding the work queue got no answer: a node hangs; going on", extra={
            "queue": topology.work_queue, "timeout_s": BIND_TIMEOUT})
        return False
    finally:
        with contextlib.suppress(*_CLOSE_ERRORS):
            await side.close()
    return True


async def declare_dead_letter_queue(channel: AbstractChannel, topology: Topology) -> bool:
    """Declare the dead-letter queue on a channel of its own; False while its node is down.

    A classic queue lives on one node of a cluster. While that node is down,
    declaring it through another answers NOT_FOUND and closes the channel: a
    client that insisted could not connect to any node until that one came
    back. Nothing is lost by going on without it: the work queue's
    at-least-once dead-lettering keeps what it cannot deliver, and the
    worker's dead-letter publish is `mandatory`, so it comes back unroutable
    and the lead stays unacked in the work queue until the node returns.
    """
    side = await channel.connection.channel(publisher_confirms=False)
    try:
        await side.queue_declare(
            topology.dead_letter_queue, durable=True, arguments=topology.dead_queue_arguments(),
            timeout=DEAD_QUEUE_DECLARE_TIMEOUT,
        )
    except aiormq.exceptions.ChannelNotFoundEntity as exc:
        if "home node" not in str(exc):
            raise
        log.warning("the dead-letter queue's node is down: going on without it", extra={
            "queue": topology.dead_letter_queue, "error": str(exc)[:300]})
        return False
    except TimeoutError:
        # Its node hangs and the cluster has not noticed yet (net_ticktime, 60 s).
        log.warning("the dead-letter queue's node does not answer: going on without it", extra={
            "queue": topology.dead_letter_queue, "timeout_s": DEAD_QUEUE_DECLARE_TIMEOUT})
        return False
    finally:
        with contextlib.suppress(*_CLOSE_ERRORS):
            await side.close()
    return True


async def declare_all(channel: AbstractChannel, topology: Topology) -> None:
    """Everything, retry tiers included: the worker and the tools."""
    await declare_for_publishing(channel, topology)
    for delay in dict.fromkeys(topology.retry_delays):
        await channel.queue_declare(
            topology.retry_queue(delay), durable=True,
            arguments=topology.retry_queue_arguments(delay),
        )
