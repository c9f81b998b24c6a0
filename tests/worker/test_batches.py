"""The worker on the proxy's batch messages: lead by lead, one ack, split when redelivered."""

from __future__ import annotations

import uuid
from typing import Any

import aiormq
import orjson
from pamqp.commands import Basic

from leadline import batch
from leadline.schemas import FormSchema, load_schemas
from leadline.topology import Topology, declare_all
from tests.worker.conftest import (
    Crm,
    amqp_channel,
    dead_letters,
    depth,
    make_lead,
    queues_empty,
    running_worker,
    settings_for,
    wait_for,
)
from worker.consumer import Worker
from worker.dlq import browse

SURVEY = FormSchema("survey", {
    "$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
    "properties": {"email": {"type": "string"}, "score": {"type": "integer"}},
    "required": ["score"], "additionalProperties": False})


def entry(sid: str, fields: dict[str, Any], form: str = "lead") -> batch.Entry:
    return batch.Entry(sid, form, orjson.dumps(fields), received_at="2026-12-01T08:00:00.000Z",
                       traceparent=f"00-{uuid.uuid4().hex}-{'2' * 16}-01")


async def publish_batch(amqp_url: str, topology: Topology, entries: list[batch.Entry],
                        body: bytes | None = None) -> None:
    async with amqp_channel(amqp_url) as channel:
        await declare_all(channel, topology)
        confirm = await channel.basic_publish(
            body if body is not None else batch.encode(entries), exchange=topology.work_exchange,
            routing_key=batch.ROUTING_KEY, mandatory=True,
            properties=batch.properties(len(entries), f"00-{uuid.uuid4().hex}-{'1' * 16}-01"))
        assert isinstance(confirm, Basic.Ack)


async def test_a_batch_of_several_forms_lands_lead_by_lead_and_is_acked_once(
    amqp_url: str, topology: Topology, crm: Crm
) -> None:
    leads = [make_lead() for _ in range(6)]
    entries = [entry(sid, fields) for sid, fields in leads] + [entry("s-1", {"score": 7}, "survey")]
    forms = {**load_schemas(), "survey": SURVEY}
    worker = Worker(settings_for(amqp_url, topology, crm), forms=forms)
    await worker.start()
    try:
        await publish_batch(amqp_url, topology, entries)
        await wait_for(lambda: len(crm.state.leads) == 7, 10, "every lead of the batch in the CRM")
        await wait_for(lambda: worker.in_flight == 0, 5, "the batch acked")
    finally:
        await worker.stop()
    assert await queues_empty(amqp_url, topology)
    assert {sid for sid, _ in leads} | {"s-1"} == set(crm.state.leads)
    assert crm.state.leads["s-1"]["form"] == "survey"
    first = crm.state.leads[leads[0][0]]
    assert first["lead"] == leads[0][1]
    assert first["received_at"] == "2026-12-01T08:00:00.000Z"
    assert first["traceparent"].split("-")[1] == entries[0].traceparent.split("-")[1]  # the lead's own trace
    assert worker.metrics.batch_leads._sum.get() == 7


async def test_a_poison_lead_inside_a_batch_is_dead_lettered_alone(
    amqp_url: str, topology: Topology, crm: Crm
) -> None:
    good = [make_lead() for _ in range(3)]
    bad_sid, bad = make_lead()
    entries = [entry(sid, f) for sid, f in good] + [entry(bad_sid, {**bad, "email": "nope"}),
                                                    entry("unknown-form", {"x": 1}, "nosuchform")]
    async with running_worker(settings_for(amqp_url, topology, crm)) as worker:
        await publish_batch(amqp_url, topology, entries)
        await wait_for(lambda: len(crm.state.leads) == 3, 10, "the good leads")
        await wait_for(lambda: worker.in_flight == 0, 5, "the batch acked")
    letters = {lt.id: lt for lt in await dead_letters(amqp_url, topology)}
    assert set(letters) == {bad_sid, "unknown-form"}
    assert {lt.kind for lt in letters.values()} == {"poison"}
    assert letters[bad_sid].error_class == "InvalidLead"
    assert letters[bad_sid].form == "lead"
    assert orjson.loads(letters[bad_sid].body)["email"] == "nope"  # a single-lead letter, its own fields
    assert await queues_empty(amqp_url, topology)


async def test_a_lead_of_a_batch_that_fails_alone_retries_as_a_single_lead_message(
    amqp_url: str, topology: Topology, crm: Crm
) -> None:
    crm.configure(fail_domain="flaky.test")
    good = [make_lead() for _ in range(3)]
    flaky_sid, flaky = make_lead("flaky.test")
    entries = [entry(sid, f) for sid, f in good] + [entry(flaky_sid, flaky)]
    settings = settings_for(amqp_url, topology, crm, max_attempts=2, retry_delays=(0.3,))
    async with running_worker(settings):
        await publish_batch(amqp_url, topology, entries)
        await wait_for(lambda: len(crm.state.leads) == 3, 10, "the good leads")
        await wait_for(lambda: depth(amqp_url, topology.dead_letter_queue), 10, "the flaky one, alone")
    [letter] = await dead_letters(amqp_url, topology)
    assert (letter.id, letter.attempts, letter.kind) == (flaky_sid, 2, "temporary")
    assert [c["id"] for c in crm.state.calls].count(flaky_sid) == 2


async def test_a_redelivered_batch_is_split_into_single_leads_and_each_lands_once(
    amqp_url: str, topology: Topology, crm: Crm
) -> None:
    leads = [make_lead() for _ in range(5)]
    await publish_batch(amqp_url, topology, [entry(sid, f) for sid, f in leads])
    # A worker took it and died: take it without an ack, then drop the connection.
    connection = await aiormq.connect(amqp_url)
    channel = await connection.channel()
    taken = await channel.basic_get(topology.work_queue, no_ack=False)
    assert batch.is_batch(taken.header.properties)
    await connection.close()
    async with running_worker(settings_for(amqp_url, topology, crm)) as worker:
        await wait_for(lambda: len(crm.state.leads) == 5, 10, "every lead after the split")
        await wait_for(lambda: worker.in_flight == 0, 5, "the acks")
        assert worker.metrics.batches_split._value.get() == 1
    assert crm.state.stats.created == 5
    assert await queues_empty(amqp_url, topology)


async def test_a_body_that_is_not_a_batch_is_one_poison_letter(
    amqp_url: str, topology: Topology, crm: Crm
) -> None:
    async with running_worker(settings_for(amqp_url, topology, crm)):
        await publish_batch(amqp_url, topology, [], body=b'{"v": 99}')
        await wait_for(lambda: depth(amqp_url, topology.dead_letter_queue), 10, "the poison letter")
    [letter] = await dead_letters(amqp_url, topology)
    assert (letter.kind, letter.error_class) == ("poison", "NotABatch")


async def test_a_batch_the_broker_dead_lettered_shows_its_leads_to_the_dlq_tools_and_replays(
    amqp_url: str, topology: Topology, crm: Crm
) -> None:
    leads = [make_lead() for _ in range(3)]
    entries = [entry(sid, f) for sid, f in leads]
    # As the work queue's delivery limit dead-letters it: the batch, as it was, with x-death.
    props = batch.properties(3)
    assert props.headers is not None
    props.headers["x-death"] = [{"reason": "delivery_limit", "queue": topology.work_queue, "count": 50}]
    async with amqp_channel(amqp_url) as channel:
        await declare_all(channel, topology)
        await channel.basic_publish(batch.encode(entries), exchange="",
                                    routing_key=topology.dead_letter_queue, properties=props, mandatory=True)
    letters = await dead_letters(amqp_url, topology)
    assert sorted(lt.id for lt in letters) == sorted(sid for sid, _ in leads)
    assert {lt.kind for lt in letters} == {"delivery_limit"}
    assert {lt.form for lt in letters} == {"lead"}
    assert all(lt.headers[batch.H_SPLIT_FROM] == props.message_id for lt in letters)
    assert orjson.loads(letters[0].body) in [f for _, f in leads]

    async with running_worker(settings_for(amqp_url, topology, crm)):
        connection = await aiormq.connect(amqp_url)
        try:
            async with browse(connection, topology) as taken:
                for message in taken.select(None):
                    await taken.replay(message)
        finally:
            await connection.close()
        await wait_for(lambda: len(crm.state.leads) == 3, 10, "the replayed leads in the CRM")
    assert await depth(amqp_url, topology.dead_letter_queue) == 0
    assert set(crm.state.leads) == {sid for sid, _ in leads}
