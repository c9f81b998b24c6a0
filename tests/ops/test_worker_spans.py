"""One trace from the browser's traceparent to the CRM call, as a collector gets it.

A real `python -m proxy` and `python -m worker` export over OTLP/HTTP to a
local receiver: the proxy's SERVER span is the child of the browser's span,
its PRODUCER span the SERVER's child, the worker's CONSUMER span the
PRODUCER's child and the CLIENT span of the CRM call the CONSUMER's child;
the CRM gets a `traceparent` naming that CLIENT span. A batched CRM call
(HubSpot) is one CLIENT span, child of the first lead's CONSUMER span,
linked to the others'. No personal data reaches the collector.
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from leadline.topology import Topology
from leadline.tracing import TracingSettings
from tests.ops.otlp import Received, Receiver
from tests.support.http import post
from tests.support.ports import free_port
from tests.support.procs import Service
from tests.worker.conftest import Crm, fake_crm, make_lead, publish, running_worker, settings_for, wait_for
from tests.worker.vendors import running_fake

pytestmark = [pytest.mark.broker, pytest.mark.slow]

LEAD = {"name": "Grace Hopper", "email": "grace.hopper@example.com", "company": "Eckert-Mauchly",
        "message": "Please call me about COBOL", "consent": True}
PERSONAL = ("Grace", "Hopper", "grace.hopper", "Eckert", "COBOL")


@pytest.fixture
async def crm() -> AsyncIterator[Crm]:
    async with fake_crm() as running:
        yield running


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


def _one(spans: list[Received], kind: str, service: str) -> Received:
    found = [s for s in spans if s.kind == kind and s.service == service]
    assert len(found) == 1, (kind, service, spans)
    return found[0]


async def test_one_trace_from_the_browser_through_proxy_and_worker_to_the_crm_call(
    amqp_url: str, topology: Topology, receiver: Receiver, crm: Crm, tmp_path: Path
) -> None:
    otel = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, "OTEL_BSP_SCHEDULE_DELAY": "50"}
    common = {"AMQP_URL": amqp_url, "QUEUE_PREFIX": topology.prefix, **otel}
    port = free_port()
    proxy = Service("proxy", ["-m", "proxy", "--port", str(port)], {**common, "RATE_LIMIT": "off"}, tmp_path)
    worker = Service("worker", ["-m", "worker"], {
        **common, "CRM_URL": crm.leads_url, "WORKER_METRICS_PORT": "0", "RETRY_DELAYS": "500ms,1s"}, tmp_path)
    browser_trace, browser_span = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    sid = str(uuid.uuid4())
    proxy.start()
    worker.start()
    try:
        await asyncio.to_thread(proxy.wait_http, f"http://127.0.0.1:{port}/readyz")
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/forms/lead", data=json.dumps(LEAD).encode(), method="POST",
            headers={"Content-Type": "application/json", "Origin": "http://127.0.0.1:8000",
                     "Idempotency-Key": sid, "traceparent": f"00-{browser_trace}-{browser_span}-01"})
        status, _ = await asyncio.to_thread(post, request)
        assert status == 202
        await wait_for(lambda: sid in crm.state.leads, 15, "the lead in the CRM")
        spans = await asyncio.to_thread(receiver.wait_for, lambda got: any(
            s.kind == "CLIENT" and s.trace_id == browser_trace for s in got), 20, "the CLIENT span")
    finally:
        assert worker.stop() == 0, worker.output()
        assert proxy.stop() == 0, proxy.output()
    spans = [s for s in receiver.spans if s.trace_id == browser_trace]
    server = _one(spans, "SERVER", "leadline-proxy")
    producer = _one(spans, "PRODUCER", "leadline-proxy")
    consumer = _one(spans, "CONSUMER", "leadline-worker")
    client = _one(spans, "CLIENT", "leadline-worker")
    assert server.parent_span_id == browser_span
    assert producer.parent_span_id == server.span_id
    assert consumer.parent_span_id == producer.span_id
    assert client.parent_span_id == consumer.span_id
    assert consumer.attributes["messaging.system"] == "rabbitmq"
    assert consumer.attributes["messaging.destination.subscription.name"] == topology.work_queue
    assert consumer.attributes["messaging.message.id"] == sid
    assert consumer.attributes["leadline.crm.outcome"] == "done"
    assert client.attributes["http.request.method"] == "POST"
    assert client.attributes["url.full"] == crm.leads_url
    assert client.attributes["http.response.status_code"] == 201
    # the CRM call carried the CLIENT span's context
    assert crm.state.leads[sid]["traceparent"] == f"00-{browser_trace}-{client.span_id}-01"
    sent = b"".join(receiver.bodies)
    for word in PERSONAL:
        assert word.encode() not in sent, word
    log = worker.output()
    assert browser_trace in log  # the worker's log lines carry the same trace id


async def test_a_batched_crm_call_is_one_client_span_linked_to_every_leads_span(
    amqp_url: str, topology: Topology, receiver: Receiver
) -> None:
    leads = [make_lead() for _ in range(5)]
    async with running_fake("hubspot") as fake:
        placeholder = Crm(fake.url, None)  # type: ignore[arg-type]
        base = settings_for(amqp_url, topology, placeholder, crm_batch_linger=0.5, prefetch=None)
        settings = replace(fake.settings(base),
                           tracing=TracingSettings(f"{receiver.endpoint}/v1/traces", "leadline-worker"))
        async with running_worker(settings) as worker:
            await publish(amqp_url, topology, leads)
            await wait_for(lambda: fake.total_records() == 5, 10, "the batch in HubSpot")
            await wait_for(lambda: worker.in_flight == 0, 5, "the acks")
        spans = await asyncio.to_thread(receiver.wait_for, lambda got: len(
            [s for s in got if s.kind == "CONSUMER"]) == 5 and any(
            s.kind == "CLIENT" and s.attributes.get("url.full", "").endswith("batch/upsert") for s in got),
            20, "five CONSUMER spans and the batch call")
    consumers = {s.span_id: s for s in spans if s.kind == "CONSUMER"}
    [batch] = [s for s in spans if s.kind == "CLIENT" and s.attributes["url.full"].endswith("batch/upsert")]
    assert batch.parent_span_id in consumers
    linked = {span_id for _, span_id in batch.links}
    assert linked | {batch.parent_span_id} == set(consumers)
    assert len(batch.links) == 4
    assert {s.trace_id for s in consumers.values()} == {batch.trace_id} | {
        trace for trace, _ in batch.links}
