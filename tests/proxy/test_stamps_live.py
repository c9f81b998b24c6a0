"""Spam stamps through the real proxy and the real broker, in each SPAM_STAMP mode."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable

import aiormq
import pytest

from leadline import batch
from leadline.message import H_STAMP
from leadline.topology import Topology
from proxy import stamp
from tests.proxy.conftest import ORIGIN, VALID_LEAD, Client, drain, post_json

pytestmark = pytest.mark.broker

BITS = 8  # cheap to mint; checking costs one hash whatever the bits
MAX_AGE = 3600
MakeClient = Callable[..., Awaitable[Client]]


def stamps(sid: str) -> dict[str, str | None]:
    """One header per case, for this submission id (the proxy's clock is the test's)."""
    now = int(time.time())
    return {
        "valid": stamp.mint("lead", sid, BITS, ts=now),
        "wrong_hash": stamp.mint("lead", sid + "-other", BITS, ts=now),
        "too_few_bits": stamp.mint("lead", sid, BITS - 4, ts=now),
        "too_old": stamp.mint("lead", sid, BITS, ts=now - MAX_AGE - 60),
        "future": stamp.mint("lead", sid, BITS, ts=now + 3600),
        "malformed": "1:8:yesterday:zz",
        "missing": None,
    }


CASES = ("valid", "wrong_hash", "too_few_bits", "too_old", "future", "malformed", "missing")
VERDICT = {case: "valid" if case == "valid" else "missing" if case == "missing" else "invalid"
           for case in CASES}


async def send_each_case(client: Client) -> dict[str, tuple[int, dict[str, object], str]]:
    """case -> (status, JSON body, submission id)."""
    answers = {}
    for case in CASES:
        sid = str(uuid.uuid4())
        header = stamps(sid)[case]
        headers = {"Idempotency-Key": sid, "Origin": ORIGIN}
        if header is not None:
            headers[stamp.HEADER] = header
        status, payload, _ = await post_json(client, VALID_LEAD, headers)
        answers[case] = (status, payload, sid)
    return answers


async def metrics_text(client: Client) -> str:
    async with client.get("/metrics") as answer:
        return await answer.text()


def settings(mode: str) -> dict[str, str]:
    return {"SPAM_STAMP": mode, "SPAM_STAMP_BITS": str(BITS), "SPAM_STAMP_MAX_AGE": f"{MAX_AGE}s"}


async def test_off_checks_nothing_and_records_nothing(
        make_client: MakeClient, amqp: aiormq.abc.AbstractChannel, topology: Topology) -> None:
    client = await make_client(**settings("off"))
    answers = await send_each_case(client)
    assert {case: status for case, (status, _, _) in answers.items()} == dict.fromkeys(CASES, 202)
    published = await drain(amqp, topology.work_queue)
    assert len(published) == len(CASES)
    assert all(H_STAMP not in (p.properties.headers or {}) for p in published)
    assert "leadline_proxy_stamps_total{" not in await metrics_text(client)


async def test_flag_accepts_every_case_and_the_message_carries_the_verdict(
        make_client: MakeClient, amqp: aiormq.abc.AbstractChannel, topology: Topology) -> None:
    client = await make_client(**settings("flag"))
    answers = await send_each_case(client)
    assert {case: status for case, (status, _, _) in answers.items()} == dict.fromkeys(CASES, 202)
    by_id = {p.properties.message_id: p for p in await drain(amqp, topology.work_queue)}
    for case, (_, _, sid) in answers.items():
        headers = by_id[sid].properties.headers or {}
        assert headers[H_STAMP] == VERDICT[case], case
    text = await metrics_text(client)
    assert 'leadline_proxy_stamps_total{verdict="valid"} 1.0' in text
    assert 'leadline_proxy_stamps_total{verdict="missing"} 1.0' in text
    assert 'leadline_proxy_stamps_total{verdict="invalid"} 5.0' in text


async def test_require_takes_only_a_valid_stamp_and_answers_the_rest_422_code_stamp(
        make_client: MakeClient, amqp: aiormq.abc.AbstractChannel, topology: Topology) -> None:
    client = await make_client(**settings("require"))
    answers = await send_each_case(client)
    status, payload, valid_sid = answers.pop("valid")
    assert (status, payload) == (202, {"status": "queued", "id": valid_sid})
    for case, (status, payload, _) in answers.items():
        assert status == 422, case
        assert payload["status"] == "invalid"
        [error] = payload["errors"]  # type: ignore[misc]
        assert (error["field"], error["code"]) == ("", "stamp")
        assert "stamp" in error["message"].lower()
    [published] = await drain(amqp, topology.work_queue)
    assert published.properties.message_id == valid_sid
    assert (published.properties.headers or {})[H_STAMP] == "valid"
    text = await metrics_text(client)
    assert 'leadline_proxy_refused_total{reason="stamp"} 6.0' in text


async def test_require_still_reports_the_fields_first(make_client: MakeClient) -> None:
    client = await make_client(**settings("require"))
    status, payload, _ = await post_json(client, {"name": "Ada"}, {"Origin": ORIGIN})
    assert status == 422
    assert {e["code"] for e in payload["errors"]} == {"required"}


async def test_a_batch_envelope_carries_each_leads_verdict(
        make_client: MakeClient, amqp: aiormq.abc.AbstractChannel, topology: Topology) -> None:
    client = await make_client(**settings("flag"))

    async def one(i: int) -> tuple[str, str]:
        sid = str(uuid.uuid4())
        case = ("valid", "missing", "malformed")[i % 3]
        header = stamps(sid)[case]
        headers = {"Idempotency-Key": sid, **({stamp.HEADER: header} if header else {})}
        status, _, _ = await post_json(client, VALID_LEAD, headers)
        assert status == 202
        return sid, VERDICT[case]

    expected = dict(await asyncio.gather(*(one(i) for i in range(120))))
    published = await drain(amqp, topology.work_queue)
    assert any(p.batch > 1 for p in published), "no batch formed"
    for p in published:
        assert (p.properties.headers or {})[H_STAMP] == expected[p.properties.message_id]
    assert all(p.message is None or batch.is_batch(p.message) for p in published if p.batch > 1)


async def test_a_form_post_without_javascript_is_flagged_missing_and_in_require_gets_a_page(
        make_client: MakeClient, amqp: aiormq.abc.AbstractChannel, topology: Topology) -> None:
    body = "name=Ada&email=ada%40example.com&consent=on"
    form_headers = {"Content-Type": "application/x-www-form-urlencoded", "Origin": ORIGIN}
    flag = await make_client(**settings("flag"))
    async with flag.post("/api/forms/lead", data=body, allow_redirects=False, headers=form_headers) as answer:
        assert answer.status == 303
    [published] = await drain(amqp, topology.work_queue)
    assert (published.properties.headers or {})[H_STAMP] == "missing"
    require = await make_client(**settings("require"))
    async with require.post("/api/forms/lead?lang=de", data=body, allow_redirects=False,
                            headers={**form_headers, "Accept": "text/html"}) as answer:
        assert answer.status == 422
        page = await answer.text()
    assert '<html lang="de">' in page
    assert "Bitte senden Sie das Formular von seiner Seite aus" in page
    assert await drain(amqp, topology.work_queue) == []
