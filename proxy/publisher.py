"""Publishing an accepted lead: the one place the proxy touches the broker.

The `Broker` owns the connection and its reconnect loop; this adds what the
proxy needs on each new channel (the publishing topology, declared
idempotently) and turns a lead into a persistent message on the work exchange.
Leads go out in group commits (`proxy.groupcommit`): one confirmed message
for every lead accepted while a publish was in flight. Given the requests'
SERVER spans, a publish gets a PRODUCER span, and the message's `traceparent`
header names that span, so the worker's CONSUMER spans link to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

import orjson
from aiormq.abc import AbstractChannel

from leadline import tracing
from leadline.batch import Entry
from leadline.broker import Broker, Unroutable
from leadline.message import utc_now_iso
from leadline.schemas import FormSchema
from leadline.topology import Topology, declare_for_publishing
from proxy.groupcommit import GroupCommit
from proxy.metrics import Metrics

log = logging.getLogger("leadline.proxy")
REDECLARE_EVERY = 1.0


class Publisher:
    def __init__(self, url: str, topology: Topology, metrics: Metrics, *, timeout: float,
                 tracing: tracing.Tracing | None = None,
                 on_state: Callable[[bool], None] = lambda connected: None) -> None:
        self.topology = topology
        self.timeout = timeout
        self._metrics = metrics
        self._tracing = tracing
        self._node: tuple[str | None, int | None] = (None, None)  # the broker node, for spans
        self._on_state = on_state
        self.broker = Broker(url, name="leadline-proxy", on_channel=self._declare,
                             on_state=self._state_changed, on_node=metrics.set_broker_node)
        metrics.set_broker_nodes(self.broker.nodes)
        metrics.watch_blocked(lambda: self.broker.blocked)
        self._redeclaring: asyncio.Task[None] | None = None
        self._redeclared_at = -REDECLARE_EVERY
        self._group = GroupCommit(self.broker, topology, timeout=timeout, tracing_=tracing,
                                  node=lambda: self._node, observe=self._observe, failed=self._failed)

    @property
    def ready(self) -> bool:
        return self.broker.connected

    @property
    def blocked(self) -> bool:
        """RabbitMQ blocks publishing (a resource alarm): every publish would be refused."""
        return self.broker.blocked

    async def start(self) -> None:
        await self.broker.start()

    def _state_changed(self, connected: bool) -> None:
        self._metrics.set_broker_state(connected)
        self._on_state(connected)

    async def stop(self) -> None:
        await self._group.close()
        if self._redeclaring is not None:
            self._redeclaring.cancel()
        await self.broker.stop()

    async def _declare(self, channel: AbstractChannel) -> None:
        url = channel.connection.url
        self._node = (url.host, url.port)
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

    def _failed(self, exc: BaseException) -> None:
        if isinstance(exc, Unroutable):
            self._redeclare_soon()

    async def publish(self, form: FormSchema, fields: dict[str, Any], *, submission_id: str,
                      traceparent: str, parent: tracing.Span | None = None, stamp: str = "") -> None:
        """Return once the broker confirmed the message holding this lead (alone, or with the
        leads accepted meanwhile: `proxy.groupcommit`); `BrokerUnavailable`/`PublishNotConfirmed`
        otherwise, within the publish timeout. `stamp`: the spam stamp's verdict, to record.

        With `parent` (the request's span, tracing on) the publish is a PRODUCER
        span and the message carries its `traceparent`.
        """
        entry = Entry(id=submission_id, form=form.name, fields=orjson.dumps(fields), schema=form.schema_id,
                      received_at=utc_now_iso(), traceparent=traceparent, stamp=stamp)
        await self._group.publish(entry, parent)

    def _observe(self, leads: int, seconds: float) -> None:
        self._metrics.publish_seconds.observe(seconds)
        self._metrics.batch_size.observe(leads)
