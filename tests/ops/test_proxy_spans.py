"""The proxy's spans as a collector gets them: a real `python -m proxy` exporting
over OTLP/HTTP to a local receiver, the real broker behind it.

One submission makes a SERVER span, child of the browser's traceparent, and a
PRODUCER span, child of the SERVER span; the message on the work queue names
the PRODUCER span in its `traceparent` header (the worker's CONSUMER span will
be its child), and the proxy's log line carries the same trace id. Nothing a
visitor typed, nor their address or browser, reaches the collector.
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiormq
import pytest
from pamqp.commands import Basic

from leadline.topology import Topology
from tests.ops.otlp import Received, Receiver
from tests.support.http import post as send
from tests.support.ports import free_port
from tests.support.procs import Service

pytestmark = [pytest.mark.broker, pytest.mark.slow]

LEAD = {"name": "Grace Hopper", "email": "grace.hopper@example.com", "company": "Eckert-Mauchly",
        "message": "Please call me about COBOL", "consent": True}
USER_AGENT = "Mozilla/5.0 (Leadline-test-agent-7f3a)"
PERSONAL = ("Grace", "Hopper", "grace.hopper", "example.com", "Eckert", "COBOL", "Leadline-test-agent")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


@pytest.fixture
def proxy(amqp_url: str, topology: Topology, receiver: Receiver, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    service = Service("proxy", ["-m", "proxy", "--port", str(port)], {
        "AMQP_URL": amqp_url, "QUEUE_PREFIX": topology.prefix, "RATE_LIMIT": "off",
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, "OTEL_BSP_SCHEDULE_DELAY": "50",
        "OTEL_SERVICE_NAME": "proxy-under-test"}, tmp_path)
    service.start()
    try:
        service.wait_http(f"http://127.0.0.1:{port}/readyz")
        yield f"http://127.0.0.1:{port}"
    finally:
        assert service.stop() == 0, service.output()
        log = service.log_path.read_text()
        for word in PERSONAL[:4]:
            assert word not in log


def post(url: str, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(f"{url}/api/forms/lead", data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json", "User-Agent": USER_AGENT,
                                              **headers})
    status, payload = send(request)
    return status, payload


async def take_message(amqp_url: str, topology: Topology) -> aiormq.abc.DeliveredMessage:
    connection = await aiormq.connect(amqp_url)
    try:
        channel = await connection.channel()
        message = await channel.basic_get(topology.work_queue, no_ack=True)
        assert not isinstance(message.delivery, Basic.GetEmpty), "nothing on the work queue"
        return message
    finally:
        await connection.close()


def by_kind(spans: list[Received], sid: str) -> dict[str, Received]:
    mine = [s for s in spans if s.attributes.get("leadline.submission_id") == sid
            or s.attributes.get("messaging.message.id") == sid]
    return {s.kind: s for s in mine}


def test_a_submission_is_a_server_span_under_the_browsers_trace_and_a_producer_span_under_it(
        proxy: str, receiver: Receiver, amqp_url: str, topology: Topology) -> None:
    trace, browser_span = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    sid = str(uuid.uuid4())
    status, answer = post(proxy, LEAD, {"Idempotency-Key": sid,
                                        "traceparent": f"00-{trace}-{browser_span}-01"})
    assert (status, answer["id"]) == (202, sid)

    spans = by_kind(receiver.wait_for(lambda got: len(by_kind(got, sid)) == 2), sid)
    server, producer = spans["SERVER"], spans["PRODUCER"]
    assert (server.trace_id, server.parent_span_id) == (trace, browser_span)
    assert (producer.trace_id, producer.parent_span_id) == (trace, server.span_id)
    assert {server.service, producer.service} == {"proxy-under-test"}
    assert receiver.paths[0] == "/v1/traces"

    assert server.name == "POST /api/forms/{form}"
    port = int(proxy.rsplit(":", 1)[1])
    assert server.attributes == {
        "http.request.method": "POST", "http.route": "/api/forms/{form}", "url.path": "/api/forms/lead",
        "url.scheme": "http", "server.address": "127.0.0.1", "server.port": port,
        "network.protocol.version": "1.1", "http.response.status_code": 202,
        "leadline.form": "lead", "leadline.submission_id": sid}
    assert server.status == "UNSET"
    assert producer.name == f"publish {topology.work_exchange}"
    body_size = producer.attributes.pop("messaging.message.body.size")
    assert body_size == len(json.dumps(LEAD, separators=(",", ":")).encode())
    assert producer.attributes == {
        "messaging.system": "rabbitmq", "messaging.operation.type": "send",
        "messaging.operation.name": "publish", "messaging.destination.name": topology.work_exchange,
        "messaging.rabbitmq.destination.routing_key": "form.lead", "messaging.message.id": sid,
        "server.address": "127.0.0.1", "server.port": 5672}

    message = asyncio.run(take_message(amqp_url, topology))
    headers = message.header.properties.headers or {}
    assert headers["traceparent"] == f"00-{trace}-{producer.span_id}-01", \
        "the message names the PRODUCER span, so the worker's span is its child"
    assert message.header.properties.message_id == sid

    everything = b"".join(receiver.bodies)
    for word in PERSONAL:
        assert word.encode() not in everything, f"{word!r} reached the collector"


def test_without_a_traceparent_the_server_span_starts_the_trace_that_is_logged_and_forwarded(
        proxy: str, receiver: Receiver, amqp_url: str, topology: Topology) -> None:
    sid = str(uuid.uuid4())
    assert post(proxy, LEAD, {"Idempotency-Key": sid, "traceparent": "00-junk"})[0] == 202
    spans = by_kind(receiver.wait_for(lambda got: len(by_kind(got, sid)) == 2), sid)
    server, producer = spans["SERVER"], spans["PRODUCER"]
    assert server.parent_span_id == ""
    assert producer.trace_id == server.trace_id
    message = asyncio.run(take_message(amqp_url, topology))
    assert (message.header.properties.headers or {})["traceparent"].split("-")[1:3] == [
        server.trace_id, producer.span_id]


def test_a_refused_submission_is_a_server_span_with_its_status_and_no_publish(
        proxy: str, receiver: Receiver) -> None:
    sid = str(uuid.uuid4())
    trace = uuid.uuid4().hex
    status, _ = post(proxy, {**LEAD, "email": "not-an-address"}, {
        "Idempotency-Key": sid, "traceparent": f"00-{trace}-{'ab' * 8}-01"})
    assert status == 422
    spans = by_kind(receiver.wait_for(lambda got: by_kind(got, sid)), sid)
    assert set(spans) == {"SERVER"}
    server = spans["SERVER"]
    assert server.trace_id == trace
    assert server.attributes["http.response.status_code"] == 422
    assert server.attributes["leadline.refused"] == "invalid"
    assert server.status == "UNSET"  # a client's mistake is not the server's error
    assert b"not-an-address" not in b"".join(receiver.bodies)


def test_probes_and_scrapes_make_no_spans(proxy: str, receiver: Receiver) -> None:
    for path in ("/healthz", "/readyz", "/metrics"):
        with urllib.request.urlopen(f"{proxy}{path}", timeout=5) as answer:
            assert answer.status == 200
    sid = str(uuid.uuid4())
    assert post(proxy, LEAD, {"Idempotency-Key": sid})[0] == 202
    spans = receiver.wait_for(lambda got: len(by_kind(got, sid)) == 2)
    assert {s.attributes.get("url.path") for s in spans if s.kind == "SERVER"} == {"/api/forms/lead"}
