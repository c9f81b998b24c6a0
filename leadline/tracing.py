"""OpenTelemetry spans, set up from the standard `OTEL_*` environment.

Off unless an OTLP endpoint is set: with neither `OTEL_EXPORTER_OTLP_ENDPOINT`
nor `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, or with `OTEL_SDK_DISABLED=true` or
`OTEL_TRACES_EXPORTER=none`, nothing is exported, the SDK and the exporter
are never imported, and every span helper returns the shared no-op span at
the cost of a call.
On, spans go over OTLP/HTTP (protobuf) from a batch processor's thread.

The API the proxy and the worker code against (all of it is here):

    settings = TracingSettings.from_env(environ, service="leadline-worker")  # ConfigError if bad
    tracing = Tracing(settings)
    tracing.start()            # once per process, after any fork; builds the SDK when enabled
    ...
    await tracing.shutdown()   # flushes what is buffered (in a thread: it blocks)

`tracing.enabled` says whether spans are made. `configure(service, environ)` is
the three lines above without the shutdown. Every helper returns an
OpenTelemetry `Span`, never None; while tracing is off that is `INVALID_SPAN`,
so callers never branch.

- `server_span(method, route=..., path=..., traceparent=header, ...)`: SERVER,
  child of the caller's W3C `traceparent` (a root span when it is missing or
  malformed), HTTP semantic-convention attributes.
- `producer_span(exchange=..., routing_key=..., message_id=..., parent=span)`:
  PRODUCER for a publish (messaging semantic conventions: `messaging.system`
  rabbitmq, destination = the exchange, the routing key, message id = the
  submission id). Put `traceparent_of(span)` into the message's
  `traceparent` header so that the consumer's span becomes its child.
- `consumer_span(queue=..., exchange=..., routing_key=..., message_id=...,
  traceparent=message_headers.get("traceparent"), links=[...], delivery_tag=...)`:
  CONSUMER, child of the publish (bytes headers are fine). When one message
  carries several leads, make one span per lead in that lead's own trace
  (`traceparent=` the lead's) with `links=[tracing.link(message_traceparent)]`
  pointing at the publish; `link` returns None for a missing or malformed
  header, and `links` skips Nones.
- `client_span("POST", url, parent=span)`: CLIENT for an outgoing HTTP call,
  `url.full` without credentials or query values; send
  `traceparent_of(span, default=lead_traceparent)` as the call's
  `traceparent` header, then `finish_http(span, status)` or
  `finish_http(span, None, error_type="TimeoutError")`.
- `activate(span)`: a context manager that makes `span` current (helpers given
  no `parent` use the current span), marks it failed with the exception's
  class name (never its message: it may hold personal data) and ends it.
- `finish_server(span, status)`: the SERVER span's status code, then its end.
- `fail(span, error_type)`: mark a span failed (`error.type`, status ERROR)
  with a low-cardinality word, such as `PublishNotConfirmed`; end it yourself.
- `traceparent_of(span, default)`: the span's W3C `traceparent`, `default`
  for a no-op span. `parse_traceparent(header)`: a remote `SpanContext` or None.

No personal data goes into a span: helpers take ids, names of forms, queues
and routes, status codes and class names of errors, never a lead's fields, a
client's IP address or user agent, or an exception's message. Add your own
attributes with the same care (`span.set_attribute`).

The SDK reads its finer settings itself from the process environment, as its
documentation describes: `OTEL_TRACES_SAMPLER` (default: parent-based
always-on, so the browser's sampled flag decides), `OTEL_BSP_*` (batching),
`OTEL_EXPORTER_OTLP_HEADERS` / `_TIMEOUT` / `_COMPRESSION` / `_CERTIFICATE`,
`OTEL_RESOURCE_ATTRIBUTES`. No global tracer provider is installed: each
`Tracing` owns its own, so tests can build many.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import INVALID_SPAN, Link, NonRecordingSpan, Span, SpanContext, SpanKind, TraceFlags
from opentelemetry.trace.status import Status, StatusCode

from leadline.errors import ConfigError

if TYPE_CHECKING:  # the SDK is imported only when tracing is on
    from opentelemetry.sdk.trace import TracerProvider

__all__ = [
    "INVALID_SPAN", "Span", "Tracing", "TracingSettings", "configure", "parse_traceparent",
    "redact_url", "traceparent_of",
]

TRACES_PATH = "v1/traces"
_TRUE = "true"
_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?")
_HTTP_METHODS = frozenset({"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE"})

# Semantic-convention attribute names (HTTP: stable; messaging: development).
HTTP_METHOD = "http.request.method"
HTTP_ROUTE = "http.route"
HTTP_STATUS = "http.response.status_code"
URL_PATH = "url.path"
URL_SCHEME = "url.scheme"
URL_FULL = "url.full"
SERVER_ADDRESS = "server.address"
SERVER_PORT = "server.port"
NETWORK_PROTOCOL_VERSION = "network.protocol.version"
ERROR_TYPE = "error.type"
MESSAGING_SYSTEM = "messaging.system"
MESSAGING_OPERATION_TYPE = "messaging.operation.type"
MESSAGING_OPERATION_NAME = "messaging.operation.name"
MESSAGING_DESTINATION = "messaging.destination.name"
MESSAGING_SUBSCRIPTION = "messaging.destination.subscription.name"
MESSAGING_ROUTING_KEY = "messaging.rabbitmq.destination.routing_key"
MESSAGING_DELIVERY_TAG = "messaging.rabbitmq.message.delivery_tag"
MESSAGING_MESSAGE_ID = "messaging.message.id"
MESSAGING_BODY_SIZE = "messaging.message.body.size"
MESSAGING_BATCH_COUNT = "messaging.batch.message_count"
RABBITMQ = "rabbitmq"


@dataclass(frozen=True, slots=True)
class TracingSettings:
    """Whether and where to export; `endpoint` None means off."""

    endpoint: str | None = None  # the full OTLP/HTTP traces URL
    service_name: str = "leadline"

    @property
    def enabled(self) -> bool:
        return self.endpoint is not None

    @classmethod
    def from_env(cls, environ: Mapping[str, str], *, service: str) -> TracingSettings:
        """The standard variables; a value Leadline cannot honour raises `ConfigError`."""

        def get(name: str) -> str:
            return environ.get(name, "").strip()

        name = get("OTEL_SERVICE_NAME") or service
        if get("OTEL_SDK_DISABLED").lower() == _TRUE:  # the spec: only "true" disables
            return cls(None, name)
        exporter = get("OTEL_TRACES_EXPORTER").lower() or "otlp"
        if exporter == "none":
            return cls(None, name)
        if exporter != "otlp":
            raise ConfigError("OTEL_TRACES_EXPORTER", f"{exporter!r}: Leadline exports otlp or none")
        for setting in ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"):
            protocol = get(setting)
            if protocol:
                if protocol != "http/protobuf":
                    raise ConfigError(setting, f"{protocol!r}: Leadline speaks OTLP over http/protobuf only")
                break
        traces = get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        if traces:
            return cls(_http_url("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", traces), name)
        base = get("OTEL_EXPORTER_OTLP_ENDPOINT")
        if base:
            # The spec: the signal path is appended to the base endpoint.
            url = _http_url("OTEL_EXPORTER_OTLP_ENDPOINT", base)
            return cls(url.rstrip("/") + "/" + TRACES_PATH, name)
        return cls(None, name)


def _http_url(setting: str, text: str) -> str:
    parts = urlsplit(text)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ConfigError(setting, f"must be an http:// or https:// URL, got {text!r}")
    return text


class Tracing:
    """The spans of one process (see the module doc for the whole API)."""

    def __init__(self, settings: TracingSettings, *, scope: str = "leadline") -> None:
        self.settings = settings
        self._scope = scope
        self._provider: TracerProvider | None = None
        self._tracer: trace.Tracer | None = None

    @property
    def enabled(self) -> bool:
        """True once started with an endpoint: spans are recorded and exported."""
        return self._tracer is not None

    def start(self, *, exporter: Any = None) -> Tracing:
        """Build the SDK when the settings say so; `exporter` replaces OTLP (tests)."""
        if self._tracer is not None or (not self.settings.enabled and exporter is None):
            return self
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        if exporter is None:
            from leadline.otlp_export import FastOtlpSpanExporter

            exporter = FastOtlpSpanExporter(endpoint=self.settings.endpoint)
        provider = TracerProvider(resource=Resource.create({SERVICE_NAME: self.settings.service_name}))
        provider.add_span_processor(BatchSpanProcessor(exporter))
        self._provider = provider
        self._tracer = provider.get_tracer(self._scope)
        return self

    def force_flush(self, timeout_millis: int = 10_000) -> bool:
        """Export what is buffered now (blocks); True when it all went out."""
        return self._provider.force_flush(timeout_millis) if self._provider is not None else True

    async def shutdown(self) -> None:
        """Flush and stop the exporter's thread; spans after this are no-ops."""
        provider, self._provider, self._tracer = self._provider, None, None
        if provider is not None:
            await asyncio.to_thread(provider.shutdown)

    # -- spans -------------------------------------------------------------

    def server_span(self, method: str, *, route: str | None, path: str, traceparent: str | None,
                    scheme: str = "http", server_address: str | None = None, server_port: int | None = None,
                    protocol_version: str | None = None) -> Span:
        """A SERVER span for an incoming request; `route` is the matched template."""
        tracer = self._tracer
        if tracer is None:
            return INVALID_SPAN
        known = method if method in _HTTP_METHODS else "_OTHER"
        attributes: dict[str, Any] = {HTTP_METHOD: known, URL_PATH: path, URL_SCHEME: scheme}
        if route:
            attributes[HTTP_ROUTE] = route
        if server_address:
            attributes[SERVER_ADDRESS] = server_address
        if server_port:
            attributes[SERVER_PORT] = server_port
        if protocol_version:
            attributes[NETWORK_PROTOCOL_VERSION] = protocol_version
        verb = "HTTP" if known == "_OTHER" else known
        name = f"{verb} {route}" if route else verb
        return tracer.start_span(name, context=_remote_parent(traceparent), kind=SpanKind.SERVER,
                                 attributes=attributes, record_exception=False)

    def producer_span(self, *, exchange: str, routing_key: str, message_id: str | None,
                      parent: Span | None = None, body_size: int | None = None,
                      server_address: str | None = None, server_port: int | None = None,
                      batch_count: int | None = None) -> Span:
        """A PRODUCER span for one publish to `exchange` (empty: the default exchange)."""
        tracer = self._tracer
        if tracer is None:
            return INVALID_SPAN
        attributes: dict[str, Any] = {
            MESSAGING_SYSTEM: RABBITMQ, MESSAGING_OPERATION_TYPE: "send",
            MESSAGING_OPERATION_NAME: "publish", MESSAGING_DESTINATION: exchange,
        }
        if routing_key:
            attributes[MESSAGING_ROUTING_KEY] = routing_key
        if message_id:
            attributes[MESSAGING_MESSAGE_ID] = message_id
        if body_size is not None:
            attributes[MESSAGING_BODY_SIZE] = body_size
        if batch_count is not None:
            attributes[MESSAGING_BATCH_COUNT] = batch_count
        _server(attributes, server_address, server_port)
        return tracer.start_span(f"publish {exchange or '(default)'}", context=_parent(parent),
                                 kind=SpanKind.PRODUCER, attributes=attributes, record_exception=False)

    def consumer_span(self, *, queue: str, exchange: str, routing_key: str, message_id: str | None,
                      traceparent: object = None, links: Iterable[Link | None] = (),
                      delivery_tag: int | None = None, body_size: int | None = None,
                      server_address: str | None = None, server_port: int | None = None) -> Span:
        """A CONSUMER span for handling one delivery from `queue`, child of the publish
        whose `traceparent` the message carries (bytes are decoded; junk starts a new trace)."""
        tracer = self._tracer
        if tracer is None:
            return INVALID_SPAN
        attributes: dict[str, Any] = {
            MESSAGING_SYSTEM: RABBITMQ, MESSAGING_OPERATION_TYPE: "process",
            MESSAGING_OPERATION_NAME: "consume", MESSAGING_DESTINATION: exchange,
            MESSAGING_SUBSCRIPTION: queue,
        }
        if routing_key:
            attributes[MESSAGING_ROUTING_KEY] = routing_key
        if message_id:
            attributes[MESSAGING_MESSAGE_ID] = message_id
        if delivery_tag is not None:
            attributes[MESSAGING_DELIVERY_TAG] = delivery_tag
        if body_size is not None:
            attributes[MESSAGING_BODY_SIZE] = body_size
        _server(attributes, server_address, server_port)
        return tracer.start_span(f"consume {exchange or queue}", context=_remote_parent(_text(traceparent)),
                                 kind=SpanKind.CONSUMER, attributes=attributes,
                                 links=[link for link in links if link is not None], record_exception=False)

    def client_span(self, method: str, url: str, *, parent: Span | None = None,
                    attributes: Mapping[str, Any] | None = None) -> Span:
        """A CLIENT span for an outgoing HTTP call; the URL is recorded without secrets."""
        tracer = self._tracer
        if tracer is None:
            return INVALID_SPAN
        known = method.upper() if method.upper() in _HTTP_METHODS else "_OTHER"
        parts = urlsplit(url)
        attrs: dict[str, Any] = {HTTP_METHOD: known, URL_FULL: redact_url(url)}
        if parts.hostname:
            attrs[SERVER_ADDRESS] = parts.hostname
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
        if port:
            attrs[SERVER_PORT] = port
        if attributes:
            attrs.update(attributes)
        return tracer.start_span(known if known != "_OTHER" else "HTTP", context=_parent(parent),
                                 kind=SpanKind.CLIENT, attributes=attrs, record_exception=False)

    def link(self, traceparent: object, attributes: Mapping[str, Any] | None = None) -> Link | None:
        """A link to the span a W3C `traceparent` names; None when off, missing or malformed."""
        if self._tracer is None:
            return None
        context = parse_traceparent(_text(traceparent))
        return None if context is None else Link(context, dict(attributes) if attributes else None)


# -- finishing spans -------------------------------------------------------------

def finish_server(span: Span, status: int) -> None:
    """The answer's status on a SERVER span, then its end: 5xx is an error, 4xx is not."""
    if not span.is_recording():
        return
    span.set_attribute(HTTP_STATUS, status)
    if status >= 500:
        span.set_attribute(ERROR_TYPE, str(status))
        span.set_status(Status(StatusCode.ERROR))
    span.end()


def finish_http(span: Span, status: int | None, *, error_type: str | None = None) -> None:
    """A CLIENT span's outcome, then its end: a status of 400 and up, or no answer, is an error."""
    if not span.is_recording():
        return
    if status is not None:
        span.set_attribute(HTTP_STATUS, status)
    failed = error_type or (str(status) if status is not None and status >= 400 else None)
    if failed:
        span.set_attribute(ERROR_TYPE, failed)
        span.set_status(Status(StatusCode.ERROR))
    span.end()


def fail(span: Span, error_type: str) -> None:
    """Mark a span failed with a low-cardinality error type (a class name, a reason code)."""
    if span.is_recording():
        span.set_attribute(ERROR_TYPE, error_type)
        span.set_status(Status(StatusCode.ERROR))


@contextlib.contextmanager
def activate(span: Span, *, end: bool = True) -> Iterator[Span]:
    """Make `span` the current span; on an exception mark it failed with the class name."""
    token = otel_context.attach(trace.set_span_in_context(span))
    try:
        yield span
    except Exception as exc:
        fail(span, type(exc).__qualname__)
        raise
    finally:
        otel_context.detach(token)
        if end:
            span.end()


# -- W3C trace context -----------------------------------------------------------

def parse_traceparent(header: str | None) -> SpanContext | None:
    """A remote `SpanContext` from a W3C `traceparent`; None when missing or malformed.

    Version 00 must be exactly 55 characters; a later version may append fields
    (the spec says to read what it knows); version ff is invalid.
    """
    if not header:
        return None
    match = _TRACEPARENT.fullmatch(header.strip())
    if match is None:
        return None
    version, trace_hex, span_hex, flags, rest = match.groups()
    if version == "ff" or (version == "00" and rest):
        return None
    trace_id, span_id = int(trace_hex, 16), int(span_hex, 16)
    if not trace_id or not span_id:
        return None
    return SpanContext(trace_id, span_id, is_remote=True, trace_flags=TraceFlags(int(flags, 16)))


def traceparent_of(span: Span, default: str | None = None) -> str | None:
    """`00-<trace id>-<span id>-<flags>` of `span`; `default` when it has no valid context."""
    context = span.get_span_context()
    if not context.is_valid:
        return default
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"


def redact_url(url: str) -> str:
    """The URL without user and password, each query value `REDACTED` (tokens travel there)."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "REDACTED:REDACTED@" + netloc.rsplit("@", 1)[1]
    query = "&".join(f"{quote(key, safe='')}=REDACTED"
                     for key, _ in parse_qsl(parts.query, keep_blank_values=True))
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def _remote_parent(traceparent: str | None) -> otel_context.Context | None:
    remote = parse_traceparent(traceparent)
    if remote is None:
        # An empty context, not the current one: a request with no trace context starts a trace.
        return otel_context.Context()
    return trace.set_span_in_context(NonRecordingSpan(remote))


def _parent(parent: Span | None) -> otel_context.Context | None:
    return None if parent is None else trace.set_span_in_context(parent)


def _server(attributes: dict[str, Any], address: str | None, port: int | None) -> None:
    if address:
        attributes[SERVER_ADDRESS] = address
    if port:
        attributes[SERVER_PORT] = port


def _text(value: object) -> str | None:
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("ascii", "replace")
    return value if isinstance(value, str) else None


def configure(service: str, environ: Mapping[str, str]) -> Tracing:
    """`Tracing(TracingSettings.from_env(environ, service=service)).start()`."""
    return Tracing(TracingSettings.from_env(environ, service=service), scope=service).start()
