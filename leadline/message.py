"""The lead message on the wire: header names and how a message is built.

The submission id (the browser's Idempotency-Key) is the AMQP `message_id`
from the proxy to the CRM call; the attempt count lives in our own header,
never in `x-death`, which RabbitMQ 4.x owns.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pamqp.commands import Basic

CONTENT_TYPE = "application/json"
PERSISTENT = 2

H_FORM = "x-leadline-form"
H_SCHEMA = "x-leadline-schema"
H_ATTEMPTS = "x-leadline-attempts"
H_RECEIVED_AT = "x-leadline-received-at"
H_TRACEPARENT = "traceparent"
H_FIRST_FAILURE_AT = "x-leadline-first-failure-at"
H_LAST_FAILURE_AT = "x-leadline-last-failure-at"
H_ERROR_CLASS = "x-leadline-error-class"
H_ERROR = "x-leadline-error"
H_CRM_STATUS = "x-leadline-crm-status"
H_FAILURE_KIND = "x-leadline-failure-kind"
H_DEAD_AT = "x-leadline-dead-at"
H_REDRIVES = "x-leadline-redrives"
H_LAST_REDRIVE_AT = "x-leadline-last-redrive-at"


def utc_now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def lead_properties(
    *, submission_id: str, form: str, schema_id: str = "", traceparent: str | None = None,
    received_at: str | None = None, app_id: str = "leadline-proxy",
) -> Basic.Properties:
    """Properties of a freshly accepted lead: persistent, JSON, attempt 0."""
    headers: dict[str, Any] = {
        H_FORM: form,
        H_ATTEMPTS: 0,
        H_RECEIVED_AT: received_at or utc_now_iso(),
    }
    if schema_id:
        headers[H_SCHEMA] = schema_id
    if traceparent:
        headers[H_TRACEPARENT] = traceparent
    return Basic.Properties(
        content_type=CONTENT_TYPE,
        delivery_mode=PERSISTENT,
        message_id=submission_id,
        timestamp=datetime.now(UTC),
        app_id=app_id,
        headers=headers,
    )


def republish_properties(original: Basic.Properties, headers: dict[str, Any]) -> Basic.Properties:
    """A copy of a delivered message's properties with new headers, always persistent."""
    return Basic.Properties(
        content_type=original.content_type or CONTENT_TYPE,
        content_encoding=original.content_encoding,
        delivery_mode=PERSISTENT,
        message_id=original.message_id,
        correlation_id=original.correlation_id,
        timestamp=original.timestamp,
        app_id=original.app_id,
        message_type=original.message_type,
        headers=headers,
    )
