"""Group commit: every lead accepted while a publish is in flight goes into the next message.

The broker charges per message (a confirmed persistent publish costs it far
more CPU than the bytes do), so one message per lead caps the proxy at the
broker's message rate. Here an accepted lead joins the open batch; a batch
goes out as ONE persistent, mandatory message with a publisher confirm as
soon as the publishes in flight allow it (so an idle proxy publishes at once
and adds no latency) or when it reaches its size or byte cap. Every lead in
it is answered only after that message's confirm: a nack, a return, a
timeout or a lost connection fails every lead in it (503 upstream), and a
lead still waiting when its own PUBLISH_TIMEOUT runs out fails then, never
later. A batch of one is published as the plain single-lead message.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from pamqp.commands import Basic

from leadline import batch as envelope
from leadline import tracing
from leadline.broker import Broker
from leadline.errors import PublishNotConfirmed
from leadline.message import lead_properties
from leadline.topology import Topology

# Publishes in flight at once: one, so that every lead arriving meanwhile
# rides in the next message (measured in `./dev bench proxy`).
MAX_IN_FLIGHT = 1
MAX_LEADS = 256
MAX_BYTES = 512 * 1024


@dataclass(eq=False, slots=True)
class Pending:
    """One accepted lead waiting for its batch's confirm."""

    entry: envelope.Entry
    span: tracing.Span | None  # the request's SERVER span, when tracing is on
    deadline: float
    future: asyncio.Future[None] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class GroupCommit:
    def __init__(self, broker: Broker, topology: Topology, *, timeout: float,
                 tracing_: tracing.Tracing | None = None, node: Callable[[], tuple[str | None, int | None]],
                 observe: Callable[[int, float], None] = lambda leads, seconds: None,
                 failed: Callable[[BaseException], None] = lambda exc: None,
                 max_in_flight: int = MAX_IN_FLIGHT, max_leads: int = MAX_LEADS,
                 max_bytes: int = MAX_BYTES) -> None:
        self._broker = broker
        self._topology = topology
        self._timeout = timeout
        self._tracing = tracing_
        self._node = node
        self._observe = observe  # (leads in the message, seconds to the confirm), for metrics
        self._failed = failed  # a publish that failed (an unroutable one makes the owner redeclare)
        self._max_in_flight = max_in_flight
        self._max_leads = max_leads
        self._max_bytes = max_bytes
        self._open: list[Pending] = []
        self._open_bytes = 0
        self._in_flight = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def publish(self, entry: envelope.Entry, span: tracing.Span | None = None) -> None:
        """Return once the message holding `entry` is confirmed; `PublishNotConfirmed` or
        `BrokerUnavailable` otherwise, always within the publish timeout."""
        loop = asyncio.get_running_loop()
        pending = Pending(entry, span, time.monotonic() + self._timeout)
        self._open.append(pending)
        self._open_bytes += len(entry.fields)
        if (self._in_flight < self._max_in_flight or len(self._open) >= self._max_leads
                or self._open_bytes >= self._max_bytes):
            self._flush()
        # A timer, not wait_for: this is every request's path, and wait_for costs a task.
        timer = loop.call_later(self._timeout, self._expire, pending)
        try:
            await pending.future
        finally:
            timer.cancel()

    def _expire(self, pending: Pending) -> None:
        """Its own timeout ran out: 503 now. A lead whose batch has not left stays out of it."""
        if pending.future.done():
            return
        if pending in self._open:
            self._open.remove(pending)
            self._open_bytes -= len(pending.entry.fields)
        pending.future.set_exception(PublishNotConfirmed(f"no confirm within {self._timeout:g}s"))

    def _flush(self) -> None:
        if not self._open:
            return
        batch, self._open, self._open_bytes = self._open, [], 0
        self._in_flight += 1
        task = asyncio.create_task(self._send(batch), name="group-commit")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, batch: list[Pending]) -> None:
        started = time.perf_counter()
        span = self._producer_span(batch)
        try:
            body, exchange, routing_key, properties = self._message(batch, span)
            # Bounded by the oldest lead's deadline: a lead is answered within its timeout.
            timeout = max(0.001, min(p.deadline for p in batch) - time.monotonic())
            await self._broker.publish(body, exchange=exchange, routing_key=routing_key,
                                       properties=properties, timeout=timeout)
        except Exception as exc:
            self._failed(exc)
            if span is not None:
                tracing.fail(span, type(exc).__name__)
            for pending in batch:
                if not pending.future.done():
                    pending.future.set_exception(exc)
        else:
            self._observe(len(batch), time.perf_counter() - started)
            for pending in batch:
                if not pending.future.done():
                    pending.future.set_result(None)
        finally:
            if span is not None:
                span.end()
            self._in_flight -= 1
            self._flush()

    def _message(self, batch: list[Pending], span: tracing.Span | None
                 ) -> tuple[bytes, str, str, Basic.Properties]:
        exchange = self._topology.work_exchange
        if len(batch) == 1:
            entry = batch[0].entry
            traceparent = tracing.traceparent_of(span, entry.traceparent) if span is not None \
                else entry.traceparent
            return entry.fields, exchange, self._topology.routing_key(entry.form), lead_properties(
                submission_id=entry.id, form=entry.form, schema_id=entry.schema,
                traceparent=traceparent or None, received_at=entry.received_at or None, stamp=entry.stamp)
        message_traceparent = tracing.traceparent_of(span) if span is not None else None
        entries = [p.entry for p in batch]
        return (envelope.encode(entries), exchange, envelope.ROUTING_KEY,
                envelope.properties(len(entries), message_traceparent))

    def _producer_span(self, batch: list[Pending]) -> tracing.Span | None:
        """One PRODUCER span per message: the first lead's child, linked to the others'."""
        if self._tracing is None or not self._tracing.enabled:
            return None
        spans = [p.span for p in batch if p.span is not None]
        if not spans:
            return None
        host, port = self._node()
        exchange = self._topology.work_exchange
        routing_key = (self._topology.routing_key(batch[0].entry.form) if len(batch) == 1
                       else envelope.ROUTING_KEY)
        return self._tracing.producer_span(
            exchange=exchange, routing_key=routing_key,
            message_id=batch[0].entry.id if len(batch) == 1 else None, parent=spans[0],
            body_size=sum(len(p.entry.fields) for p in batch), server_address=host, server_port=port,
            batch_count=len(batch) if len(batch) > 1 else None,
            links=[tracing.span_link(other) for other in spans[1:]])

    async def close(self) -> None:
        """Let the publishes in flight finish (each is bounded by its timeout)."""
        with contextlib.suppress(Exception):
            await asyncio.gather(*self._tasks, return_exceptions=True)
