"""`python -m worker dlq ...`: browse without loss, replay with a confirm, purge with --yes."""

from __future__ import annotations

import asyncio
import csv
import io
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import orjson

from leadline.message import lead_properties
from leadline.topology import Topology
from tests.support.procs import ROOT
from tests.worker.conftest import (
    Crm,
    dead_letters,
    declare,
    depth,
    make_lead,
    publish,
    publish_raw,
    running_worker,
    settings_for,
    wait_for,
)


async def dlq(amqp_url: str, topology: Topology, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "AMQP_URL": amqp_url,
           "QUEUE_PREFIX": topology.prefix}
    return await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "worker", "dlq", *args], cwd=ROOT, env=env,
        capture_output=True, text=True, timeout=30)


async def seed(amqp_url: str, topology: Topology, crm: Crm, rejected: int = 3) -> list[str]:
    """Dead letters the way the worker makes them: leads the CRM refuses."""
    leads = [make_lead("reject.test") for _ in range(rejected)]
    async with running_worker(settings_for(amqp_url, topology, crm)):
        await publish(amqp_url, topology, leads)
        await wait_for(lambda: _depth_is(amqp_url, topology.dead_letter_queue, rejected), 10, "letters")
    return [sid for sid, _ in leads]


async def _depth_is(amqp_url: str, queue: str, expected: int) -> bool:
    return await depth(amqp_url, queue) == expected


async def test_list_json_gives_each_letters_story_and_leaves_the_queue_as_it_was(
    amqp_url: str, topology: Topology, crm: Crm
) -> None:
    ids = await seed(amqp_url, topology, crm)
    done = await dlq(amqp_url, topology, "list", "--json")
    assert done.returncode == 0, done.stderr
    rows = [orjson.loads(line) for line in done.stdout.splitlines()]
    assert [row["id"] for row in rows] == ids  # queue order
    for row in rows:
        assert (row["form"], row["attempts"], row["kind"], row["status"]) == ("lead", 1, "permanent", 422)
        assert row["failed_at"]
        assert "reject.test" in row["error"]
        assert "lead" not in row  # no personal data in a listing
    again = await dlq(amqp_url, topology, "list", "--json")
    assert again.stdout == done.stdout  # looking changed nothing, not even the order
    assert await depth(amqp_url, topology.dead_letter_queue) == 3


async def test_list_table_and_show_tell_the_story(amqp_url: str, topology: Topology, crm: Crm) -> None:
    ids = await seed(amqp_url, topology, crm, rejected=1)
    table = await dlq(amqp_url, topology, "list")
    assert table.returncode == 0
    header, row, total = table.stdout.splitlines()
    assert header.split()[:4] == ["ID", "FORM", "ATTEMPTS", "KIND"]
    assert row.startswith(ids[0])
    assert row.split()[3:5] == ["permanent", "422"]
    assert total == "1 dead letters"
    shown = await dlq(amqp_url, topology, "show", ids[0])
    assert shown.returncode == 0
    assert "first_failure_at" in shown.stdout
    assert "@reject.test" in shown.stdout  # show is the one place for the lead itself
    missing = await dlq(amqp_url, topology, "show", "no-such-id")
    assert missing.returncode == 1
    assert "no dead letter with id 'no-such-id'" in missing.stderr


async def test_broker_dead_lettered_letter_is_listed_sensibly(amqp_url: str, topology: Topology) -> None:
    props = lead_properties(submission_id="crashy", form="lead")
    assert props.headers is not None
    props.headers["x-death"] = [{"reason": "delivery_limit", "queue": topology.work_queue, "count": 1,
                                 "exchange": "", "routing-keys": [topology.work_queue],
                                 "time": datetime(2025, 1, 6, 12, 0, tzinfo=UTC)}]
    await declare(amqp_url, topology)
    await publish_raw(amqp_url, topology.dead_letter_queue, b"{}", props)
    done = await dlq(amqp_url, topology, "list", "--json")
    [row] = [orjson.loads(line) for line in done.stdout.splitlines()]
    assert (row["id"], row["kind"], row["attempts"]) == ("crashy", "delivery_limit", 0)
    assert row["failed_at"] == "2025-01-06T12:00:00Z"
    assert "without being settled" in row["error"]


async def test_replay_round_trip_reaches_the_crm_with_fresh_attempts(
    amqp_url: str, topology: Topology, crm: Crm
) -> None:
    ids = await seed(amqp_url, topology, crm)
    crm.configure(reject_domain="nobody.test")  # the CRM was fixed
    done = await dlq(amqp_url, topology, "replay", ids[0], ids[1])
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "replayed 2 dead letters"
    assert [letter.id for letter in await dead_letters(amqp_url, topology)] == [ids[2]]
    async with running_worker(settings_for(amqp_url, topology, crm, max_attempts=1)):
        await wait_for(lambda: len(crm.state.leads) == 2, 10, "the replayed leads in the CRM")
    assert set(crm.state.leads) == {ids[0], ids[1]}
    rest = await dlq(amqp_url, topology, "replay", "--all")
    assert rest.stdout.strip() == "replayed 1 dead letters"
    assert await depth(amqp_url, topology.dead_letter_queue) == 0


async def test_replay_of_unknown_id_changes_nothing_and_says_so(
    amqp_url: str, topology: Topology, crm: Crm
) -> None:
    await seed(amqp_url, topology, crm, rejected=1)
    done = await dlq(amqp_url, topology, "replay", "nope")
    assert done.returncode == 1
    assert "no dead letter with id 'nope'" in done.stderr
    assert await depth(amqp_url, topology.dead_letter_queue) == 1
    assert await depth(amqp_url, topology.work_queue) == 0


async def test_purge_needs_yes_and_removes_only_the_named_letters(
    amqp_url: str, topology: Topology, crm: Crm
) -> None:
    ids = await seed(amqp_url, topology, crm)
    refused = await dlq(amqp_url, topology, "purge", ids[0])
    assert refused.returncode == 2
    assert "--yes" in refused.stderr
    assert await depth(amqp_url, topology.dead_letter_queue) == 3
    done = await dlq(amqp_url, topology, "purge", ids[1], "--yes")
    assert done.returncode == 0
    assert [letter.id for letter in await dead_letters(amqp_url, topology)] == [ids[0], ids[2]]
    everything = await dlq(amqp_url, topology, "purge", "--all", "--yes")
    assert everything.stdout.strip() == "purged 2 dead letters"
    assert await depth(amqp_url, topology.dead_letter_queue) == 0


async def test_export_writes_jsonl_or_csv_with_the_leads_marked_as_personal_data(
    amqp_url: str, topology: Topology, crm: Crm, tmp_path: Path
) -> None:
    ids = await seed(amqp_url, topology, crm, rejected=2)
    jsonl = await dlq(amqp_url, topology, "export", "--format", "jsonl")
    assert jsonl.returncode == 0
    rows = [orjson.loads(line) for line in jsonl.stdout.splitlines()]
    assert [row["id"] for row in rows] == ids
    assert rows[0]["lead"]["email"].endswith("@reject.test")
    assert "personal data" in jsonl.stderr
    target = tmp_path / "dead.csv"
    done = await dlq(amqp_url, topology, "export", "--format", "csv", "--output", str(target))
    assert done.returncode == 0
    assert target.stat().st_mode & 0o777 == 0o600
    records = list(csv.DictReader(io.StringIO(target.read_text())))
    assert [r["id"] for r in records] == ids
    assert orjson.loads(records[0]["lead"])["consent"] is True
    assert await depth(amqp_url, topology.dead_letter_queue) == 2


async def test_unreachable_broker_is_one_clear_line(topology: Topology) -> None:
    done = await dlq("amqp://guest:guest@127.0.0.1:1/", topology, "list")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [done.stderr.strip()]
    assert done.stderr.startswith("worker dlq: cannot reach RabbitMQ at amqp://guest:***@127.0.0.1:1/")



async def test_replay_the_broker_refuses_keeps_the_letters_and_says_so_in_one_line(
    amqp_url: str, vhost: str, topology: Topology, crm: Crm
) -> None:
    from tests.support import rabbit

    ids = await seed(amqp_url, topology, crm)
    policy = f"full-{topology.prefix}"
    # The work queue overflows with reject-publish: past max-length the broker nacks.
    await asyncio.to_thread(rabbit.ctl, "set_policy", "-p", vhost, "--apply-to", "queues",
                            "--priority", "100", policy, f"^{topology.work_queue}$", '{"max-length":0}')
    try:
        done = await dlq(amqp_url, topology, "replay", "--all")
    finally:
        await asyncio.to_thread(rabbit.ctl, "clear_policy", "-p", vhost, policy)
    assert done.returncode == 1
    assert "not confirmed" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    # A quorum queue's limit is approximate: it may take one replay before it
    # starts nacking. What it took is on the work queue; the rest stayed.
    kept = [letter.id for letter in await dead_letters(amqp_url, topology)]
    assert kept
    assert len(kept) + await depth(amqp_url, topology.work_queue) == len(ids)
