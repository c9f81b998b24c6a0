"""Reading a submission's body: the size cap, JSON and form-encoded decoding.

The cap holds before the body is in memory: a declared Content-Length over it
is refused unread, and a chunked body is read only until it passes the cap.
Form-encoded bodies (the page without JavaScript) carry only strings; they
are turned into the schema's types here so both encodings meet one validator.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

import orjson
from aiohttp import StreamReader

from leadline.schemas import HONEYPOT_FIELD, FormSchema

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
CONTENT_TYPES = (JSON, FORM)
_TRUE_WORDS = frozenset({"on", "true", "1", "yes"})
_FALSE_WORDS = frozenset({"off", "false", "0", "no", ""})


# A lead is a few hundred bytes: a body still arriving after this is a client
# holding a handler open, not a slow network worth waiting for.
BODY_TIMEOUT = 10.0


class BodyError(Exception):
    """The body cannot be read as a submission; `status` says how the client erred."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


async def read_capped(stream: StreamReader, declared: int | None, limit: int,
                      timeout: float = BODY_TIMEOUT) -> bytes:
    """The whole body, `BodyError(413)` as soon as it is known to exceed `limit`,
    `BodyError(408)` when it takes longer than `timeout` (a client trickling bytes)."""
    if declared is not None and declared > limit:
        raise BodyError(413, f"the body is larger than {limit} bytes")
    if stream.is_eof():
        # The whole body came with the headers (a lead usually does): no wait, no timer.
        body = stream.read_nowait(-1)
        if len(body) > limit:
            raise BodyError(413, f"the body is larger than {limit} bytes")
        return body
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout):
            while True:
                chunk = await stream.readany()
                if not chunk:
                    return b"".join(chunks)
                size += len(chunk)
                if size > limit:
                    raise BodyError(413, f"the body is larger than {limit} bytes")
                chunks.append(chunk)
    except TimeoutError:
        raise BodyError(408, f"the body did not arrive within {timeout:g}s") from None


def decode_json(body: bytes) -> object:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BodyError(400, f"the body is not valid JSON: {exc}") from None


def decode_form(body: bytes, form: FormSchema) -> dict[str, Any]:
    """`a=1&b=2` -> fields typed after the schema (see module doc)."""
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=256, errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise BodyError(400, "the body is not a form-encoded UTF-8 submission") from None
    values: dict[str, list[str]] = {}
    for name, value in pairs:
        values.setdefault(name, []).append(value)
    required = set(form.schema.get("required", ()))
    fields: dict[str, Any] = {}
    for name, found in values.items():
        prop: Mapping[str, Any] = form.properties.get(name, {})
        typed = _typed(prop.get("type"), found)
        if typed == "" and name not in required and name != HONEYPOT_FIELD:
            continue  # an optional input left empty means "not given"
        fields[name] = typed
    return fields


def _typed(kind: object, found: list[str]) -> object:
    if kind == "boolean":
        # A checkbox sends its value only when ticked; a hidden "false" may
        # precede it, so any true word wins.
        if any(v.strip().lower() in _TRUE_WORDS for v in found):
            return True
        if all(v.strip().lower() in _FALSE_WORDS for v in found):
            return False
        return found[-1]
    value = found[-1]
    if kind in ("integer", "number") and value.strip():
        try:
            number = float(value) if kind == "number" else int(value)
        except ValueError:
            return value  # the validator words it: "must be a whole number"
        if isinstance(number, int) and not -(2**63) <= number < 2**64:
            return value  # JSON (orjson) carries no wider integer: let the validator refuse it
        return number if math.isfinite(number) else value
    return value


def honeypot_filled(fields: object) -> bool:
    """True when a bot filled the hidden field; the field is taken out either way."""
    if not isinstance(fields, dict) or HONEYPOT_FIELD not in fields:
        return False
    value = fields.pop(HONEYPOT_FIELD)
    return value is not None and value != ""
