"""Publishing an accepted lead: the one place the proxy touches the broker.

The `Broker` owns the connection and its reconnect loop; this adds what the
proxy needs on each new channel (the publishing topology, declared
idempotently) and turns a lead into a persistent message on the work exchange.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from aiormq.abc import AbstractChannel

from leadline.broker import Broker
from leadline.message import lead_properties
from leadline.schemas import FormSchema
from leadline.topology import Topology, declare_for_publishing
from proxy.metrics import Metrics


class Publisher:
    def __init__(self, url: str, topology: Topology, metrics: Metrics, *, timeout: float) -> None:
        self.topology = topology
        self.timeout = timeout
        self._metrics = metrics
        self.broker = Broker(url, name="leadline-proxy", on_channel=self._declare,
                             on_state=metrics.set_broker_state, on_node=metrics.set_broker_node)
        metrics.set_broker_nodes(self.broker.nodes)
        metrics.watch_blocked(lambda: self.broker.blocked)

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
        await self.broker.stop()

    async def _declare(self, channel: AbstractChannel) -> None:
        await declare_for_publishing(channel, self.topology)

    async def publish(self, form: FormSchema, fields: dict[str, Any], *,
                      submission_id: str, traceparent: str) -> None:
        """Return once the broker confirmed; `BrokerUnavailable`/`PublishNotConfirmed` otherwise."""
        properties = lead_properties(submission_id=submission_id, form=form.name,
                                     schema_id=form.schema_id, traceparent=traceparent)
        started = time.perf_counter()
        await self.broker.publish(
            orjson.dumps(fields), exchange=self.topology.work_exchange,
            routing_key=self.topology.routing_key(form.name), properties=properties,
            timeout=self.timeout,
        )
        self._metrics.publish_seconds.observe(time.perf_counter() - started)
