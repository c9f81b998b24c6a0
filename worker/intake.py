"""Reading a delivered message into a `Lead`, or naming why it is poison.

Pure. A poison message can never succeed, however often it is tried: not
JSON, not valid against its form's schema, an unknown form, no submission id.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from leadline.batch import H_SPLIT_FROM
from leadline.message import H_CRM_PROGRESS, H_FORM, H_RECEIVED_AT, H_SCHEMA, H_STAMP, H_TRACEPARENT
from leadline.schemas import FormSchema
from worker.crm.base import Lead
from worker.story import attempts_of, text


@dataclass(frozen=True, slots=True)
class Poison:
    error_class: str  # "NotJson", "InvalidLead", "UnknownForm", "NoSubmissionId"
    reason: str


def read_lead(
    body: bytes, headers: Mapping[str, Any], message_id: str | None, forms: Mapping[str, FormSchema],
    *, redelivered: bool = False,
) -> Lead | Poison:
    if not message_id:
        return Poison("NoSubmissionId", "the message has no message_id (the submission id)")
    form_name = text(headers.get(H_FORM))
    form = forms.get(form_name)
    if form is None:
        return Poison("UnknownForm", f"no schema for form {form_name!r}")
    try:
        fields = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        return Poison("NotJson", f"the body is not JSON: {exc}"[:300])
    if not isinstance(fields, dict):
        return Poison("InvalidLead", "the body must be a JSON object of fields")
    if not form.is_valid(fields):
        # Field names and rules only: the messages never quote the visitor's values.
        problems = "; ".join(f"{e.field or '(body)'}: {e.message}" for e in form.errors(fields))
        return Poison("InvalidLead", f"not valid against {form_name!r}: {problems}"[:500])
    return Lead(
        submission_id=message_id, form=form_name, fields=fields,
        received_at=text(headers.get(H_RECEIVED_AT)),
        traceparent=text(headers.get(H_TRACEPARENT)) or None,
        schema_id=text(headers.get(H_SCHEMA)),
        attempt=attempts_of(headers) + 1,
        redelivered=redelivered or H_SPLIT_FROM in headers,
        progress=progress_of(headers),
        stamp=text(headers.get(H_STAMP)) or None,
    )


def progress_of(headers: Mapping[str, Any]) -> dict[str, str]:
    """The CRM progress header as a dict of strings; anything odd counts as none."""
    raw = text(headers.get(H_CRM_PROGRESS))
    if not raw:
        return {}
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): str(v) for k, v in data.items() if isinstance(v, str | int) and not isinstance(v, bool)}
