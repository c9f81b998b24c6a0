"""The OTLP/HTTP exporter, with an encoder several times faster than its own.

opentelemetry-exporter-otlp-proto-http builds a tree of protobuf objects for
every span before serialising it: about 100 us a span here, more than making
the span. Our spans are plain (string, integer, float and boolean attributes,
links, a status, no events), so `encode` writes the wire format for them
directly (`ExportTraceServiceRequest`, opentelemetry-proto's trace/v1 field
numbers) and returns None for anything else, which then goes through the
exporter's own encoder. Sending (retries, headers, compression, TLS, the
`OTEL_EXPORTER_OTLP_*` settings) stays the exporter's. A test holds the
decoded result equal to the exporter's. Imported only when tracing is on.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.trace import SpanKind

# opentelemetry/proto/trace/v1/trace.proto: Span.SpanKind values
_KINDS = {SpanKind.INTERNAL: 1, SpanKind.SERVER: 2, SpanKind.CLIENT: 3, SpanKind.PRODUCER: 4,
          SpanKind.CONSUMER: 5}
# SpanFlags: the parent's (or link's) is-remote bit is known (0x100), and set (0x200).
_HAS_IS_REMOTE, _IS_REMOTE = 0x100, 0x200
_FIXED32 = struct.Struct("<I").pack
_FIXED64 = struct.Struct("<Q").pack
_DOUBLE = struct.Struct("<d").pack
_EMPTY_STATUS = b"\x7a\x00"  # field 15, an empty Status: the exporter always sends one


class _Unusual(Exception):
    """A value the fast path leaves to the exporter's encoder."""


def _varint(value: int) -> bytes:
    if 0 <= value < 0x80:
        return bytes((value,))
    value &= 0xFFFFFFFFFFFFFFFF  # negative int64: ten bytes of two's complement
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(tag: int, payload: bytes) -> bytes:
    """A length-delimited field: `tag` is (field number << 3) | 2, one byte here."""
    return bytes((tag,)) + _varint(len(payload)) + payload


def _any_value(value: object) -> bytes:
    # The order of the exporter's own encoder: bool before int (True is an int).
    if isinstance(value, bool):
        return b"\x10\x01" if value else b"\x10\x00"
    if isinstance(value, str):
        return _field(0x0A, value.encode())
    if isinstance(value, int):
        return b"\x18" + _varint(value)
    if isinstance(value, float):
        return b"\x21" + _DOUBLE(value)
    raise _Unusual


# Most attributes repeat from span to span (method, route, exchange, status...):
# their encodings are kept, a bounded few, keyed with the value's type (True == 1).
_KEPT_MAX = 4096
_kept: dict[tuple[int, str, object, type], bytes] = {}


def _key_value(tag: int, key: str, value: object) -> bytes:
    """A KeyValue message as field `tag` of its parent."""
    cache_key = (tag, key, value, type(value))
    encoded = _kept.get(cache_key)
    if encoded is None:
        encoded = _field(tag, _field(0x0A, key.encode()) + _field(0x12, _any_value(value)))
        if len(_kept) < _KEPT_MAX:
            _kept[cache_key] = encoded
    return encoded


def _attributes(tag: int, attributes: Mapping[str, Any] | None) -> bytes:
    if not attributes:
        return b""
    return b"".join([_key_value(tag, key, value) for key, value in attributes.items()])


def _span(span: ReadableSpan) -> bytes:
    if span.events:
        raise _Unusual
    context = span.context
    parent = span.parent
    if context is None or span.start_time is None or span.end_time is None:
        raise _Unusual
    parts = [b"\x0a\x10", context.trace_id.to_bytes(16, "big"),
             b"\x12\x08", context.span_id.to_bytes(8, "big")]
    if context.trace_state:
        parts.append(_field(0x1A, ",".join(f"{k}={v}" for k, v in context.trace_state.items()).encode()))
    if parent is not None:
        parts += (b"\x22\x08", parent.span_id.to_bytes(8, "big"))
    parts += (_field(0x2A, span.name.encode()), b"\x30", _varint(_KINDS[span.kind]),
              b"\x39", _FIXED64(span.start_time), b"\x41", _FIXED64(span.end_time),
              _attributes(0x4A, span.attributes))
    if span.dropped_attributes:
        parts += (b"\x50", _varint(span.dropped_attributes))
    if span.dropped_events:
        parts += (b"\x60", _varint(span.dropped_events))
    for link in span.links:
        body = (b"\x0a\x10" + link.context.trace_id.to_bytes(16, "big")
                + b"\x12\x08" + link.context.span_id.to_bytes(8, "big") + _attributes(0x22, link.attributes))
        if link.dropped_attributes:
            body += b"\x28" + _varint(link.dropped_attributes)
        body += b"\x35" + _FIXED32(_HAS_IS_REMOTE | (_IS_REMOTE if link.context.is_remote else 0))
        parts.append(_field(0x6A, body))
    if span.dropped_links:
        parts += (b"\x70", _varint(span.dropped_links))
    status = span.status
    code = status.status_code.value
    if code or status.description:
        body = (_field(0x12, status.description.encode()) if status.description else b"") + (
            b"\x18" + _varint(code) if code else b"")
        parts.append(_field(0x7A, body))
    else:
        parts.append(_EMPTY_STATUS)
    flags = _HAS_IS_REMOTE | (_IS_REMOTE if parent is not None and parent.is_remote else 0)
    parts += (b"\x85\x01", _FIXED32(flags))  # field 16, fixed32
    return b"".join(parts)


def encode(spans: Sequence[ReadableSpan]) -> bytes | None:
    """An `ExportTraceServiceRequest`, spans grouped by resource, then by scope; None: not ours to encode."""
    try:
        # Keyed by identity: a Resource hashes through json.dumps of its attributes.
        groups: dict[int, tuple[Any, dict[int, tuple[Any, list[bytes]]]]] = {}
        for span in spans:
            resource, scope = span.resource, span.instrumentation_scope
            scopes = groups.setdefault(id(resource), (resource, {}))[1]
            scopes.setdefault(id(scope), (scope, []))[1].append(_field(0x12, _span(span)))
        out = []
        for resource, scopes in groups.values():
            body = [_field(0x0A, _attributes(0x0A, resource.attributes))]
            for scope, encoded in scopes.values():
                head = b""
                if scope is not None:
                    head = ((_field(0x0A, scope.name.encode()) if scope.name else b"")
                            + (_field(0x12, scope.version.encode()) if scope.version else b"")
                            + _attributes(0x1A, scope.attributes))
                scope_body = _field(0x0A, head) + b"".join(encoded)
                if scope is not None and scope.schema_url:
                    scope_body += _field(0x1A, scope.schema_url.encode())
                body.append(_field(0x12, scope_body))
            if resource.schema_url:
                body.append(_field(0x1A, resource.schema_url.encode()))
            out.append(_field(0x0A, b"".join(body)))
        return b"".join(out)
    except _Unusual:
        return None



class FastOtlpSpanExporter(OTLPSpanExporter):
    """`OTLPSpanExporter` that encodes with `encode` when it can."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        data = None if self._shutdown else encode(spans)
        if data is None:
            return super().export(spans)
        # The exporter's own client: its retries and backoff, its settings (pinned version).
        return SpanExportResult.SUCCESS if self._client.export(data).success else SpanExportResult.FAILURE
