"""A node dies or hangs under a stream of submissions: each proxy answers 202
or 503 within PUBLISH_TIMEOUT, moves to a node that works, and every lead it
answered 202 reaches the CRM (the fake stores one record per Idempotency-Key,
so a lead published twice is one record)."""

from __future__ import annotations

import asyncio
import time

import pytest

from devtools.cluster import Cluster
from leadline.topology import Topology
from tests.cluster.conftest import (
    PUBLISH_TIMEOUT,
    MakeProxy,
    Visitors,
    broken,
    broker_of,
    figure,
    get_json,
    metrics_text,
    until,
)
from tests.worker.conftest import fake_crm, running_worker, settings_for

pytestmark = [pytest.mark.cluster, pytest.mark.slow]


async def test_kill_9_of_a_node_mid_stream_loses_no_lead_answered_202(
    healthy: Cluster, make_proxy: MakeProxy, topology: Topology
) -> None:
    """Proxy A is on the node that dies: it declared everything through it, so
    that node also leads the work queue and is the dead-letter queue's home
    (a new leader to elect, a classic queue to go without, stale-channel
    nacks). Proxy B is on the other two: it sees only the leader's death."""
    cluster = healthy
    async with fake_crm() as crm:
        proxy_a = await make_proxy(cluster.amqp_url())
        a = broker_of(proxy_a)
        node = cluster.node_at(a.node)
        assert await asyncio.to_thread(cluster.leader_of, topology.work_queue) == node
        proxy_b = await make_proxy(cluster.amqp_url(cluster.others(node)))
        b = broker_of(proxy_b)
        async with running_worker(settings_for(cluster.amqp_url(), topology, crm)):
            on_a, on_b = Visitors(proxy_a), Visitors(proxy_b)
            async with on_a.streaming(pages=8), on_b.streaming(pages=8):
                await asyncio.sleep(1.0)
                async with broken(cluster, node) as killed_at:
                    await until(lambda: a.connected and a.node != node.address, 30, "A on another node")
                    await until(lambda: on_a.first_202_after(killed_at + 0.5) is not None, 30,
                                "A's 202s after the kill")
                    await asyncio.sleep(1.0)  # traffic on the two survivors
                    status, ready = await get_json(proxy_a, "/readyz")
                    assert (status, ready["node"]) == (200, a.node)
                    text = await metrics_text(proxy_a)
                    assert f'leadline_proxy_broker_node{{node="{a.node}"}} 1.0' in text
                    assert f'leadline_proxy_broker_node{{node="{node.address}"}} 0.0' in text
                    settled_at = time.monotonic()
            accepted = on_a.accepted | on_b.accepted
            await until(lambda: accepted <= set(crm.state.leads), 60, "every 202 in the CRM")
    lost = accepted - set(crm.state.leads)
    assert not lost, f"{len(lost)} leads answered 202 are not in the CRM"
    assert accepted == on_a.posted | on_b.posted, "every visitor's outbox got its 202 in the end"
    assert set(crm.state.leads) == accepted
    assert b.connects == 1, "B's node lived: it kept its connection"
    window_a = on_a.gap(killed_at, settled_at)
    stall_b = on_b.gap(killed_at, settled_at)
    assert stall_b < 5.0, f"B's publishes stalled {stall_b:.1f}s after the leader died"
    figure(f"kill -9 of a node mid-stream, {len(accepted)} leads answered 202, 0 lost, "
           f"{crm.state.stats.duplicates} duplicate deliveries absorbed by the CRM's Idempotency-Key. "
           f"Proxy A, on that node (which led the work queue and held the DLQ): no 202 for "
           f"{window_a:.2f}s, answers {on_a.statuses(killed_at)}, publishing channels replaced after "
           f"nacks {a.channels_replaced}. Proxy B, on another node: publishes stalled {stall_b:.2f}s "
           f"(until a new leader), the slowest answer {on_b.longest(killed_at - 0.5, killed_at + 1.0):.2f}s, "
           f"answers {on_b.statuses(killed_at)}")


async def test_a_hung_leader_sigstop_gets_503s_within_the_publish_timeout_then_recovers(
    healthy: Cluster, make_proxy: MakeProxy, topology: Topology
) -> None:
    """Proxy A is on the node that hangs (it declared the queues there, so that
    node leads the work queue); proxy B is on the other two."""
    cluster = healthy
    async with fake_crm() as crm:
        proxy_a = await make_proxy(cluster.amqp_url())
        a = broker_of(proxy_a)
        node = cluster.node_at(a.node)
        assert await asyncio.to_thread(cluster.leader_of, topology.work_queue) == node
        others = cluster.amqp_url(cluster.others(node))
        proxy_b = await make_proxy(others)
        b = broker_of(proxy_b)
        async with running_worker(settings_for(others, topology, crm)):
            on_a, on_b = Visitors(proxy_a), Visitors(proxy_b)
            async with on_a.streaming(pages=6), on_b.streaming(pages=6):
                await asyncio.sleep(1.0)
                async with broken(cluster, node, "stop") as stopped_at:
                    await until(lambda: a.connected and a.node != node.address, 30, "A off the hung node")
                    a_moved = time.monotonic() - stopped_at
                    await until(lambda: on_b.first_202_after(stopped_at + 1.0) is not None, 30,
                                "B's first 202 while the node hangs")
                    await asyncio.sleep(1.0)
                    b_back = on_b.gap(stopped_at, time.monotonic())
                    a_202_while_hung = on_a.first_202_after(stopped_at)
                resumed_at = time.monotonic()
                await until(lambda: on_a.first_202_after(resumed_at) is not None, 30,
                            "A's first 202 after the node resumed")
                a_back = on_a.first_202_after(resumed_at) or 0.0
            await until(lambda: (on_a.accepted | on_b.accepted) <= set(crm.state.leads), 60,
                        "every 202 in the CRM")
    slowest = max(v.longest(stopped_at - 1.0, resumed_at) for v in (on_a, on_b))
    assert slowest < PUBLISH_TIMEOUT + 1.0, f"an answer took {slowest:.2f}s while a node hung"
    assert b.connects == 1, "B's node lived: it kept its connection"
    assert not (on_a.accepted | on_b.accepted) - set(crm.state.leads)
    figure(f"SIGSTOP of the work queue's leader: every answer within {slowest:.2f}s (PUBLISH_TIMEOUT "
           f"{PUBLISH_TIMEOUT:g}s). Proxy B, already on another node: 503s, no 202 for {b_back:.2f}s "
           f"(until a new leader), the node still stopped. Proxy A, on the hung node: left it after "
           f"{a_moved:.2f}s, " + ("no 202 while it hung (channels opened after the hang wait for the "
           "cluster to declare the node down, net_ticktime)" if a_202_while_hung is None else
           f"a 202 {a_202_while_hung:.2f}s after the stop") + f", a 202 {a_back:.2f}s after SIGCONT; "
           f"answers A {on_a.statuses(stopped_at)}, B {on_b.statuses(stopped_at)}; 0 lost of "
           f"{len(on_a.accepted | on_b.accepted)}")
