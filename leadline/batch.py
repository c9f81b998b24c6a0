"""The batch envelope: several leads in one broker message (the proxy's group commit).

The broker charges per message, not per byte, so the proxy puts every lead
accepted while a publish is in flight into the next message. A message of
one lead stays the single-lead message it always was; a message of several
is this envelope:

    content type  application/vnd.leadline.batch+json
    message id    batch-<uuid>          (the batch's; each lead keeps its own id inside)
    headers       x-leadline-batch: <leads>, traceparent: <the publish>
    routing key   form._batch           (matches the work queue's `form.*`; no form name starts with _)
    body          {"v": 1, "leads": [{"id", "form", "schema", "received_at", "traceparent", "fields",
                                      "stamp"?}]}

`stamp` (the proxy's verdict on the page's spam stamp) is there only when the
proxy checked one; an envelope without it (SPAM_STAMP=off, an older proxy)
reads as "not known", so version 1 stays version 1.

Each lead carries what a single-lead message carries. Retry tiers, the
dead-letter queue, replays and re-drives only ever hold single-lead
messages: `single()` makes one from an entry. Pure.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from pamqp.commands import Basic

from leadline.message import H_TRACEPARENT, PERSISTENT, LeadProperties, lead_properties

CONTENT_TYPE = "application/vnd.leadline.batch+json"
VERSION = 1
ROUTING_KEY = "form._batch"
H_BATCH = "x-leadline-batch"
# On a lead split out of a batch (a redelivered one, or a dead letter): the batch's message id.
# Such a lead may have reached the CRM before the split.
H_SPLIT_FROM = "x-leadline-split-from"
BATCH_ID_PREFIX = "batch-"


@dataclass(frozen=True, slots=True)
class Entry:
    """One lead inside a batch: what its own message would have carried."""

    id: str
    form: str
    fields: bytes  # the lead's fields, already JSON
    schema: str = ""
    received_at: str = ""
    traceparent: str = ""
    stamp: str = ""  # valid | missing | invalid; "" when not checked


def is_batch(properties: Basic.Properties) -> bool:
    return (properties.content_type or "").split(";", 1)[0].strip() == CONTENT_TYPE


def encode(entries: Sequence[Entry]) -> bytes:
    """The envelope's body; each lead's fields go in as they are (no second encoding)."""
    return orjson.dumps({"v": VERSION, "leads": [_lead(e) for e in entries]})


def _lead(e: Entry) -> dict[str, Any]:
    lead: dict[str, Any] = {"id": e.id, "form": e.form, "schema": e.schema, "received_at": e.received_at,
                            "traceparent": e.traceparent, "fields": orjson.Fragment(e.fields)}
    if e.stamp:
        lead["stamp"] = e.stamp
    return lead


def properties(count: int, traceparent: str | None = None) -> Basic.Properties:
    """A batch message's properties: persistent, its own content type and id."""
    headers: dict[str, Any] = {H_BATCH: count}
    if traceparent:
        headers[H_TRACEPARENT] = traceparent
    return LeadProperties(content_type=CONTENT_TYPE, delivery_mode=PERSISTENT,
                          message_id=f"{BATCH_ID_PREFIX}{uuid.uuid4()}", app_id="leadline-proxy",
                          headers=headers)


class NotABatch(ValueError):
    """The body is not a batch envelope this version reads."""


def decode(body: bytes) -> list[Entry]:
    """The leads of an envelope, in order; `NotABatch` names what is wrong."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise NotABatch(f"the batch is not JSON: {exc}") from None
    if not isinstance(data, Mapping) or data.get("v") != VERSION or not isinstance(data.get("leads"), list):
        raise NotABatch(f"not a version {VERSION} batch envelope")
    entries = []
    for index, item in enumerate(data["leads"]):
        if not isinstance(item, Mapping) or not isinstance(item.get("id"), str) or not item["id"]:
            raise NotABatch(f"lead {index} of the batch has no id")
        entries.append(Entry(
            id=item["id"], form=_str(item.get("form")), fields=orjson.dumps(item.get("fields")),
            schema=_str(item.get("schema")), received_at=_str(item.get("received_at")),
            traceparent=_str(item.get("traceparent")), stamp=_str(item.get("stamp"))))
    return entries


def single(entry: Entry, split_from: str = "") -> tuple[bytes, Basic.Properties]:
    """The single-lead message this entry would have been: body and properties.

    `split_from` (the batch's message id) marks a lead taken out of a batch a
    worker may already have been working on."""
    props = lead_properties(
        submission_id=entry.id, form=entry.form, schema_id=entry.schema,
        traceparent=entry.traceparent or None, received_at=entry.received_at or None, stamp=entry.stamp)
    if split_from and props.headers is not None:
        props.headers[H_SPLIT_FROM] = split_from
    return entry.fields, props


def _str(value: object) -> str:
    return value if isinstance(value, str) else ""
