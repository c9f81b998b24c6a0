"""Publishing an accepted lead: the one place the proxy touches the broker.

The `Broker` owns the connection and its reconnect loop; this adds what the
proxy needs on each new channel (the publishing topology, declared
idempotently) and turns a lead into a persistent message on the work exchange.
Given the request's SERVER span, a publish gets a PRODUCER span, and the
message's `traceparent` header names that span, so the worker's CONSUMER span
becomes its child.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from aiormq.abc import AbstractChannel

from leadline import tracing
from leadline.broker import Broker
from leadline.message import lead_properties
from leadline.schemas import FormSchema
from leadline.topology import Topology, declare_for_publishing
from proxy.metrics import Metrics


class Publisher:
    def __init__(self, url: str, topology: Topology, metrics: Metrics, *, timeout: float,
                 tracing: tracing.Tracing | None = None) -> None:
        self.topology = topology
        self.timeout = timeout
        self._metrics = metrics
        self._tracing = tracing
        self._node: tuple[str | None, int | None] = (None, None)  # the broker node, for spans
        self.broker = Broker(url, name="leadline-proxy", on_channel=self._declare,
                             on_state=metrics.set_broker_state)

    @property
    def ready(self) -> bool:
        return self.broker.connected

    async def start(self) -> None:
        await self.broker.start()

    async def stop(self) -> None:
        await self.broker.stop()

    async def _declare(self, channel: AbstractChannel) -> None:
        url = channel.connection.url
        self._node = (url.host, url.port)
        await declare_for_publishing(channel, self.topology)

    async def publish(self, form: FormSchema, fields: dict[str, Any], *, submission_id: str,
                      traceparent: str, parent: tracing.Span | None = None) -> None:
        """Return once the broker confirmed; `BrokerUnavailable`/`PublishNotConfirmed` otherwise.

        With `parent` (the request's span, tracing on) the publish is a PRODUCER
        span and the message carries its `traceparent` instead of `traceparent`.
        """
        body = orjson.dumps(fields)
        exchange, routing_key = self.topology.work_exchange, self.topology.routing_key(form.name)
        span = None
        if parent is not None and self._tracing is not None:
            host, port = self._node
            span = self._tracing.producer_span(
                exchange=exchange, routing_key=routing_key, message_id=submission_id, parent=parent,
                body_size=len(body), server_address=host, server_port=port)
            traceparent = tracing.traceparent_of(span, traceparent) or traceparent
        properties = lead_properties(submission_id=submission_id, form=form.name,
                                     schema_id=form.schema_id, traceparent=traceparent)
        started = time.perf_counter()
        try:
            await self.broker.publish(body, exchange=exchange, routing_key=routing_key,
                                      properties=properties, timeout=self.timeout)
        except BaseException as exc:
            if span is not None:
                tracing.fail(span, type(exc).__name__)
                span.end()
            raise
        self._metrics.publish_seconds.observe(time.perf_counter() - started)
        if span is not None:
            span.end()
