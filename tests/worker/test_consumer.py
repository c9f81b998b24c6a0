"""The worker against the real RabbitMQ and the fake CRM, in process.

Each failure mode first: chaos, CRM down, permanent errors, poison, an
unconfirmed republish, a dropped connection, a changed RETRY_DELAYS.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import replace
from typing import Any

import aiormq
import orjson
from pamqp.commands import Basic

from leadline.message import (
    H_ATTEMPTS,
    H_CRM_STATUS,
    H_DEAD_AT,
    H_FAILURE_KIND,
    H_FIRST_FAILURE_AT,
    H_FORM,
    H_LAST_FAILURE_AT,
    lead_properties,
)
from leadline.topology import Topology
from tests.support import rabbit
from tests.worker.conftest import (
    Crm,
    dead_letters,
    depth,
    make_lead,
    publish,
    publish_raw,
    queues_empty,
    running_worker,
    settings_for,
    wait_for,
)


async def test_accepted_lead_reaches_the_crm_once_with_its_key_and_trace(
    amqp_url: str, topology: Topology, crm: Crm
) -> None:
    sid, fields = make_lead()
    async with running_worker(settings_for(amqp_url, topology, crm)) as worker:
        await publish(amqp_url, topology, [(sid, fields)])
        await wait_for(lambda: len(crm.state.leads) == 1, 10, "the lead in the CRM")
        await wait_for(lambda: worker.in_flight == 0, 5, "the ack")
    stored = crm.state.leads[sid]
    assert (stored["id"], stored["form"], stored["lead"]) == (sid, "lead", fields)
    assert stored["traceparent"].startswith("00-")
    assert stored["received_at"]
    assert await depth(amqp_url, topology.work_queue) == 0


async def test_hundreds_of_leads_through_a_flaky_crm_land_exactly_once_and_rejects_are_dead_lettered(
    amqp_url: str, topology: Topology, crm: Crm
) -> None:
    # 30% answered 503, 5% stored and then answered too late (the worst case).
    crm.configure(fail_rate=0.30, timeout_rate=0.05, hang_seconds=30)
    good = [make_lead() for _ in range(290)]
    rejected = [make_lead("reject.test") for _ in range(10)]
    leads = good + rejected
    settings = settings_for(amqp_url, topology, crm, crm_timeout=0.4, max_attempts=15)
    async with running_worker(settings):
        await publish(amqp_url, topology, leads)
        await wait_for(lambda: len(crm.state.leads) == len(good), 45, "every good lead in the CRM", 0.2)
        await wait_for(lambda: depth(amqp_url, topology.dead_letter_queue), 20, "the rejects dead-lettered")
        await wait_for(lambda: queues_empty(amqp_url, topology), 20, "work and retry queues drained", 0.2)
    assert set(crm.state.leads) == {sid for sid, _ in good}
    assert crm.state.stats.created == len(good)  # one record each, whatever the duplicates
    assert crm.state.stats.failed > 0
    assert crm.state.stats.late > 0
    letters = await dead_letters(amqp_url, topology)
    assert sorted(letter.id for letter in letters) == sorted(sid for sid, _ in rejected)
    assert {(letter.kind, letter.crm_status) for letter in letters} == {("permanent", 422)}


async def test_a_lead_failing_alone_gets_exactly_max_attempts_calls_spaced_by_the_delays_then_the_dlq(
    amqp_url: str, topology: Topology, crm: Crm
) -> None:
    # The CRM is up (it answers probes) but refuses these leads with a 503 each time.
    crm.configure(fail_domain="flaky.test")
    delays = (0.3, 0.6)
    settings = settings_for(amqp_url, topology, crm, max_attempts=4, retry_delays=delays)
    leads = [make_lead("flaky.test") for _ in range(3)]
    async with running_worker(settings):
        await publish(amqp_url, topology, leads)
        await wait_for(lambda: depth(amqp_url, topology.dead_letter_queue), 15, "the first dead letter")
        await wait_for(lambda: queues_empty(amqp_url, settings.topology), 15, "nothing left to retry")
    letters = {letter.id: letter for letter in await dead_letters(amqp_url, topology)}
    assert set(letters) == {sid for sid, _ in leads}
    for sid, _ in leads:
        times = [call["at"] for call in crm.state.calls if call["id"] == sid]
        assert len(times) == 4, f"{sid}: {len(times)} calls"
        gaps = [b - a for a, b in itertools.pairwise(times)]
        for gap, expected in zip(gaps, (0.3, 0.6, 0.6), strict=True):  # the last delay repeats
            assert expected - 0.05 <= gap <= expected + 0.7, gaps
        letter = letters[sid]
        assert (letter.attempts, letter.kind, letter.crm_status, letter.error_class) == (
            4, "temporary", 503, "HTTP503")
        headers = letter.headers
        assert headers[H_FIRST_FAILURE_AT] < headers[H_LAST_FAILURE_AT] <= headers[H_DEAD_AT]
        assert headers[H_ATTEMPTS] == 4
        assert headers[H_FORM] == "lead"


async def test_crm_down_pauses_the_worker_spends_no_attempt_and_resumes_when_a_probe_answers(
    amqp_url: str, topology: Topology, crm: Crm
) -> None:
    crm.configure(down=True)
    leads = [make_lead() for _ in range(20)]
    settings = settings_for(amqp_url, topology, crm, max_attempts=2, retry_delays=(0.2,))
    async with running_worker(settings) as worker:
        await publish(amqp_url, topology, leads)
        await wait_for(lambda: worker.paused is not None, 10, "the worker to pause")
        assert worker.paused is not None
        assert worker.paused.reason == "down"
        assert worker.metrics.crm_paused.labels("down")._value.get() == 1
        await wait_for(lambda: crm.state.stats.probes >= 3, 10, "probes while paused")
        failed_writes = crm.state.stats.failed
        # the leads wait in the work queue, handed back unacked: no tier, no dead letter
        await wait_for(lambda: depth(amqp_url, topology.work_queue), 5, "the leads back in the work queue")
        assert await depth(amqp_url, topology.work_queue) == 20
        assert crm.state.stats.failed == failed_writes  # paused: only probes reach the CRM
        crm.configure(down=False)
        await wait_for(lambda: len(crm.state.leads) == 20, 15, "every lead once the CRM is back")
        assert worker.paused is None
        assert worker.metrics.crm_paused.labels("down")._value.get() == 0
    assert await depth(amqp_url, topology.dead_letter_queue) == 0
    assert sum(s.get() for s in _samples(worker.metrics.retried)) == 0
    assert crm.state.stats.created == 20


async def test_permanent_crm_error_is_dead_lettered_after_one_call(
    amqp_url: str, topology: Topology, crm: Crm
) -> None:
    sid, fields = make_lead("reject.test")
    async with running_worker(settings_for(amqp_url, topology, crm)):
        await publish(amqp_url, topology, [(sid, fields)])
        await wait_for(lambda: depth(amqp_url, topology.dead_letter_queue), 10, "the dead letter")
    assert [call["id"] for call in crm.state.calls] == [sid]
    [letter] = await dead_letters(amqp_url, topology)
    assert (letter.id, letter.kind, letter.attempts, letter.crm_status) == (sid, "permanent", 1, 422)
    assert "reject.test" in letter.error  # the CRM's own words


async def test_poison_messages_go_to_the_dlq_at_once_with_the_reason(
    amqp_url: str, topology: Topology, crm: Crm
) -> None:
    _sid, fields = make_lead()
    async with running_worker(settings_for(amqp_url, topology, crm)) as worker:
        work = topology.work_queue
        await publish_raw(amqp_url, work, b"{not json", lead_properties(submission_id="p-json", form="lead"))
        await publish_raw(amqp_url, work, orjson.dumps({**fields, "email": "nope"}),
                          lead_properties(submission_id="p-invalid", form="lead"))
        await publish_raw(amqp_url, work, orjson.dumps(fields),
                          lead_properties(submission_id="p-form", form="survey"))
        # (A message without message_id cannot be sent with aiormq, which invents one;
        # test_story covers that case.)
        await publish_raw(amqp_url, work, b"[]", Basic.Properties(
            delivery_mode=2, message_id="p-list", headers={H_FORM: "lead", H_ATTEMPTS: 0}))
        await wait_for(lambda: depth(amqp_url, topology.dead_letter_queue), 10, "dead letters")
        await wait_for(lambda: worker.metrics.dead_lettered.labels("poison")._value.get() == 4, 10,
                       "four poison letters")
    letters = await dead_letters(amqp_url, topology)
    by_id = {letter.id: letter for letter in letters}
    assert sorted(letter.error_class for letter in letters) == [
        "InvalidLead", "InvalidLead", "NotJson", "UnknownForm"]
    assert {letter.kind for letter in letters} == {"poison"}
    assert "email" in by_id["p-invalid"].error
    assert "JSON object" in by_id["p-list"].error
    assert by_id["p-form"].headers[H_FAILURE_KIND] == "poison"
    assert H_CRM_STATUS not in by_id["p-json"].headers
    assert crm.state.stats.requests == 0


async def test_unconfirmed_retry_publish_leaves_the_lead_unacked_until_it_comes_back(
    amqp_url: str, topology: Topology, crm: Crm
) -> None:
    crm.configure(fail_domain="flaky.test")
    sid, fields = make_lead("flaky.test")
    async with running_worker(settings_for(amqp_url, topology, crm)) as worker:
        # The retry tier vanishes under the worker: its publish is returned (mandatory).
        connection = await aiormq.connect(amqp_url)
        channel = await connection.channel()
        await channel.queue_delete(topology.retry_queue(0.5))
        await connection.close()
        await publish(amqp_url, topology, [(sid, fields)])
        await wait_for(lambda: worker.metrics.republish_failures._value.get() >= 1, 10, "a returned publish")
        # Not acked, not lost: the reconnect redeclares the tier and the lead comes back.
        crm.configure(fail_domain="")
        await wait_for(lambda: sid in crm.state.leads, 15, "the lead after all")
        assert worker.broker.connects >= 2
    assert await depth(amqp_url, topology.dead_letter_queue) == 0


async def test_dropped_connection_is_reconnected_and_every_lead_lands(
    amqp_url: str, vhost: str, topology: Topology, crm: Crm
) -> None:
    crm.configure(latency_ms=20)
    leads = [make_lead() for _ in range(200)]
    async with running_worker(settings_for(amqp_url, topology, crm)) as worker:
        await publish(amqp_url, topology, leads)
        await wait_for(lambda: len(crm.state.leads) >= 20, 10, "some leads through")
        await asyncio.to_thread(rabbit.close_connections, vhost)
        await wait_for(lambda: worker.broker.connects >= 2, 15, "a reconnect")
        await wait_for(lambda: len(crm.state.leads) == 200, 20, "every lead after the reconnect")
        await wait_for(lambda: queues_empty(amqp_url, topology), 10, "the work queue drained")
    assert crm.state.stats.created == 200


async def test_restart_with_changed_retry_delays_starts_cleanly(
    amqp_url: str, topology: Topology, crm: Crm
) -> None:
    settings = settings_for(amqp_url, topology, crm, retry_delays=(0.5, 1.0))
    async with running_worker(settings) as first:
        assert first.broker.connects == 1
    changed = replace(settings, retry_delays=(0.3, 2.0, 5.0))
    sid, fields = make_lead()
    async with running_worker(changed) as second:
        await publish(amqp_url, topology, [(sid, fields)])
        await wait_for(lambda: sid in crm.state.leads, 10, "a lead through the new worker")
        assert second.broker.connects == 1  # a 406 would have closed the channel and reconnected
    assert await depth(amqp_url, changed.topology.retry_queue(0.3)) == 0


def _samples(counter: Any) -> list[Any]:
    """Every labelled child's value holder of a prometheus counter."""
    return [child._value for child in counter._metrics.values()]
