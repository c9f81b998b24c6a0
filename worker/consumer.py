"""The consume loop: each lead reaches the CRM once, a retry tier, or the DLQ, and outages wait.

Rule 1 of the design: a delivery is acked only after every lead in it has an
outcome: the CRM accepted it, or the broker confirmed its copy on a retry
tier or the dead-letter queue. When a copy is not confirmed the delivery
stays unacked and comes back after a reconnect.

A lead's own failure goes through the retry tiers (never `nack(requeue=True)`,
which would retry hot). An outage is not a lead's failure (the CRM down,
refusing our credentials, out of quota, asking us to wait longer than we hold
leads): the worker pauses. It stops consuming, hands the deliveries it holds
back with `nack(requeue=True)` once (no attempt spent; nothing is consumed
again until the CRM answers), probes the CRM every CRM_PROBE_INTERVAL, and
resumes when a probe succeeds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiormq.abc import AbstractChannel, DeliveredMessage
from pamqp.commands import Basic

from leadline import batch as envelope
from leadline import logs
from leadline.broker import TRANSIENT_ERRORS, Broker
from leadline.errors import BrokerUnavailable, PublishNotConfirmed
from leadline.logs import mask_email, trace_id
from leadline.message import H_CRM_PROGRESS, H_TRACEPARENT, republish_properties, utc_now_iso
from leadline.schemas import FormSchema, load_schemas
from leadline.topology import declare_all
from leadline.tracing import INVALID_SPAN, Link, Span, Tracing, fail
from worker import story
from worker.crm.base import (
    REASON_FAILING,
    REASON_QUOTA,
    REASON_RATE_LIMITED,
    Connector,
    Lead,
    Outcome,
    Verdict,
    call_failed,
)
from worker.crm.settings import build_connector
from worker.dispatch import Dispatcher
from worker.health import CrmHealth
from worker.intake import Poison, read_lead
from worker.metrics import Metrics
from worker.retry import GiveUp, after_temporary_failure
from worker.settings import Settings

log = logging.getLogger("leadline.worker")

PUBLISH_TIMEOUT = 5.0
# Waits between tries of an unconfirmed retry/DLQ publish before handing the
# deliveries back through a reconnect.
REPUBLISH_BACKOFF = (0.0, 0.5, 1.0)
# A vendor's "wait" up to this long holds the leads in hand; a longer one pauses.
MAX_HOLD_SECONDS = 60.0
# Pauses for "writes fail while probes pass" wait longer each time, up to 16 probe intervals.
MAX_FAILING_BACKOFF = 4
# On each lead's CONSUMER span: done, temporary, permanent, handed_back (an outage).
OUTCOME_ATTRIBUTE = "leadline.crm.outcome"


@dataclass(eq=False)
class Delivery:
    """One broker message and how many of its leads still lack an outcome."""

    message: DeliveredMessage
    open: int
    leads: int = 1  # it came with, for the accounting of batch messages
    returned: bool = False  # a lead goes back to the queue (outage): nack, requeue
    failed: bool = False  # a copy was not confirmed: never ack


@dataclass(eq=False)
class Ticket:
    """One lead on its way, with what is needed to copy it to a tier or the DLQ."""

    lead: Lead
    delivery: Delivery
    body: bytes
    properties: Basic.Properties
    headers: dict[str, Any]
    ctx: dict[str, Any] = field(default_factory=dict)
    span: Span = INVALID_SPAN  # CONSUMER: from the delivery to this lead's outcome


@dataclass(frozen=True, slots=True)
class Pause:
    reason: str
    since: float
    evidence: str


class Worker:
    def __init__(
        self,
        settings: Settings,
        *,
        connector: Connector | None = None,
        metrics: Metrics | None = None,
        forms: dict[str, FormSchema] | None = None,
        tracing: Tracing | None = None,
    ) -> None:
        self.settings = settings
        self.topology = settings.topology
        self.metrics = metrics or Metrics()
        self.forms = forms if forms is not None else load_schemas()
        self.tracing = tracing or Tracing(settings.tracing, scope="leadline.worker")
        self.connector: Connector = connector or build_connector(
            crm=settings.crm, vendor=settings.vendor, crm_url=settings.crm_url, timeout=settings.crm_timeout,
            rate=settings.crm_rate_limit, max_connections=settings.calls_in_flight, forms=self.forms,
            tracing=self.tracing)
        self.health = CrmHealth(self.connector.probe)
        self.prefetch = settings.deliveries_in_flight
        self.dispatcher: Dispatcher[Ticket] = Dispatcher(
            self.connector, self.connector.limiter, self._on_outcomes,
            batch_size=settings.batch_size, linger=settings.crm_batch_linger,
            concurrency=settings.calls_in_flight,
            more_may_come=lambda: len(self._deliveries) < self.prefetch)
        self.dispatcher.batch_sizes = self.metrics.crm_batch_size.observe
        self.dispatcher.call_spans = lambda batch: [ticket.span for ticket in batch]
        self.broker = Broker(settings.amqp_url, name="leadline-worker",
                             on_channel=self._on_channel, on_state=self._on_state,
                             on_node=self.metrics.set_broker_node)
        self.paused: Pause | None = None
        self._deliveries: set[Delivery] = set()
        self._consumer: tuple[AbstractChannel, str] | None = None
        self._consume_lock = asyncio.Lock()
        self._stopping = False
        self._handing_back: asyncio.Task[None] | None = None
        self._probing: asyncio.Task[None] | None = None
        self._failing_pauses = 0
        self.metrics.set_paused(None)

    @property
    def ready(self) -> bool:
        return self.broker.connected and not self._stopping

    @property
    def in_flight(self) -> int:
        """Deliveries taken and not yet settled."""
        return len(self._deliveries)

    async def start(self) -> None:
        self.tracing.start()
        self.dispatcher.start()
        await self.broker.start()

    async def stop(self) -> None:
        """Stop taking leads, let calls in flight finish within the grace, then close.

        Whatever is still unsettled after the grace goes back unacked: closing
        the connection hands it to the broker for the next worker.
        """
        self._stopping = True
        if self._probing is not None:
            self._probing.cancel()
        await self._cancel_consumer()
        self.dispatcher.pause()  # the waiting leads go back with the connection
        if self.dispatcher.calls_in_flight:
            log.info("waiting for CRM calls in flight", extra={"calls": self.dispatcher.calls_in_flight})
            if not await self.dispatcher.wait_calls(self.settings.shutdown_grace):
                log.warning("grace over: handing leads in flight back to the broker",
                            extra={"in_flight": len(self._deliveries)})
                self.dispatcher.cancel_calls()
                await self.dispatcher.wait_calls(2.0)
        await self.dispatcher.stop()
        if self._handing_back is not None:
            self._handing_back.cancel()
        await self.broker.stop()
        await self.connector.close()
        await self.tracing.shutdown()
        log.info("worker stopped")

    # -- broker side -------------------------------------------------------

    async def _on_channel(self, channel: AbstractChannel) -> None:
        # Runs on every (re)connect: declare, then consume on the new channel
        # unless the CRM is out (resuming consumes then).
        self._consumer = None
        self._forget_closed_channels()
        await declare_all(channel, self.topology)
        await channel.basic_qos(prefetch_count=self.prefetch)
        await self._consume(channel)

    async def _consume(self, channel: AbstractChannel) -> None:
        async with self._consume_lock:
            if self._stopping or self.paused is not None or channel.is_closed:
                return
            if self._consumer is not None and self._consumer[0] is channel:
                return
            ok = await channel.basic_consume(self.topology.work_queue, self._on_message)
            assert ok.consumer_tag is not None
            self._consumer = (channel, ok.consumer_tag)

    def _forget_closed_channels(self) -> None:
        """Deliveries of a channel that closed: the broker has requeued them already.

        Their waiting leads leave the line; leads in a call finish it, and
        their ack is lost with the channel (the CRM write is idempotent).
        """
        gone = self.dispatcher.discard(lambda t: t.delivery.message.channel.is_closed)
        stale = {d for d in self._deliveries if d.message.channel.is_closed}
        self._deliveries -= stale
        if stale:
            self.metrics.in_flight.set(len(self._deliveries))
            log.info("dropped the deliveries of a closed channel; the broker redelivers them",
                     extra={"deliveries": len(stale), "waiting_leads": len(gone)})

    def _on_state(self, connected: bool) -> None:
        self.metrics.connected.set(1 if connected else 0)

    async def _cancel_consumer(self) -> None:
        async with self._consume_lock:
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

    # -- taking deliveries -------------------------------------------------

    async def _on_message(self, message: DeliveredMessage) -> None:
        try:
            await self._take(message)
        except Exception:
            # A bug, not a CRM failure: leave the delivery unacked and hand it
            # back; the work queue's delivery limit dead-letters a repeat offender.
            log.exception("unexpected error while taking a delivery; handing it back",
                          extra={"submission_id": message.header.properties.message_id})
            self._hand_back()

    async def _take(self, message: DeliveredMessage) -> None:
        if self._stopping or self.paused is not None:
            # Sent before our basic.cancel arrived: straight back, unread.
            await self._nack(message)
            return
        props = message.header.properties
        redelivered = bool(getattr(message.delivery, "redelivered", False))
        if envelope.is_batch(props):
            await self._take_batch(message, redelivered)
            return
        delivery = self._hold(message, 1)
        await self._take_lead(delivery, message.body, props, redelivered=redelivered)

    def _hold(self, message: DeliveredMessage, leads: int) -> Delivery:
        delivery = Delivery(message, open=leads, leads=leads)
        self._deliveries.add(delivery)
        self.metrics.in_flight.set(len(self._deliveries))
        return delivery

    async def _take_batch(self, message: DeliveredMessage, redelivered: bool) -> None:
        """A batch from the proxy's group commit: each lead its own ticket, the ack after the last."""
        props = message.header.properties
        try:
            entries = envelope.decode(message.body)
        except envelope.NotABatch as exc:
            delivery = self._hold(message, 1)
            ticket = Ticket(Lead(props.message_id or "", "", {}), delivery, message.body, props,
                            dict(props.headers or {}), {"submission_id": props.message_id})
            ok = await self._dead_letter(ticket, attempts=0, kind=story.KIND_POISON, reason="poison",
                                         error_class="NotABatch", error=str(exc), crm_status=None)
            await self._close(ticket, ok)
            return
        if redelivered:
            # A worker died holding it: split it into single-lead messages first, so that
            # a lead that kills workers is isolated and the delivery limit catches it alone.
            await self._split(message, entries)
            return
        self.metrics.batch_leads.observe(len(entries))
        if not entries:
            if await self._ack(message):
                self._batch_acked(0)
            return
        delivery = self._hold(message, len(entries))
        link = self.tracing.link(story.text((props.headers or {}).get(H_TRACEPARENT)))
        for entry in entries:
            body, own = envelope.single(entry)
            await self._take_lead(delivery, body, own, redelivered=False, link=link)

    async def _take_lead(self, delivery: Delivery, body: bytes, props: Basic.Properties, *,
                         redelivered: bool, link: Link | None = None) -> None:
        message = delivery.message
        headers: dict[str, Any] = dict(props.headers or {})
        submission_id = props.message_id or ""
        ctx: dict[str, Any] = {"submission_id": submission_id,
                               "trace_id": trace_id(story.text(headers.get(H_TRACEPARENT)) or None)}
        span = self.tracing.consumer_span(
            queue=self.topology.work_queue, exchange=str(getattr(message.delivery, "exchange", "") or ""),
            routing_key=str(getattr(message.delivery, "routing_key", "") or ""), message_id=submission_id,
            traceparent=headers.get(H_TRACEPARENT), delivery_tag=message.delivery_tag,
            body_size=len(body), links=[link])
        lead = read_lead(body, headers, submission_id, self.forms, redelivered=redelivered)
        if isinstance(lead, Poison):
            ticket = Ticket(Lead(submission_id, "", {}), delivery, body, props, headers, ctx, span)
            fail(span, lead.error_class)
            ok = await self._dead_letter(ticket, attempts=story.attempts_of(headers), kind=story.KIND_POISON,
                                         reason="poison", error_class=lead.error_class, error=lead.reason,
                                         crm_status=None)
            await self._close(ticket, ok)
            return
        self.dispatcher.submit(Ticket(lead, delivery, body, props, headers, ctx, span))

    async def _split(self, message: DeliveredMessage, entries: list[envelope.Entry]) -> None:
        """Each lead of a redelivered batch as its own message on the work queue, confirmed; then the ack."""
        for entry in entries:
            body, own = envelope.single(entry, split_from=message.header.properties.message_id or "batch")
            if not await self._copy(message, body, own, self.topology.work_queue,
                                    {"submission_id": entry.id}):
                return  # unacked: the batch comes back and is split again (duplicates are harmless)
        self.metrics.batches_split.inc()
        log.info("redelivered batch split into single leads",
                 extra={"batch": message.header.properties.message_id, "leads": len(entries)})
        if await self._ack(message):
            self._batch_acked(len(entries))

    def _batch_acked(self, leads: int) -> None:
        """A batch message left the work queue: its leads are now counted where they went."""
        self.metrics.batches_acked.inc()
        self.metrics.batch_leads_acked.inc(leads)

    # -- outcomes ------------------------------------------------------------

    async def _on_outcomes(self, batch: list[Ticket], outcomes: list[Outcome], started: float) -> None:
        """One call's outcomes, lead by lead (the dispatcher calls this when a call ends)."""
        try:
            await self._settle_call(batch, outcomes, started)
        except Exception:
            # A bug, not a CRM failure: whatever was not settled goes back with the connection.
            log.exception("unexpected error while settling a CRM call; handing its deliveries back",
                          extra={"leads": len(batch)})
            self._hand_back()

    async def _settle_call(self, batch: list[Ticket], outcomes: list[Outcome], started: float) -> None:
        seconds = time.monotonic() - started
        self.health.record([t.lead.submission_id for t in batch], outcomes)
        if any(o.answered for o in outcomes):
            self._failing_pauses = 0
        self.metrics.observe_call(outcomes, seconds)
        limited = [t for t, o in zip(batch, outcomes, strict=True) if o.verdict is Verdict.RATE_LIMITED]
        if limited:
            waits = [o.retry_after for o in outcomes if o.verdict is Verdict.RATE_LIMITED]
            self.connector.limiter.refused(max((w for w in waits if w is not None), default=None))
            self.metrics.crm_rate_limited.inc()
            log.warning("CRM rate limit hit: waiting", extra={
                "crm": self.connector.name, "leads": len(limited), "wait_s": waits[0]})
            if self.paused is None:
                self.dispatcher.put_back(limited)
            else:
                for ticket in limited:
                    await self._return(ticket)
        judgement = None
        for ticket, outcome in zip(batch, outcomes, strict=True):
            verdict = outcome.verdict
            if verdict is Verdict.RATE_LIMITED:
                continue
            if verdict is Verdict.CALL_FAILED:
                if judgement is None:  # once per call: its leads share one fate
                    judgement = await self.health.judge(started)
                if judgement.outage is not None:
                    evidence = judgement.evidence.summary if judgement.evidence else outcome.summary
                    await self._pause(judgement.outage, evidence)
                    await self._return(ticket)
                    continue
                verdict = Verdict.TEMPORARY
            if verdict is Verdict.OUTAGE:
                await self._pause(outcome.reason, outcome.summary, outcome.retry_after)
                await self._return(ticket)
                continue
            await self._settle(ticket, verdict, outcome, seconds, len(batch))
        wait, why = self.connector.limiter.held_for()
        if wait > MAX_HOLD_SECONDS:
            await self._pause(REASON_QUOTA if why == "quota" else REASON_RATE_LIMITED,
                              f"the CRM asked us to wait {wait:.0f}s", wait)

    async def _settle(self, ticket: Ticket, verdict: Verdict, outcome: Outcome, seconds: float,
                      batch: int) -> None:
        lead = ticket.lead
        ctx = {**ticket.ctx, "attempt": lead.attempt, "crm_status": outcome.status,
               "crm_ms": round(seconds * 1000, 1), "batch": batch}
        ticket.span.set_attribute(OUTCOME_ATTRIBUTE, verdict.value)
        if verdict is Verdict.PERMANENT:
            fail(ticket.span, outcome.error_class or "refused")
        if verdict is Verdict.DONE:
            self.metrics.synced.inc()
            if outcome.record_id:
                ctx["crm_record"] = outcome.record_id
            if log.isEnabledFor(logging.INFO):  # every lead's line: the path without a LogRecord
                logs.line(log, logging.INFO, "lead synced", ctx)
            await self._close(ticket, True)
        elif verdict is Verdict.PERMANENT:
            ok = await self._dead_letter(ticket, attempts=lead.attempt, kind=story.KIND_PERMANENT,
                                         reason="permanent", **_failure(outcome), ctx=ctx)
            await self._close(ticket, ok)
        else:
            await self._close(ticket, await self._temporary(ticket, outcome, ctx))

    async def _temporary(self, ticket: Ticket, outcome: Outcome, ctx: dict[str, Any]) -> bool:
        attempt = ticket.lead.attempt
        decision = after_temporary_failure(attempt, self.settings.max_attempts, self.settings.retry_delays,
                                           outcome.retry_after)
        if isinstance(decision, GiveUp):
            return await self._dead_letter(ticket, attempts=attempt, kind=story.KIND_TEMPORARY,
                                           reason="attempts_exhausted", **_failure(outcome), ctx=ctx,
                                           progress=outcome.progress)
        queue = self.topology.retry_queue(decision.delay)
        headers = story.failure_headers(ticket.headers, attempts=attempt, kind=story.KIND_TEMPORARY,
                                        now=utc_now_iso(), dead=False, **_failure(outcome))
        _add_progress(headers, outcome.progress)
        if not await self._republish(ticket, queue, headers):
            return False
        tier = queue.rsplit(".", 1)[-1]
        self.metrics.retried.labels(tier).inc()
        if log.isEnabledFor(logging.INFO):
            logs.line(log, logging.INFO, "lead will be retried",
                      {**ctx, "retry_tier": tier, "error": outcome.summary[:200]})
        return True

    async def _dead_letter(
        self, ticket: Ticket, *, attempts: int, kind: str, reason: str, error_class: str, error: str,
        crm_status: int | None, ctx: dict[str, Any] | None = None, progress: Mapping[str, str] | None = None,
    ) -> bool:
        headers = story.failure_headers(ticket.headers, attempts=attempts, kind=kind, error_class=error_class,
                                        error=error, crm_status=crm_status, now=utc_now_iso(), dead=True)
        _add_progress(headers, progress or {})
        if not await self._republish(ticket, self.topology.dead_letter_queue, headers):
            return False
        self.metrics.dead_lettered.labels(reason).inc()
        extra = {**(ctx or ticket.ctx), "reason": reason, "error_class": error_class, "error": error[:200]}
        if "email" in ticket.lead.fields:
            extra["email"] = mask_email(ticket.lead.fields["email"])
        log.warning("lead dead-lettered", extra=extra)
        return True

    async def _republish(self, ticket: Ticket, queue: str, headers: dict[str, Any]) -> bool:
        """A copy of the ticket's lead with new headers to `queue`, confirmed; False: do not ack."""
        properties = republish_properties(ticket.properties, headers)
        return await self._copy(ticket.delivery.message, ticket.body, properties, queue, ticket.ctx)

    async def _copy(self, message: DeliveredMessage, body: bytes, properties: Basic.Properties, queue: str,
                    ctx: dict[str, Any]) -> bool:
        """Publish `body` to `queue` by name with a confirm; False means: do not ack `message`."""
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
        for wait in REPUBLISH_BACKOFF:
            if wait:
                await asyncio.sleep(wait)
            try:
                await self.broker.publish(body, exchange="", routing_key=queue,
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

    # -- settling deliveries ---------------------------------------------------

    async def _close(self, ticket: Ticket, ok: bool) -> None:
        if not ok:
            fail(ticket.span, "NotConfirmed")
        ticket.span.end()
        delivery = ticket.delivery
        delivery.open -= 1
        delivery.failed |= not ok
        if delivery.open == 0:
            await self._finish(delivery)

    async def _return(self, ticket: Ticket) -> None:
        ticket.span.set_attribute(OUTCOME_ATTRIBUTE, "handed_back")
        ticket.delivery.returned = True
        await self._close(ticket, True)

    async def _finish(self, delivery: Delivery) -> None:
        self._deliveries.discard(delivery)
        self.metrics.in_flight.set(len(self._deliveries))
        if delivery.failed:
            return  # unacked: it comes back with the connection (see _republish)
        if delivery.returned:
            await self._nack(delivery.message)
        elif await self._ack(delivery.message) and envelope.is_batch(delivery.message.header.properties):
            self._batch_acked(delivery.leads)

    async def _ack(self, message: DeliveredMessage) -> bool:
        """False: the ack was lost with the channel and the message comes back."""
        assert message.delivery_tag is not None
        try:
            await message.channel.basic_ack(message.delivery_tag)
        except TRANSIENT_ERRORS:
            # The channel died first: the broker redelivers, the CRM dedupes.
            log.info("ack lost with the channel; the lead will be redelivered",
                     extra={"submission_id": message.header.properties.message_id})
            return False
        return True

    async def _nack(self, message: DeliveredMessage) -> None:
        """Back to the queue as it was: no attempt spent (only ever during a pause)."""
        assert message.delivery_tag is not None
        with contextlib.suppress(*TRANSIENT_ERRORS):
            await message.channel.basic_nack(message.delivery_tag, requeue=True)

    # -- pause and resume --------------------------------------------------

    async def _pause(self, reason: str, evidence: str, wait: float | None = None) -> None:
        if self.paused is not None:
            if reason != self.paused.reason:
                self.paused = Pause(reason, self.paused.since, evidence)
                self.metrics.set_paused(reason)
            return
        self.paused = Pause(reason, time.monotonic(), evidence)
        self.metrics.set_paused(reason)
        first_wait = self.settings.crm_probe_interval
        if reason == REASON_FAILING:
            first_wait *= 2 ** min(self._failing_pauses, MAX_FAILING_BACKOFF)
            self._failing_pauses += 1
        if wait is not None:
            first_wait = max(wait, min(first_wait, 1.0))
        log.warning("CRM outage: pausing, leads wait in the queue", extra={
            "crm": self.connector.name, "reason": reason, "error": evidence[:300],
            "probe_in_s": round(first_wait, 1), "handing_back": len(self._deliveries)})
        await self._cancel_consumer()
        for ticket in self.dispatcher.pause():
            await self._return(ticket)
        if not self._stopping:
            self._probing = asyncio.create_task(self._probe_until_back(first_wait), name="crm-probe")

    async def _probe_until_back(self, wait: float) -> None:
        while not self._stopping:
            await asyncio.sleep(wait)
            try:
                outcome = await self.health.probe()
            except Exception as exc:  # a bug in a probe must not leave the worker paused for good
                log.exception("CRM probe failed unexpectedly", extra={"crm": self.connector.name})
                outcome = call_failed(None, type(exc).__name__, str(exc))
            back = outcome.verdict in {Verdict.DONE, Verdict.RATE_LIMITED}
            self.metrics.crm_probes.labels("ok" if back else "failed").inc()
            if back:
                await self._resume()
                return
            paused = self.paused
            if paused is not None and outcome.verdict is Verdict.OUTAGE and outcome.reason != paused.reason:
                self.paused = Pause(outcome.reason, paused.since, outcome.summary)
                self.metrics.set_paused(outcome.reason)
            log.info("CRM still out", extra={"crm": self.connector.name, "error": outcome.summary[:300]})
            wait = self.settings.crm_probe_interval

    async def _resume(self) -> None:
        paused, self.paused = self.paused, None
        self.metrics.set_paused(None)
        out_for = time.monotonic() - paused.since if paused is not None else 0.0
        log.warning("CRM answers again: resuming", extra={
            "crm": self.connector.name, "paused_s": round(out_for, 1),
            "reason": paused.reason if paused else ""})
        self.dispatcher.resume()
        with contextlib.suppress(BrokerUnavailable, *TRANSIENT_ERRORS):
            await self._consume(self.broker.channel)


def _failure(outcome: Outcome) -> dict[str, Any]:
    """The story fields of a failed CRM call."""
    if outcome.status is None:
        return {"error_class": outcome.error_class, "error": outcome.error, "crm_status": None}
    error_class = outcome.error_class or f"HTTP{outcome.status}"
    return {"error_class": error_class, "error": outcome.summary, "crm_status": outcome.status}


def _add_progress(headers: dict[str, Any], progress: Mapping[str, str]) -> None:
    if progress:
        headers[H_CRM_PROGRESS] = orjson.dumps(dict(progress)).decode()
