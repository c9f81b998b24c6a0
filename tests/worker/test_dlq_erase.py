"""`python -m worker dlq erase --email ADDRESS`: a person's dead letters go, every
other letter stays in the queue, in its order."""

from __future__ import annotations

import uuid

import orjson
import pytest

from leadline.topology import Topology
from tests.worker.conftest import dead_letters, declare, publish_raw
from tests.worker.test_dlq import dlq
from tests.worker.test_dlq_process import letter_headers
from worker.dlq import mentions_email


async def put(amqp_url: str, topology: Topology, body: bytes) -> str:
    sid = str(uuid.uuid4())
    await publish_raw(amqp_url, topology.dead_letter_queue, body,
                      letter_headers(sid, kind="permanent", status=422))
    return sid


def lead(email: str, **more: object) -> bytes:
    return orjson.dumps({"name": "Someone", "email": email, "consent": True, **more})


async def test_erase_removes_only_that_persons_letters_and_keeps_the_order(
        amqp_url: str, topology: Topology) -> None:
    await declare(amqp_url, topology)
    first = await put(amqp_url, topology, lead("ada@example.com"))
    hers = [await put(amqp_url, topology, lead("Grace.Hopper@Example.COM")),
            await put(amqp_url, topology, lead(" grace.hopper@example.com "))]
    middle = await put(amqp_url, topology, lead("not-grace.hopper@example.com"))
    hers.append(await put(amqp_url, topology, b"not json, from grace.hopper@EXAMPLE.com"))
    other = await put(amqp_url, topology, lead("bob@example.com", message="cc grace.hopper@example.com"))
    nested = orjson.dumps({"contact": {"work": "GRACE.HOPPER@example.com"}})
    hers.append(await put(amqp_url, topology, nested))
    last = await put(amqp_url, topology, lead("grace@example.com"))

    done = await dlq(amqp_url, topology, "erase", "--email", "grace.hopper@example.com")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("erased 4 dead letters of g***@example.com;")
    assert "grace.hopper" not in done.stdout + done.stderr
    assert [lt.id for lt in await dead_letters(amqp_url, topology)] == [first, middle, other, last]

    again = await dlq(amqp_url, topology, "erase", "--email", "GRACE.HOPPER@example.com")
    assert again.stdout.startswith("erased 0 dead letters")


@pytest.mark.parametrize("address", ["", "no-at-sign", "@example.com", "grace@", "a b@example.com"])
async def test_erase_needs_an_address(amqp_url: str, topology: Topology, address: str) -> None:
    done = await dlq(amqp_url, topology, "erase", "--email", address)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"worker: dlq erase --email: {address!r} is not an e-mail address"]


@pytest.mark.parametrize(("body", "theirs"), [
    (lead("ADA@example.com"), True),
    (lead("ada@example.com.evil"), False),
    (lead("x@example.com", name="ada@example.com"), True),  # any field: the address is the person's
    (lead("x@example.com", message="write to ada@example.com"), False),  # a mention is not a field
    (b'"a JSON string naming ada@example.com"', True),
    (b"\xff\xfe raw ada@example.com", True),
    (orjson.dumps([{"email": "ada@example.com"}]), True),
    (orjson.dumps({"emails": ["x@y.z", "Ada@Example.com"]}), True),
    (orjson.dumps({"n": 1, "b": True, "z": None}), False),
])
def test_whose_letter_is_it(body: bytes, theirs: bool) -> None:
    assert mentions_email(body, "ada@example.com") is theirs

