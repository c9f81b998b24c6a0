"""leadline.tracing on its own: set-up from the OTEL_* environment, W3C
traceparent in and out, and the helpers' spans (recorded in memory)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import INVALID_SPAN, SpanKind, StatusCode

from leadline import tracing
from leadline.errors import ConfigError
from leadline.tracing import Tracing, TracingSettings, parse_traceparent, redact_url, traceparent_of
from tests.support.procs import ROOT

BROWSER = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.mark.parametrize(("environ", "endpoint"), [
    ({}, None),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, "http://collector:4318/v1/traces"),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "https://c.example/otlp/"}, "https://c.example/otlp/v1/traces"),
    ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/custom"}, "http://c:4318/custom"),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://a:4318", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://b/t"},
     "http://b/t"),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "TRUE"}, None),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "false"},
     "http://c:4318/v1/traces"),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none"}, None),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"},
     "http://c:4318/v1/traces"),
])
def test_settings_turn_export_on_only_with_an_endpoint(environ: dict[str, str], endpoint: str | None) -> None:
    settings = TracingSettings.from_env(environ, service="leadline-proxy")
    assert settings.endpoint == endpoint
    assert settings.enabled is (endpoint is not None)
    assert settings.service_name == "leadline-proxy"


def test_otel_service_name_wins_over_the_programs_default() -> None:
    settings = TracingSettings.from_env({"OTEL_SERVICE_NAME": "edge-eu"}, service="leadline-proxy")
    assert settings.service_name == "edge-eu"


@pytest.mark.parametrize(("environ", "setting"), [
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4318"}, "OTEL_EXPORTER_OTLP_ENDPOINT"),
    ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "grpc://c:4317"}, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
     "OTEL_EXPORTER_OTLP_PROTOCOL"),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/json"},
     "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"),
    ({"OTEL_TRACES_EXPORTER": "zipkin"}, "OTEL_TRACES_EXPORTER"),
])
def test_settings_leadline_cannot_honour_name_the_variable(environ: dict[str, str], setting: str) -> None:
    with pytest.raises(ConfigError) as raised:
        TracingSettings.from_env(environ, service="x")
    assert raised.value.setting == setting


def test_proxy_with_a_bad_otel_setting_stops_with_one_line_and_exit_2() -> None:
    done = subprocess.run([sys.executable, "-m", "proxy"], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, env={"PATH": "/usr/bin:/bin",
                                           "OTEL_EXPORTER_OTLP_ENDPOINT": "not a url"}, check=False)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "proxy: OTEL_EXPORTER_OTLP_ENDPOINT: must be an http:// or https:// URL, got 'not a url'"]


@pytest.mark.parametrize(("header", "valid"), [
    (BROWSER, True),
    ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", True),  # not sampled is still a parent
    ("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-later-fields", True),  # a future version
    ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra", False),  # 00 has no more fields
    ("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", False),
    ("00-00000000000000000000000000000000-00f067aa0ba902b7-01", False),
    ("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", False),
    ("00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01", False),  # lowercase only
    ("00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01", False),
    ("", False), (None, False), ("garbage", False),
])
def test_parse_traceparent_follows_w3c(header: str | None, valid: bool) -> None:
    context = parse_traceparent(header)
    assert (context is not None) is valid
    if context is not None:
        assert context.is_remote
        assert f"{context.trace_id:032x}" == "4bf92f3577b34da6a3ce929d0e0e4736"


def test_off_every_helper_is_the_no_op_span_and_the_header_passes_through() -> None:
    off = Tracing(TracingSettings()).start()
    assert not off.enabled
    spans = [
        off.server_span("POST", route="/api/forms/{form}", path="/api/forms/lead", traceparent=BROWSER),
        off.producer_span(exchange="x", routing_key="form.lead", message_id="id"),
        off.consumer_span(queue="q", exchange="x", routing_key="form.lead", message_id="id",
                          traceparent=BROWSER),
        off.client_span("POST", "http://crm/leads"),
    ]
    assert all(span is INVALID_SPAN for span in spans)
    assert off.link(BROWSER) is None
    assert traceparent_of(spans[-1], BROWSER) == BROWSER
    with tracing.activate(spans[-1]):
        pass
    tracing.finish_http(spans[-1], 503)
    tracing.finish_server(spans[0], 500)


def test_off_the_proxy_never_imports_the_sdk_or_the_exporter() -> None:
    code = ("import sys; from proxy.app import create_app; from proxy.settings import Settings; "
            "app = create_app(Settings.from_env({})); "
            "print(sorted(m for m in sys.modules if m.startswith(('opentelemetry.sdk', "
            "'opentelemetry.exporter', 'requests', 'google.protobuf'))))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          check=True)
    assert done.stdout.strip() == "[]"


@pytest.fixture
def recorded() -> Iterator[tuple[Tracing, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    on = Tracing(TracingSettings(endpoint="http://unused", service_name="test")).start(exporter=exporter)
    yield on, exporter
    on.force_flush()


def _finished(on: Tracing, exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    assert on.force_flush()
    return list(exporter.get_finished_spans())


def test_consumer_span_is_the_child_of_the_publish_its_message_names(
        recorded: tuple[Tracing, InMemorySpanExporter]) -> None:
    on, exporter = recorded
    server = on.server_span("POST", route="/api/forms/{form}", path="/api/forms/lead", traceparent=BROWSER)
    producer = on.producer_span(exchange="leadline.leads", routing_key="form.lead", message_id="sid-1",
                                parent=server, body_size=42, server_address="rabbit", server_port=5672)
    header = traceparent_of(producer)
    producer.end()
    tracing.finish_server(server, 202)
    consumer = on.consumer_span(queue="leadline.work.v1", exchange="leadline.leads", routing_key="form.lead",
                                message_id="sid-1", traceparent=(header or "").encode(), delivery_tag=7)
    with tracing.activate(consumer):
        client = on.client_span("post", "https://user:secret@crm.example/leads?api_token=t0k&x=1")
        outgoing = traceparent_of(client, "fallback")
        tracing.finish_http(client, 201)
    spans = {span.kind: span for span in _finished(on, exporter)}
    assert set(spans) == {SpanKind.SERVER, SpanKind.PRODUCER, SpanKind.CONSUMER, SpanKind.CLIENT}
    trace_ids = {span.context.trace_id for span in spans.values()}
    assert trace_ids == {0x4bf92f3577b34da6a3ce929d0e0e4736}
    assert spans[SpanKind.SERVER].parent is not None
    assert spans[SpanKind.SERVER].parent.span_id == 0x00f067aa0ba902b7
    assert spans[SpanKind.PRODUCER].parent.span_id == spans[SpanKind.SERVER].context.span_id  # type: ignore[union-attr]
    assert spans[SpanKind.CONSUMER].parent.span_id == spans[SpanKind.PRODUCER].context.span_id  # type: ignore[union-attr]
    assert spans[SpanKind.CLIENT].parent.span_id == spans[SpanKind.CONSUMER].context.span_id  # type: ignore[union-attr]
    assert outgoing == traceparent_of_readable(spans[SpanKind.CLIENT])
    assert spans[SpanKind.PRODUCER].name == "publish leadline.leads"
    assert dict(spans[SpanKind.PRODUCER].attributes or {}) == {
        "messaging.system": "rabbitmq", "messaging.operation.type": "send",
        "messaging.operation.name": "publish", "messaging.destination.name": "leadline.leads",
        "messaging.rabbitmq.destination.routing_key": "form.lead", "messaging.message.id": "sid-1",
        "messaging.message.body.size": 42, "server.address": "rabbit", "server.port": 5672}
    consumer_attributes = dict(spans[SpanKind.CONSUMER].attributes or {})
    assert consumer_attributes["messaging.operation.type"] == "process"
    assert consumer_attributes["messaging.destination.subscription.name"] == "leadline.work.v1"
    assert consumer_attributes["messaging.rabbitmq.message.delivery_tag"] == 7
    client_attributes = dict(spans[SpanKind.CLIENT].attributes or {})
    assert client_attributes == {
        "http.request.method": "POST", "server.address": "crm.example", "server.port": 443,
        "url.full": "https://REDACTED:REDACTED@crm.example/leads?api_token=REDACTED&x=REDACTED",
        "http.response.status_code": 201}
    assert spans[SpanKind.CLIENT].status.status_code is StatusCode.UNSET


def traceparent_of_readable(span: ReadableSpan) -> str:
    assert span.context is not None
    return f"00-{span.context.trace_id:032x}-{span.context.span_id:016x}-{int(span.context.trace_flags):02x}"


def test_each_lead_of_a_shared_message_links_to_the_publish(
        recorded: tuple[Tracing, InMemorySpanExporter]) -> None:
    on, exporter = recorded
    publish = "00-11111111111111111111111111111111-2222222222222222-01"
    links = [on.link(publish, {"leadline.lead.index": 0}), on.link("junk"), on.link(None)]
    assert links[1:] == [None, None]
    lead = "00-33333333333333333333333333333333-4444444444444444-01"
    span = on.consumer_span(queue="q", exchange="x", routing_key="form.lead", message_id="sid",
                            traceparent=lead, links=links)
    span.end()
    [finished] = _finished(on, exporter)
    assert [(link.context.trace_id, link.context.span_id) for link in finished.links] == [
        (0x11111111111111111111111111111111, 0x2222222222222222)]
    assert dict(finished.links[0].attributes or {}) == {"leadline.lead.index": 0}


def test_failures_carry_a_class_name_never_the_exceptions_message(
        recorded: tuple[Tracing, InMemorySpanExporter]) -> None:
    on, exporter = recorded
    span = on.client_span("POST", "http://crm/leads")
    with pytest.raises(ValueError, match=r"ada@example\.com"), tracing.activate(span):
        raise ValueError("refused ada@example.com")
    timeout = on.client_span("POST", "http://crm/leads")
    tracing.finish_http(timeout, None, error_type="TimeoutError")
    refused = on.client_span("POST", "http://crm/leads")
    tracing.finish_http(refused, 422)
    server = on.server_span("GET", route=None, path="/nowhere", traceparent=None)
    tracing.finish_server(server, 503)
    first, second, third, fourth = _finished(on, exporter)
    assert first.attributes is not None
    assert first.attributes["error.type"] == "ValueError"
    assert first.status.status_code is StatusCode.ERROR
    assert not first.status.description
    assert not first.events  # no exception event: its message may hold personal data
    assert (second.attributes or {})["error.type"] == "TimeoutError"
    assert (third.attributes or {})["error.type"] == "422"
    assert fourth.parent is None  # no traceparent: a trace of its own
    assert fourth.name == "GET"
    assert (fourth.attributes or {})["error.type"] == "503"


@pytest.mark.parametrize(("url", "redacted"), [
    ("http://crm:8090/leads", "http://crm:8090/leads"),
    ("https://acme.pipedrive.com/api/v1/persons?api_token=s3cret", "https://acme.pipedrive.com/api/v1/persons?api_token=REDACTED"),
    ("https://u:p@h/x?a=1&b=", "https://REDACTED:REDACTED@h/x?a=REDACTED&b=REDACTED"),
    ("https://h/x#frag", "https://h/x"),
])
def test_redact_url_keeps_no_secret(url: str, redacted: str) -> None:
    assert redact_url(url) == redacted


def test_the_fast_encoder_says_exactly_what_the_exporters_encoder_says(
        recorded: tuple[Tracing, InMemorySpanExporter]) -> None:
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    from leadline.otlp_export import encode

    on, exporter = recorded
    server = on.server_span("POST", route="/api/forms/{form}", path="/api/forms/lead", traceparent=BROWSER,
                            server_address="127.0.0.1", server_port=8080, protocol_version="1.1")
    producer = on.producer_span(exchange="", routing_key="q", message_id="sid", parent=server, body_size=0)
    for key, value in (("f", 1.5), ("no", False), ("yes", True), ("empty", ""), ("neg", -3), ("big", 2**62),
                       ("zero", 0), ("unicode", "Zürich 中文")):
        producer.set_attribute(key, value)
    tracing.fail(producer, "PublishNotConfirmed")
    producer.end()
    tracing.finish_server(server, 503)
    root = on.server_span("GET", route=None, path="/", traceparent=None)
    tracing.finish_server(root, 200)
    consumer = on.consumer_span(queue="q", exchange="x", routing_key="k", message_id=None,
                                traceparent=BROWSER, links=[on.link(BROWSER, {"i": 1}), on.link(BROWSER)])
    consumer.end()
    spans = _finished(on, exporter)
    ours = encode(spans)
    assert ours is not None
    assert ExportTraceServiceRequest.FromString(ours) == encode_spans(spans)

    odd = on.client_span("POST", "http://crm/leads", attributes={"list": ("a", "b")})
    odd.end()
    assert encode(_finished(on, exporter)[-1:]) is None, "a sequence value is the exporter's to encode"
