"""The conformance suite: the same scenarios against every connector, through the real worker and RabbitMQ.

Each CRM is its fake (tests/worker/vendors.py), behaving as the vendor
documents. What every connector must show:
- a redelivered lead makes one record; so does a write the CRM stored whose
  answer was lost (store, then time out);
- a partial batch failure sends only the refused lead to the dead-letter
  queue, with the vendor's own words in its story;
- a 429 storm dead-letters nothing and the limiter slows down;
- credentials revoked mid-stream pause the worker, nothing is dead-lettered,
  and a restart with a good token delivers the rest;
- the CRM down for far longer than all the retries dead-letters nothing and
  costs only probes while it is down.

`LEADLINE_CONFORMANCE_FULL=1` runs the outage at full length (60 s down,
MAX_ATTEMPTS=3, RETRY_DELAYS=2s); the suite's default keeps the same ratio
of outage to retries (30x) in a few seconds.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest

from leadline.config import Rate
from leadline.topology import Topology
from tests.worker.conftest import (
    Crm,
    dead_letters,
    depth,
    make_lead,
    publish,
    queues_empty,
    running_worker,
    settings_for,
    wait_for,
)
from tests.worker.vendors import BATCHING, CRMS, Fake, running_fake
from worker.settings import Settings

pytestmark = [pytest.mark.broker, pytest.mark.slow]
FULL = os.environ.get("LEADLINE_CONFORMANCE_FULL") == "1"


@pytest.fixture(params=CRMS)
async def fake(request: pytest.FixtureRequest) -> AsyncIterator[Fake]:
    async with running_fake(request.param) as running:
        # The vendors' own limits are the 429 scenario's business; elsewhere they only slow the suite.
        running.rate_limit(None)
        yield running


def settings(amqp_url: str, topology: Topology, fake: Fake, **overrides: Any) -> Settings:
    placeholder = Crm(fake.url, None)  # type: ignore[arg-type]
    base = settings_for(amqp_url, topology, placeholder, crm_timeout=1.0, crm_batch_linger=0.05,
                        crm_rate_limit="off", prefetch=None)
    return replace(fake.settings(base), **overrides)


async def test_a_redelivered_lead_makes_one_record(amqp_url: str, topology: Topology, fake: Fake) -> None:
    sid, fields = make_lead()
    others = [make_lead() for _ in range(3)]
    async with running_worker(settings(amqp_url, topology, fake)) as worker:
        await publish(amqp_url, topology, [(sid, fields), *others])
        await wait_for(lambda: fake.records_for(sid, fields["email"]) == 1, 10, "the first write")
        # the same submission again: the broker's redelivery, or a proxy publish that timed out and landed
        await publish(amqp_url, topology, [(sid, fields)])
        await wait_for(lambda: queues_empty(amqp_url, topology), 10, "the queues drained")
        await wait_for(lambda: worker.in_flight == 0, 5, "the last ack")
        assert worker.metrics.synced._value.get() == 5
    assert fake.records_for(sid, fields["email"]) == 1
    assert fake.total_records() == 4
    assert await depth(amqp_url, topology.dead_letter_queue) == 0


async def test_a_write_the_crm_stored_whose_answer_was_lost_makes_one_record(
    amqp_url: str, topology: Topology, fake: Fake
) -> None:
    sid, fields = make_lead()
    if fake.crm == "pipedrive":
        # a returning visitor: the first write, the one whose answer is lost, is the lead itself
        await _seed_person(fake, fields["email"])
    fake.configure(timeout_rate=1.0, hang_seconds=30)
    async with running_worker(settings(amqp_url, topology, fake, crm_timeout=0.5)):
        await publish(amqp_url, topology, [(sid, fields)])
        await wait_for(lambda: fake.hung() >= 1, 10, "a write stored and never answered")
        fake.configure(timeout_rate=0.0)
        await wait_for(lambda: queues_empty(amqp_url, topology), 15, "the retry")
    assert fake.records_for(sid, fields["email"]) == 1
    assert fake.total_records() == 1
    assert await depth(amqp_url, topology.dead_letter_queue) == 0


async def test_a_partial_batch_failure_dead_letters_only_the_refused_lead_with_the_vendors_words(
    amqp_url: str, topology: Topology, fake: Fake
) -> None:
    good = [make_lead() for _ in range(8)]
    refused = [make_lead("reject.test") for _ in range(2)]
    leads = good[:3] + refused[:1] + good[3:6] + refused[1:] + good[6:]
    async with running_worker(settings(amqp_url, topology, fake, crm_batch_linger=0.3)) as worker:
        await publish(amqp_url, topology, leads)
        await wait_for(lambda: depth(amqp_url, topology.dead_letter_queue), 10, "dead letters")
        await wait_for(lambda: queues_empty(amqp_url, topology), 10, "the queues drained")
        await wait_for(lambda: worker.in_flight == 0, 5, "the last ack")
    assert all(fake.records_for(sid, f["email"]) == 1 for sid, f in good)
    assert fake.total_records() == 8
    letters = await dead_letters(amqp_url, topology)
    assert sorted(lt.id for lt in letters) == sorted(sid for sid, _ in refused)
    assert {(lt.kind, lt.attempts) for lt in letters} == {("permanent", 1)}
    words = {"webhook": "leads from reject.test are refused", "hubspot": "is invalid",
             "salesforce": "FIELD_CUSTOM_VALIDATION_EXCEPTION", "pipedrive": "reject.test"}[fake.crm]
    assert all(words in lt.error for lt in letters), [lt.error for lt in letters]
    if fake.crm in BATCHING:  # calls carried many leads, and the refused one did not sink the rest
        assert fake.largest_call() > 1


async def test_a_429_storm_dead_letters_nothing_and_the_limiter_slows_down(
    amqp_url: str, topology: Topology, fake: Fake
) -> None:
    fake.rate_limit("4/1s")  # the vendor allows far less than the worker was told
    leads = [make_lead() for _ in range(12 if fake.crm == "pipedrive" else 24)]
    s = settings(amqp_url, topology, fake, crm_rate_limit=Rate(50, 1.0), crm_batch_size=1, crm_concurrency=4)
    async with running_worker(s) as worker:
        await publish(amqp_url, topology, leads)
        await wait_for(lambda: all(fake.records_for(sid, f["email"]) == 1 for sid, f in leads), 45,
                       "every lead through the storm", every=0.2)
        limiter = worker.connector.limiter
        # It slowed down: from the vendor's headers before a refusal where it sends them
        # (HubSpot, Pipedrive), else from the refusals, lowering its own ceiling.
        assert limiter.slowdowns + limiter.refusals > 0
        # and the refusals stayed a small share of the calls
        assert fake.refused_429() <= 0.4 * fake.calls()
    assert await depth(amqp_url, topology.dead_letter_queue) == 0
    assert fake.total_records() == len(leads)


async def test_credentials_revoked_mid_stream_pause_the_worker_and_a_restart_with_a_good_token_resumes(
    amqp_url: str, topology: Topology, fake: Fake
) -> None:
    # 100 ms a call, two at once: the 30 leads take 1.5 s, so the token goes while
    # most of them still wait, however late a loaded machine wakes this test (at
    # 20 ms a call the whole stream once ended before the revoke, and nothing paused).
    fake.configure(latency_ms=100)
    leads = [make_lead() for _ in range(30)]
    s = settings(amqp_url, topology, fake, crm_batch_size=1, crm_concurrency=2)
    async with running_worker(s) as worker:
        await publish(amqp_url, topology, leads)
        await wait_for(lambda: fake.total_records() >= 5, 10, "some leads through")
        token = fake.revoke()
        await wait_for(lambda: worker.paused is not None, 10, "the pause")
        assert worker.paused is not None
        assert worker.paused.reason == "credentials"
        await wait_for(lambda: worker.in_flight == 0, 5, "the leads in hand handed back")
        written = fake.total_records()
    assert written < 30
    assert await depth(amqp_url, topology.dead_letter_queue) == 0
    assert sum(await _tier_depths(amqp_url, topology)) == 0  # no attempt spent on a bad token
    fake.reissue()
    fake.configure(latency_ms=0)
    async with running_worker(fake.settings(s, token)):
        await wait_for(lambda: all(fake.records_for(sid, f["email"]) == 1 for sid, f in leads), 20,
                       "every lead after the restart")
        await wait_for(lambda: queues_empty(amqp_url, topology), 10, "the queues drained")
    assert fake.total_records() == 30
    assert await depth(amqp_url, topology.dead_letter_queue) == 0


async def test_the_crm_down_far_longer_than_all_retries_dead_letters_nothing_and_costs_only_probes(
    amqp_url: str, topology: Topology, fake: Fake
) -> None:
    down_for, delay, probe = (60.0, 2.0, 5.0) if FULL else (4.5, 0.15, 0.5)
    leads = [make_lead() for _ in range(20)]
    s = settings(amqp_url, topology, fake, max_attempts=3, retry_delays=(delay,), crm_probe_interval=probe)
    fake.down(True)
    async with running_worker(s) as worker:
        await publish(amqp_url, topology, leads)
        await wait_for(lambda: worker.paused is not None, 10, "the pause")
        writes_at_pause = fake.writes()
        calls_at_pause = fake.calls()
        await _sleep(down_for)
        during = fake.calls() - calls_at_pause
        assert fake.writes() == writes_at_pause, "a paused worker wrote to a CRM that is down"
        assert 1 <= during <= down_for / probe + 2  # one probe per interval, nothing else
        assert await depth(amqp_url, topology.dead_letter_queue) == 0
        fake.down(False)
        await wait_for(lambda: all(fake.records_for(sid, f["email"]) == 1 for sid, f in leads), 20,
                       "every lead once the CRM is back")
        await wait_for(lambda: queues_empty(amqp_url, s.topology), 10, "the queues drained")
    assert await depth(amqp_url, topology.dead_letter_queue) == 0
    assert fake.total_records() == 20


async def _seed_person(fake: Fake, email: str) -> None:
    """A person Pipedrive already knows (a returning visitor)."""
    import aiohttp

    async with aiohttp.ClientSession() as session, session.post(
            f"{fake.url}/api/v2/persons", json={"name": "Ada", "emails": [{"value": email, "primary": True}]},
            headers={"x-api-token": fake.token}) as answer:
        assert answer.status == 200, await answer.text()


async def _tier_depths(amqp_url: str, topology: Topology) -> list[int]:
    return [await depth(amqp_url, queue) for queue in topology.retry_queues]


async def _sleep(seconds: float) -> None:
    import asyncio

    await asyncio.sleep(seconds)
