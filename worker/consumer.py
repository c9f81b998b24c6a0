"""The consume loop: each lead reaches the CRM once, a retry tier, or the DLQ.

Rule 1 of the design: a delivery is acked only after the CRM answered 2xx or
after the broker confirmed its copy on a retry tier or the dead-letter queue.
When that copy is not confirmed the delivery stays unacked and comes back
after a reconnect. A failure is never `nack(requeue=True)`: that would retry
hot and add no `x-death`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from aiormq.abc import AbstractChannel, DeliveredMessage

from leadline.broker import TRANSIENT_ERRORS, Broker
from leadline.errors import BrokerUnavailable, PublishNotConfirmed
from leadline.logs import mask_email, trace_id
from leadline.message import H_TRACEPARENT, republish_properties, utc_now_iso
from leadline.schemas import FormSchema, load_schemas
from leadline.topology import declare_all
from worker import story
from worker.classify import CrmResult, Verdict, classify, retry_after_seconds
from worker.crm import CrmAdapter, Lead, WebhookCrm
from worker.intake import Poison, read_lead
from worker.metrics import Metrics
from worker.retry import GiveUp, after_temporary_failure
from worker.settings import Settings

log = logging.getLogger("leadline.worker")

PUBLISH_TIMEOUT = 5.0
# Waits between tries of an unconfirmed retry/DLQ publish before handing the
# deliveries back through a reconnect.
REPUBLISH_BACKOFF = (0.0, 0.5, 1.0)


class Worker:
    def __init__(
        self,
        settings: Settings,
        *,
        crm: CrmAdapter | None = None,
        metrics: Metrics | None = None,
        forms: dict[str, FormSchema] | None = None,
    ) -> None:
        self.settings = settings
        self.topology = settings.topology
        self.crm: CrmAdapter = crm or WebhookCrm(
            settings.crm_url, timeout=settings.crm_timeout, max_connections=settings.prefetch)
        self.metrics = metrics or Metrics()
        self.forms = forms if forms is not None else load_schemas()
        self.broker = Broker(settings.amqp_url, name="leadline-worker",
                             on_channel=self._on_channel, on_state=self._on_state)
        self._in_flight: set[asyncio.Task[Any]] = set()
        self._consumer: tuple[AbstractChannel, str] | None = None
        self._stopping = False
        self._handing_back: asyncio.Task[None] | None = None

    @property
    def ready(self) -> bool:
        return self.broker.connected and not self._stopping

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    async def start(self) -> None:
        await self.broker.start()

    async def stop(self) -> None:
        """Stop taking leads, let those in flight finish within the grace, then close.

        Whatever is still running after the grace is cancelled unacked: closing
        the connection hands it back to the broker for the next worker.
        """
        self._stopping = True
        await self._cancel_consumer()
        pending = set(self._in_flight)
        if pending:
            log.info("waiting for leads in flight", extra={"in_flight": len(pending)})
            _, pending = await asyncio.wait(pending, timeout=self.settings.shutdown_grace)
        if pending:
            log.warning("grace over: handing leads in flight back to the broker",
                        extra={"in_flight": len(pending)})
            for task in pending:
                task.cancel()
            await asyncio.wait(pending, timeout=2.0)
        if self._handing_back is not None:
            self._handing_back.cancel()
        await self.broker.stop()
        await self.crm.close()
        log.info("worker stopped")

    # -- broker side -------------------------------------------------------

    async def _on_channel(self, channel: AbstractChannel) -> None:
        # Runs on every (re)connect: declare, then consume on the new channel.
        await declare_all(channel, self.topology)
        await channel.basic_qos(prefetch_count=self.settings.prefetch)
        if self._stopping:
            return
        ok = await channel.basic_consume(self.topology.work_queue, self._on_message)
        assert ok.consumer_tag is not None
        self._consumer = (channel, ok.consumer_tag)

    def _on_state(self, connected: bool) -> None:
        self.metrics.connected.set(1 if connected else 0)

    async def _cancel_consumer(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is None:
            return
        channel, tag = consumer
        with contextlib.suppress(*TRANSIENT_ERRORS):
            if not channel.is_closed:
                await channel.basic_cancel(tag, timeout=5.0)

    def _hand_back(self) -> None:
        """Reconnect so that this channel's unacked deliveries return to the queue."""
        if self._stopping or (self._handing_back is not None and not self._handing_back.done()):
            return
        self._handing_back = asyncio.create_task(self.broker.reconnect())

    # -- one lead ------------------------------------------------------------

    async def _on_message(self, message: DeliveredMessage) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._in_flight.add(task)
        self.metrics.in_flight.inc()
        try:
            await self._handle(message)
        except Exception:
            # A bug, not a CRM failure: leave the delivery unacked and hand it
            # back; the work queue's delivery limit dead-letters a repeat offender.
            log.exception("unexpected error while handling a lead; handing it back",
                          extra={"submission_id": message.header.properties.message_id})
            self._hand_back()
        finally:
            self._in_flight.discard(task)
            self.metrics.in_flight.dec()

    async def _handle(self, message: DeliveredMessage) -> None:
        props = message.header.properties
        headers: dict[str, Any] = dict(props.headers or {})
        submission_id = props.message_id or ""
        ctx: dict[str, Any] = {"submission_id": submission_id,
               "trace_id": trace_id(story.text(headers.get(H_TRACEPARENT)) or None)}
        lead = read_lead(message.body, headers, submission_id, self.forms)
        if isinstance(lead, Poison):
            await self._dead_letter(message, headers, ctx, attempts=story.attempts_of(headers),
                                    kind=story.KIND_POISON, reason="poison",
                                    error_class=lead.error_class, error=lead.reason, crm_status=None)
            return

        attempt = story.attempts_of(headers) + 1
        result = await self.crm.send(lead)
        verdict = classify(result)
        self.metrics.crm_seconds.labels(verdict.value).observe(result.seconds)
        ctx.update(attempt=attempt, crm_status=result.status, crm_ms=round(result.seconds * 1000, 1))

        if verdict is Verdict.DONE:
            await self._ack(message)
            self.metrics.synced.inc()
            log.info("lead synced", extra=ctx)
        elif verdict is Verdict.PERMANENT:
            await self._dead_letter(message, headers, ctx, attempts=attempt, kind=story.KIND_PERMANENT,
                                    reason="permanent", lead=lead, **_failure(result))
        else:
            await self._temporary(message, headers, ctx, attempt, result, lead)

    async def _temporary(self, message: DeliveredMessage, headers: dict[str, Any], ctx: dict[str, Any],
                         attempt: int, result: CrmResult, lead: Lead) -> None:
        decision = after_temporary_failure(attempt, self.settings.max_attempts, self.settings.retry_delays,
                                           retry_after_seconds(result.retry_after))
        if isinstance(decision, GiveUp):
            await self._dead_letter(message, headers, ctx, attempts=attempt, kind=story.KIND_TEMPORARY,
                                    reason="attempts_exhausted", lead=lead, **_failure(result))
            return
        queue = self.topology.retry_queue(decision.delay)
        new_headers = story.failure_headers(
            headers, attempts=attempt, kind=story.KIND_TEMPORARY, now=utc_now_iso(), dead=False,
            **_failure(result))
        if await self._republish(message, queue, new_headers, ctx):
            await self._ack(message)
            tier = queue.rsplit(".", 1)[-1]
            self.metrics.retried.labels(tier).inc()
            log.info("lead will be retried", extra={**ctx, "retry_tier": tier, "error": result.summary})

    async def _dead_letter(
        self, message: DeliveredMessage, headers: dict[str, Any], ctx: dict[str, Any], *,
        attempts: int, kind: str, reason: str, error_class: str, error: str, crm_status: int | None,
        lead: Lead | None = None,
    ) -> None:
        new_headers = story.failure_headers(
            headers, attempts=attempts, kind=kind, error_class=error_class, error=error,
            crm_status=crm_status, now=utc_now_iso(), dead=True)
        if await self._republish(message, self.topology.dead_letter_queue, new_headers, ctx):
            await self._ack(message)
            self.metrics.dead_lettered.labels(reason).inc()
            extra = {**ctx, "reason": reason, "error_class": error_class, "error": error[:200]}
            if lead is not None and "email" in lead.fields:
                extra["email"] = mask_email(lead.fields["email"])
            log.warning("lead dead-lettered", extra=extra)

    async def _republish(self, message: DeliveredMessage, queue: str, headers: dict[str, Any],
                         ctx: dict[str, Any]) -> bool:
        """Publish a copy to `queue` with a confirm; False means: do not ack."""
        # Deliveries start while the broker's on_channel (declare, consume) is
        # still running, before it reports connected: wait for that, bounded.
        await self.broker.wait_connected(PUBLISH_TIMEOUT)
        try:
            current = self.broker.channel
        except BrokerUnavailable:
            # Make sure the delivery really goes back: drop the connection if
            # its channel is somehow still open.
            self._hand_back()
            return False
        if message.channel is not current:
            # Delivered on a channel that has since closed: its ack would be
            # lost and the broker already requeued it; publishing too would
            # only make a duplicate.
            return False
        properties = republish_properties(message.header.properties, headers)
        for wait in REPUBLISH_BACKOFF:
            if wait:
                await asyncio.sleep(wait)
            try:
                await self.broker.publish(message.body, exchange="", routing_key=queue,
                                          properties=properties, timeout=PUBLISH_TIMEOUT)
                return True
            except BrokerUnavailable:
                self.metrics.republish_failures.inc()
                return False
            except PublishNotConfirmed as exc:
                self.metrics.republish_failures.inc()
                log.warning("republish not confirmed", extra={**ctx, "queue": queue, "error": str(exc)})
        log.error("republish kept failing: handing deliveries back", extra={**ctx, "queue": queue})
        self._hand_back()
        return False

    async def _ack(self, message: DeliveredMessage) -> None:
        assert message.delivery_tag is not None
        try:
            await message.channel.basic_ack(message.delivery_tag)
        except TRANSIENT_ERRORS:
            # The channel died first: the broker redelivers, the CRM dedupes.
            log.info("ack lost with the channel; the lead will be redelivered",
                     extra={"submission_id": message.header.properties.message_id})


def _failure(result: CrmResult) -> dict[str, Any]:
    """The story fields of a failed CRM call."""
    if result.status is None:
        return {"error_class": result.error_class, "error": result.error, "crm_status": None}
    return {"error_class": f"HTTP{result.status}", "error": result.summary,
            "crm_status": result.status}
