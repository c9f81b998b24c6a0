"""Publishing an accepted lead: the one place the proxy touches the broker.

The `Broker` owns the connection and its reconnect loop; this adds what the
proxy needs on each new channel (the publishing topology, declared
idempotently) and turns a lead into a persistent message on the work exchange.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import orjson
from aiormq.abc import AbstractChannel

from leadline.broker import Broker, Unroutable
from leadline.message import lead_properties
from leadline.schemas import FormSchema
from leadline.topology import Topology, declare_for_publishing
from proxy.metrics import Metrics

log = logging.getLogger("leadline.proxy")
REDECLARE_EVERY = 1.0


class Publisher:
    def __init__(self, url: str, topology: Topology, metrics: Metrics, *, timeout: float) -> None:
        self.topology = topology
        self.timeout = timeout
        self._metrics = metrics
        self.broker = Broker(url, name="leadline-proxy", on_channel=self._declare,
                             on_state=metrics.set_broker_state, on_node=metrics.set_broker_node)
        metrics.set_broker_nodes(self.broker.nodes)
        metrics.watch_blocked(lambda: self.broker.blocked)
        self._redeclaring: asyncio.Task[None] | None = None
        self._redeclared_at = -REDECLARE_EVERY

    @property
    def ready(self) -> bool:
        return self.broker.connected

    @property
    def blocked(self) -> bool:
        """RabbitMQ blocks publishing (a resource alarm): every publish would be refused."""
        return self.broker.blocked

    async def start(self) -> None:
        await self.broker.start()

    async def stop(self) -> None:
        if self._redeclaring is not None:
            self._redeclaring.cancel()
        await self.broker.stop()

    async def _declare(self, channel: AbstractChannel) -> None:
        await declare_for_publishing(channel, self.topology)

    def _redeclare_soon(self) -> None:
        """A publish came back unroutable: declare the topology again, in the background.

        The binding may be missing (a declare that had to go on without it while
        a node hung, or someone removed it); at most one try at a time, one a second.
        """
        now = time.monotonic()
        if (self._redeclaring is not None and not self._redeclaring.done()) \
                or now - self._redeclared_at < REDECLARE_EVERY:
            return
        self._redeclared_at = now
        self._redeclaring = asyncio.create_task(self._redeclare())

    async def _redeclare(self) -> None:
        connection = self.broker.connection
        if connection is None:
            return
        try:
            channel = await asyncio.wait_for(connection.channel(publisher_confirms=False), self.timeout)
            try:
                await asyncio.wait_for(declare_for_publishing(channel, self.topology), 3 * self.timeout)
            finally:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(channel.close(), self.timeout)
        except Exception as exc:  # the next unroutable publish tries again
            log.warning("declaring the topology again failed", extra={"error": repr(exc)[:300]})

    async def publish(self, form: FormSchema, fields: dict[str, Any], *,
                      submission_id: str, traceparent: str) -> None:
        """Return once the broker confirmed; `BrokerUnavailable`/`PublishNotConfirmed` otherwise."""
        properties = lead_properties(submission_id=submission_id, form=form.name,
                                     schema_id=form.schema_id, traceparent=traceparent)
        started = time.perf_counter()
        try:
            await self.broker.publish(
                orjson.dumps(fields), exchange=self.topology.work_exchange,
                routing_key=self.topology.routing_key(form.name), properties=properties,
                timeout=self.timeout,
            )
        except Unroutable:
            self._redeclare_soon()
            raise
        self._metrics.publish_seconds.observe(time.perf_counter() - started)
