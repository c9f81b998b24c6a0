"""Group commit: concurrent submissions share confirmed messages; every guarantee stays per lead."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from typing import Any

import aiormq
import pytest
from aiohttp.test_utils import TestClient

from leadline import batch
from leadline.errors import PublishNotConfirmed
from leadline.schemas import FormSchema, load_schemas
from leadline.topology import Topology
from proxy.app import create_app
from proxy.groupcommit import GroupCommit
from proxy.settings import Settings
from proxy.state import PUBLISHER
from tests.proxy.conftest import ORIGIN, drain, eventually, post_json
from tests.support import rabbit

pytestmark = pytest.mark.broker
Client = TestClient  # type: ignore[type-arg]

LEAD = {"name": "Ada Lovelace", "email": "ada@example.com", "consent": True}
SURVEY = {"$schema": "https://json-schema.org/draft/2020-12/schema",
          "$id": "https://leadline.example/schemas/survey/1.0.0/survey.schema.json",
          "type": "object", "properties": {"score": {"type": "integer", "minimum": 0, "maximum": 10}},
          "required": ["score"], "additionalProperties": False}


async def post_many(client: Client, bodies: list[tuple[str, dict[str, Any]]]
                    ) -> list[tuple[int, dict[str, Any]]]:
    async def one(form: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        status, payload, _ = await post_json(client, body, {"Idempotency-Key": str(uuid.uuid4()),
                                                           "Origin": ORIGIN}, form=form)
        return status, payload
    return list(await asyncio.gather(*(one(form, body) for form, body in bodies)))


async def test_concurrent_submissions_share_messages_and_every_202_is_queued_once(
    client: Client, amqp: aiormq.abc.AbstractChannel, topology: Topology
) -> None:
    answers = await post_many(client, [("lead", LEAD)] * 200)
    assert {status for status, _ in answers} == {202}
    queued = await drain(amqp, topology.work_queue)
    ids = Counter(p.properties.message_id for p in queued)
    assert set(ids) == {payload["id"] for _, payload in answers}
    assert set(ids.values()) == {1}
    messages = {id(p.message) if p.message is not None else id(p) for p in queued}
    assert len(messages) < 200  # leads rode together
    batched = [p for p in queued if p.batch > 1]
    assert batched
    assert all(p.message is not None and p.message.content_type == batch.CONTENT_TYPE for p in batched)
    assert all(p.message is not None and p.message.delivery_mode == 2 for p in batched)
    async with client.get("/metrics") as answer:
        text = await answer.text()
    assert "leadline_proxy_batch_size_bucket" in text
    assert 'leadline_proxy_accepted_total{form="lead"} 200.0' in text


async def test_an_idle_proxy_publishes_each_lead_alone_at_once(
    client: Client, amqp: aiormq.abc.AbstractChannel, topology: Topology
) -> None:
    for _ in range(3):
        [(status, _)] = await post_many(client, [("lead", LEAD)])
        assert status == 202
    queued = await drain(amqp, topology.work_queue)
    assert [(p.batch, p.routing_key) for p in queued] == [(1, "form.lead")] * 3
    assert all(p.message is None for p in queued)  # the plain single-lead message


async def test_several_forms_ride_in_one_batch(
    aiohttp_client: Any, env: dict[str, str], amqp: aiormq.abc.AbstractChannel, topology: Topology
) -> None:
    forms = {**load_schemas(), "survey": FormSchema("survey", SURVEY)}
    app = create_app(Settings.from_env(env), forms=forms)
    client = await aiohttp_client(app)
    assert await app[PUBLISHER].broker.wait_connected(10)
    answers = await post_many(client, [("lead", LEAD), ("survey", {"score": 9})] * 60)
    assert {status for status, _ in answers} == {202}
    queued = await drain(amqp, topology.work_queue)
    assert len(queued) == 120
    by_message: dict[int, set[str]] = {}
    for p in queued:
        if p.message is not None:
            by_message.setdefault(id(p.message), set()).add(p.routing_key)
    assert any(keys == {"form.lead", "form.survey"} for keys in by_message.values())


async def test_a_nacked_batch_answers_503_to_each_of_its_requests_and_no_202(
    client: Client, vhost: str, topology: Topology, amqp: aiormq.abc.AbstractChannel
) -> None:
    policy = f"full-{topology.prefix}"
    await asyncio.to_thread(rabbit.ctl, "set_policy", "-p", vhost, "--apply-to", "queues",
                            "--priority", "100", policy, f"^{topology.work_queue}$", '{"max-length":0}')
    try:
        async def refused() -> bool:
            return (await post_json(client, LEAD))[0] == 503
        await eventually(refused, timeout=10)
        answers = await post_many(client, [("lead", LEAD)] * 100)
    finally:
        await asyncio.to_thread(rabbit.ctl, "clear_policy", "-p", vhost, policy)
    assert {status for status, _ in answers} == {503}
    refused_ids = {payload["id"] for _, payload in answers}
    queued = {p.properties.message_id for p in await drain(amqp, topology.work_queue)}
    assert not refused_ids & queued  # (before the policy took hold, a probe post may have got in)


class StuckBroker:
    """A broker whose publishes never confirm (a node that hangs): its timeout ends each, as
    `Broker.publish` does (tests/cluster does this against a SIGSTOPped node)."""

    def __init__(self) -> None:
        self.timeouts: list[float] = []

    async def publish(self, body: bytes, *, timeout: float, **_: Any) -> None:
        self.timeouts.append(timeout)
        await asyncio.sleep(timeout)
        raise PublishNotConfirmed(f"no confirm within {timeout:g}s")


async def test_a_lead_waiting_behind_a_hung_publish_is_refused_within_its_own_timeout() -> None:
    broker = StuckBroker()
    group = GroupCommit(broker, Topology(prefix="gc"), timeout=0.3,  # type: ignore[arg-type]
                        node=lambda: (None, None))
    loop = asyncio.get_running_loop()

    async def submit(delay: float) -> float:
        await asyncio.sleep(delay)
        started = loop.time()
        with pytest.raises(PublishNotConfirmed):
            await group.publish(batch.Entry(str(uuid.uuid4()), "lead", b"{}"))
        return loop.time() - started

    waits = await asyncio.gather(submit(0), submit(0.2), submit(0.25))
    assert all(w < 0.55 for w in waits), waits  # each within its own 0.3 s, not 2 x 0.3
    # The first two ran out their own 0.3 s; the third shared the second's message, so it
    # had the time the second had left: 0.5 s from the start less its own later start
    # (about 0.25 s, less when the loop woke it late), never more than its own 0.3 s.
    assert waits[0] >= 0.25, waits
    assert waits[1] >= 0.25, waits
    assert waits[2] >= 0.15, waits
    # the first went out alone; the later ones waited for it, then went out together,
    # with only what was left of the oldest one's time
    assert len(broker.timeouts) == 2
    assert broker.timeouts[1] < 0.3
    await asyncio.wait_for(group.close(), 2)
