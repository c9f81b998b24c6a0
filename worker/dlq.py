"""The dead-letter queue: read letters' stories, replay and purge them.

Browsing takes letters with `basic_get` without acking and hands them back by
closing the channel: RabbitMQ requeues unacked messages of a classic queue at
their original positions, so looking never loses or reorders anything.
Replay publishes a copy to the work exchange and acks the letter only after
the broker confirmed the copy: a crash in between leaves a duplicate, never
a loss (the CRM write is idempotent). `dlq process` (worker/dlq_process.py)
drives the same machinery letter by letter: `open_dlq`, `take`, `replay`.
`erase` takes every letter, acks those of one person, and hands the rest back
in order. A letter another tool holds at that moment (a `dlq process` pass,
a console page being drawn) is invisible to it: run it when none does.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import aiormq
import orjson
from aiormq.abc import AbstractChannel, AbstractConnection, DeliveredMessage
from pamqp.commands import Basic

from leadline.errors import PublishNotConfirmed
from leadline.message import (
    H_ATTEMPTS,
    H_CRM_STATUS,
    H_DEAD_AT,
    H_ERROR,
    H_ERROR_CLASS,
    H_FAILURE_KIND,
    H_FIRST_FAILURE_AT,
    H_FORM,
    H_LAST_FAILURE_AT,
    H_RECEIVED_AT,
    H_REDRIVES,
    republish_properties,
    utc_now_iso,
)
from leadline.topology import Topology, declare_for_publishing
from worker import story

H_REPLAYED_AT = "x-leadline-replayed-at"
PUBLISH_TIMEOUT = 10.0
GET_TIMEOUT = 10.0
PERSONAL_DATA_NOTICE = ("contains personal data (the leads' names and e-mail addresses): "
                        "keep it only as long as needed, share it with nobody")
# The failure story a replayed lead starts without: it gets a fresh set of attempts.
RESET_ON_REPLAY = (H_FIRST_FAILURE_AT, H_LAST_FAILURE_AT, H_ERROR_CLASS, H_ERROR, H_CRM_STATUS,
                   H_FAILURE_KIND, H_DEAD_AT)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    id: str
    form: str
    attempts: int
    kind: str  # temporary | permanent | poison, or the broker's reason (delivery_limit, ...)
    error_class: str
    error: str
    crm_status: int | None
    failed_at: str
    first_failure_at: str
    dead_at: str
    received_at: str
    redrives: int
    body: bytes = field(repr=False)
    headers: Mapping[str, Any] = field(repr=False)

    def summary(self) -> dict[str, Any]:
        """The `list --json` line: the story without the lead's personal data."""
        return {
            "id": self.id, "form": self.form, "attempts": self.attempts, "kind": self.kind,
            "status": self.crm_status, "error_class": self.error_class, "error": self.error,
            "failed_at": self.failed_at, "first_failure_at": self.first_failure_at,
            "dead_at": self.dead_at, "received_at": self.received_at, "redrives": self.redrives,
        }

    def full(self) -> dict[str, Any]:
        """The summary plus the lead itself (personal data)."""
        try:
            lead: Any = orjson.loads(self.body)
        except orjson.JSONDecodeError:
            lead = self.body.decode("utf-8", "replace")
        return {**self.summary(), "lead": lead}


def _iso(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return story.text(value)


def describe(body: bytes, properties: Basic.Properties) -> DeadLetter:
    """A letter's story from its headers; pure.

    Our own headers tell it when the worker dead-lettered the lead. A lead the
    broker dead-lettered itself (the work queue's delivery limit: it was handed
    out 50 times and never settled) carries only `x-death`; that becomes the story.
    """
    headers: Mapping[str, Any] = properties.headers or {}
    kind = story.text(headers.get(H_FAILURE_KIND))
    error_class = story.text(headers.get(H_ERROR_CLASS))
    error = story.text(headers.get(H_ERROR))
    failed_at = story.text(headers.get(H_LAST_FAILURE_AT))
    dead_at = story.text(headers.get(H_DEAD_AT))
    if not kind:
        death = _last_death(headers)
        reason = story.text(death.get("reason")) or "unknown"
        kind = reason
        error_class = error_class or "BrokerDeadLettered"
        queue = story.text(death.get("queue"))
        count = death.get("count")
        if reason == "delivery_limit":
            error = error or (f"delivered {count or 'too many'} times from {queue} without being settled: "
                              "it may crash workers")
        else:
            error = error or f"dead-lettered by the broker from {queue or 'a queue'} ({reason})"
        when = _iso(death.get("time")) if death.get("time") is not None else ""
        failed_at = failed_at or when
        dead_at = dead_at or when
    status = headers.get(H_CRM_STATUS)
    return DeadLetter(
        id=properties.message_id or "",
        form=story.text(headers.get(H_FORM)),
        attempts=story.attempts_of(headers),
        kind=kind,
        error_class=error_class,
        error=error,
        crm_status=int(status) if isinstance(status, int) else None,
        failed_at=failed_at,
        first_failure_at=story.text(headers.get(H_FIRST_FAILURE_AT)),
        dead_at=dead_at,
        received_at=story.text(headers.get(H_RECEIVED_AT)),
        redrives=_int(headers.get(H_REDRIVES)),
        body=body,
        headers=dict(headers),
    )


def _last_death(headers: Mapping[str, Any]) -> Mapping[str, Any]:
    deaths = headers.get("x-death")
    if isinstance(deaths, list) and deaths and isinstance(deaths[0], Mapping):
        return deaths[0]  # the broker puts the most recent death first
    return {}


def _int(value: object) -> int:
    return value if isinstance(value, int) else 0


def replay_headers(headers: Mapping[str, Any], now: str) -> dict[str, Any]:
    """A fresh start: attempts back to 0, the old failure story and `x-death` dropped."""
    out = {k: v for k, v in story.clean(headers).items() if k not in RESET_ON_REPLAY}
    out[H_ATTEMPTS] = 0
    out[H_REPLAYED_AT] = now
    return out


@dataclass
class Browse:
    """Letters taken from the DLQ on `channel`, unacked until `settle`d."""

    channel: AbstractChannel
    topology: Topology
    messages: list[DeliveredMessage] = field(default_factory=list)

    @property
    def letters(self) -> list[DeadLetter]:
        return [describe(m.body, m.header.properties) for m in self.messages]

    async def ready(self) -> int:
        """Letters ready in the DLQ now (not counting those taken and unacked)."""
        ok = await self.channel.queue_declare(self.topology.dead_letter_queue, passive=True)
        return int(ok.message_count or 0) if ok is not None else 0

    async def take(self) -> DeliveredMessage | None:
        """The next letter, unacked: invisible to everyone else until settled or handed back.

        Not kept in `messages`: a caller going letter by letter holds only what it needs.
        """
        message = await self.channel.basic_get(self.topology.dead_letter_queue, no_ack=False,
                                               timeout=GET_TIMEOUT)
        return None if isinstance(message.delivery, Basic.GetEmpty) else message

    def select(self, ids: Collection[str] | None) -> list[DeliveredMessage]:
        """All letters (`ids` None) or those with one of the ids, in queue order."""
        if ids is None:
            return list(self.messages)
        return [m for m in self.messages if (m.header.properties.message_id or "") in ids]

    async def remove(self, message: DeliveredMessage) -> None:
        assert message.delivery_tag is not None
        await self.channel.basic_ack(message.delivery_tag)

    async def replay(self, message: DeliveredMessage, headers: dict[str, Any] | None = None) -> None:
        """Confirmed copy to the work exchange first, then the ack: never a loss.

        `headers` are the copy's (default: `replay_headers`, a person's fresh start).
        """
        props = message.header.properties
        if headers is None:
            headers = replay_headers(props.headers or {}, utc_now_iso())
        form = story.text(headers.get(H_FORM)) or "unknown"
        try:
            confirmation = await self.channel.basic_publish(
                message.body, exchange=self.topology.work_exchange,
                routing_key=self.topology.routing_key(form),
                properties=republish_properties(props, headers), mandatory=True, timeout=PUBLISH_TIMEOUT,
            )
        except (aiormq.exceptions.DeliveryError, TimeoutError) as exc:
            # a return (unroutable) or a nack (aiormq raises both), or no confirm in time
            raise PublishNotConfirmed(f"replay of {props.message_id!r} not confirmed: {exc!r}") from exc
        if not isinstance(confirmation, Basic.Ack):
            raise PublishNotConfirmed(f"replay of {props.message_id!r} not confirmed: {confirmation!r}")
        await self.remove(message)


@contextlib.asynccontextmanager
async def open_dlq(connection: AbstractConnection, topology: Topology) -> AsyncIterator[Browse]:
    """A confirming channel on the DLQ; whatever was taken and not acked goes back at the end."""
    channel = await connection.channel(publisher_confirms=True)
    try:
        await declare_for_publishing(channel, topology)
        yield Browse(channel, topology)
    finally:
        # Closing the channel requeues every letter not acked, in place.
        with contextlib.suppress(Exception):
            await channel.close()


@contextlib.asynccontextmanager
async def browse(connection: AbstractConnection, topology: Topology,
                 limit: int | None = None) -> AsyncIterator[Browse]:
    """Take up to `limit` letters (all by default); the rest go back when done."""
    async with open_dlq(connection, topology) as taken:
        while limit is None or len(taken.messages) < limit:
            message = await taken.take()
            if message is None:
                break
            taken.messages.append(message)
        yield taken


async def purge_all(connection: AbstractConnection, topology: Topology) -> int:
    channel = await connection.channel()
    try:
        await declare_for_publishing(channel, topology)
        ok = await channel.queue_purge(topology.dead_letter_queue)
        return int(ok.message_count or 0) if ok is not None else 0
    finally:
        with contextlib.suppress(Exception):
            await channel.close()


def mentions_email(body: bytes, address: str) -> bool:
    """Is this letter that person's? A field (at any depth) equal to the address in any
    case; for a body that is not JSON, the address anywhere in its text."""
    wanted = address.strip().casefold()
    try:
        lead: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        return wanted in body.decode("utf-8", "replace").casefold()
    if isinstance(lead, str):
        return wanted in lead.casefold()
    return any(value.strip().casefold() == wanted for value in _strings(lead))


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for item in value.values() for s in _strings(item)]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    return []


async def erase(connection: AbstractConnection, topology: Topology, address: str) -> int:
    """Remove every dead letter of the person with this e-mail address; the others stay, in order."""
    async with browse(connection, topology) as taken:
        theirs = [m for m in taken.messages if mentions_email(m.body, address)]
        for message in theirs:
            await taken.remove(message)
    return len(theirs)
