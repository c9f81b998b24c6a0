"""A resource alarm blocks every publishing connection of the cluster: the
proxy answers 503 within PUBLISH_TIMEOUT and says `blocked` on /readyz; the
worker keeps delivering what it holds and acks no lead whose retry copy was
not confirmed; everything flows again once the alarm clears."""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest

from devtools.cluster import Cluster
from devtools.status import metric_sum
from leadline.topology import Topology
from tests.cluster.conftest import (
    ORIGIN,
    PUBLISH_TIMEOUT,
    Client,
    MakeProxy,
    broker_of,
    figure,
    get_json,
    metrics_text,
    until,
)
from tests.worker.conftest import fake_crm, make_lead, publish, running_worker, settings_for
from worker.consumer import Worker

pytestmark = [pytest.mark.cluster, pytest.mark.slow]


async def post(client: Client, key: str) -> tuple[int, float]:
    lead = {"name": "Ada Lovelace", "email": "ada@example.com", "consent": True}
    began = time.monotonic()
    async with client.post("/api/forms/lead", data=orjson.dumps(lead), headers={
            "Content-Type": "application/json", "Idempotency-Key": key, "Origin": ORIGIN}) as answer:
        return answer.status, time.monotonic() - began


def worker_counter(worker: Worker, name: str) -> float:
    return metric_sum(worker.metrics.render().decode(), name) or 0.0


async def test_a_memory_alarm_is_503_and_blocked_while_the_worker_drains_and_acks_nothing_unconfirmed(
    healthy: Cluster, make_proxy: MakeProxy, topology: Topology
) -> None:
    cluster = healthy
    leads = [make_lead() for _ in range(40)]
    await publish(cluster.nodes[0].url, topology, leads)  # waiting for the worker
    async with fake_crm() as crm:
        crm.configure(fail_rate=0.3)  # some leads need a retry copy
        proxy = await make_proxy(cluster.amqp_url())
        broker = broker_of(proxy)
        alarmed = cluster.nodes[2]  # any node: the alarm blocks publishers cluster-wide
        await asyncio.to_thread(cluster.set_memory_alarm, alarmed)
        try:
            first, first_took = await post(proxy, "alarm-lead-0001")
            assert first == 503
            assert first_took < PUBLISH_TIMEOUT + 1.0
            await until(lambda: broker.blocked, 10, "the proxy's connection blocked")
            status, ready = await get_json(proxy, "/readyz")
            assert (status, ready["status"]) == (503, "blocked")
            again, again_took = await post(proxy, "alarm-lead-0001")  # the outbox retries
            assert again == 503
            assert "leadline_proxy_broker_blocked 1.0" in await metrics_text(proxy)

            async with running_worker(settings_for(cluster.amqp_url(), topology, crm)) as worker:
                await until(lambda: crm.state.stats.created > 0
                            and worker_counter(worker, "leadline_worker_republish_failures_total") > 0,
                            30, "the worker delivering leads and its retry copies not confirmed")
                await asyncio.sleep(1.0)
                drained = len(crm.state.leads)
                unconfirmed = worker_counter(worker, "leadline_worker_republish_failures_total")
                # The counter of leads acked after a confirmed retry copy stays at 0.
                assert worker_counter(worker, "leadline_worker_retried_total") == 0
                await asyncio.to_thread(cluster.clear_memory_alarm, alarmed)
                cleared_at = time.monotonic()
                await until(lambda: not broker.blocked, 10, "the proxy unblocked")
                unblocked = time.monotonic() - cleared_at
                crm.configure(fail_rate=0.0)
                await until(lambda: {sid for sid, _ in leads} <= set(crm.state.leads), 60,
                            "every lead in the CRM")
                all_in = time.monotonic() - cleared_at
        finally:
            await asyncio.to_thread(cluster.clear_memory_alarm, alarmed)
        status, ready = await get_json(proxy, "/readyz")
        assert (status, ready["status"]) == (200, "ready")
        after, _ = await post(proxy, "alarm-lead-0001")
        assert after == 202
        assert await asyncio.to_thread(cluster.alarms) == []
    figure(f"memory alarm: the proxy's first publish 503 after {first_took:.2f}s (PUBLISH_TIMEOUT "
           f"{PUBLISH_TIMEOUT:g}s), then 503 in {again_took * 1000:.0f} ms with /readyz 'blocked'; "
           "the worker "
           f"delivered {drained} of {len(leads)} waiting leads during the alarm, {unconfirmed:.0f} retry "
           f"copies not confirmed and none of those leads acked; unblocked {unblocked:.2f}s after the "
           f"alarm cleared, all {len(leads)} in the CRM {all_in:.2f}s after it, "
           f"{crm.state.stats.duplicates} duplicate deliveries absorbed")
