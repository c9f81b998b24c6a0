"""`python -m worker dlq process`: re-drive what time can heal, report what needs a person.

The decisions are a table; the rest runs against the real broker and the fake CRM.
"""

from __future__ import annotations

import asyncio
import csv
import io
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiormq
import orjson
import pytest
from pamqp.commands import Basic

from leadline.message import (
    H_ATTEMPTS,
    H_DEAD_AT,
    H_FAILURE_KIND,
    H_FIRST_FAILURE_AT,
    H_LAST_FAILURE_AT,
    H_LAST_REDRIVE_AT,
    H_REDRIVES,
    lead_properties,
)
from leadline.topology import Topology
from tests.support.ports import free_port
from tests.support.procs import Service
from tests.worker.conftest import (
    Crm,
    amqp_channel,
    dead_letters,
    declare,
    depth,
    make_lead,
    publish,
    running_worker,
    settings_for,
    wait_for,
)
from tests.worker.test_dlq import dlq
from worker import dlq_report, story
from worker.__main__ import main
from worker.dlq import Browse, DeadLetter, describe
from worker.dlq_process import Action, PassResult, Policy, decide, redrive_headers, run_pass

NOW = datetime(2025, 1, 6, 12, 0, tzinfo=UTC)
HOUR = 3600.0


def iso(when: datetime) -> str:
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def letter_headers(
    sid: str, *, kind: str = story.KIND_TEMPORARY, status: int | None = 503, redrives: int = 0,
    dead_at: datetime | None = None, error_class: str | None = None, attempts: int = 2,
) -> Basic.Properties:
    """A dead letter's properties the way the worker writes them."""
    props = lead_properties(submission_id=sid, form="lead")
    when = iso(dead_at or datetime.now(UTC))
    headers = story.failure_headers(
        props.headers, attempts=attempts, kind=kind,
        error_class=error_class or (f"HTTP{status}" if status else "TimeoutError"),
        error=f"HTTP {status}: nope" if status else "TimeoutError: no answer in 0.5s",
        crm_status=status, now=when, dead=True)
    if redrives:
        headers[H_REDRIVES] = redrives
    props.headers = headers
    return props


def letter(**kwargs: Any) -> DeadLetter:
    sid, fields = make_lead()
    return describe(orjson.dumps(fields), letter_headers(sid, **kwargs))


# -- the decisions ------------------------------------------------------------

POLICY = Policy(min_age=HOUR, max_redrives=3)


@pytest.mark.parametrize(("kwargs", "action", "reason"), [
    ({"dead_at": NOW - timedelta(hours=2)}, Action.REDRIVE, "temporary failure"),
    ({"dead_at": NOW - timedelta(minutes=59)}, Action.WAIT, "younger than 1h"),
    ({"dead_at": NOW - timedelta(hours=2), "redrives": 2}, Action.REDRIVE, "temporary failure"),
    ({"dead_at": NOW - timedelta(hours=2), "redrives": 3}, Action.REPORT,
     "CRM still failing after 3 re-drives (HTTP503)"),
    ({"dead_at": NOW - timedelta(minutes=1), "redrives": 5}, Action.REPORT,
     "CRM still failing after 5 re-drives (HTTP503)"),
    ({"kind": "permanent", "status": 422, "dead_at": NOW - timedelta(days=3)}, Action.REPORT,
     "CRM refused the lead (HTTP 422)"),
    ({"kind": "permanent", "status": 422, "dead_at": NOW}, Action.REPORT, "CRM refused the lead (HTTP 422)"),
    ({"kind": "poison", "status": None, "error_class": "InvalidLead"}, Action.REPORT,
     "unreadable message (InvalidLead)"),
    ({"status": None, "dead_at": NOW - timedelta(hours=1)}, Action.REDRIVE, "temporary failure"),
])
def test_decide_table(kwargs: dict[str, Any], action: Action, reason: str) -> None:
    decision = decide(letter(**kwargs), NOW, POLICY)
    assert (decision.action, decision.reason) == (action, reason)


def test_broker_dead_lettered_letters_are_left_for_a_person() -> None:
    props = lead_properties(submission_id="crashy", form="lead")
    assert props.headers is not None
    props.headers["x-death"] = [{"reason": "delivery_limit", "queue": "q", "count": 1,
                                 "time": NOW - timedelta(days=1)}]
    decision = decide(describe(b"{}", props), NOW, POLICY)
    assert (decision.action, decision.reason) == (Action.REPORT, "made workers crash (delivery limit)")


def test_min_age_counts_from_the_dead_lettering_else_the_last_failure() -> None:
    young = letter(dead_at=NOW - timedelta(minutes=5))
    assert decide(young, NOW, Policy(min_age=600, max_redrives=3)).action is Action.WAIT
    assert decide(young, NOW, Policy(min_age=300, max_redrives=3)).action is Action.REDRIVE
    no_dead_at = {k: v for k, v in young.headers.items() if k != H_DEAD_AT}
    no_dead_at[H_LAST_FAILURE_AT] = iso(NOW - timedelta(hours=3))
    older = describe(young.body, _props(young.id, no_dead_at))
    assert decide(older, NOW, Policy(min_age=HOUR, max_redrives=3)).action is Action.REDRIVE
    # a zero min-age never waits, even for a clock a little ahead of ours
    ahead = letter(dead_at=NOW + timedelta(seconds=2))
    assert decide(ahead, NOW, Policy(min_age=0, max_redrives=3)).action is Action.REDRIVE


def test_max_redrives_zero_reports_every_temporary_failure() -> None:
    decision = decide(letter(dead_at=NOW - timedelta(days=1)), NOW, Policy(min_age=0, max_redrives=0))
    assert decision.action is Action.REPORT


def test_redrive_headers_count_the_redrive_and_start_a_fresh_cycle() -> None:
    dead = letter(redrives=1, attempts=8)
    out = redrive_headers(dead.headers, now="T9")
    assert (out[H_REDRIVES], out[H_LAST_REDRIVE_AT], out[H_ATTEMPTS]) == (2, "T9", 0)
    assert H_FAILURE_KIND not in out
    assert H_DEAD_AT not in out
    assert out[H_FIRST_FAILURE_AT] == dead.first_failure_at  # when the trouble began stays
    assert out["x-leadline-form"] == "lead"


def _props(sid: str, headers: dict[str, Any]) -> Basic.Properties:
    props = lead_properties(submission_id=sid, form="lead")
    props.headers = headers
    return props


# -- the report -----------------------------------------------------------------

def rows_for_report() -> list[dlq_report.ReportRow]:
    refused = [letter(kind="permanent", status=422) for _ in range(2)]
    capped = letter(redrives=3)
    sid, _ = make_lead()
    evil = describe(orjson.dumps({"name": "=HYPERLINK(\"http://x\")", "email": "e|vil@example.com",
                                  "message": "line one\nline <b>two</b>", "consent": True}),
                    letter_headers(sid, kind="permanent", status=422))
    return ([dlq_report.ReportRow(lt, "CRM refused the lead (HTTP 422)") for lt in [*refused, evil]]
            + [dlq_report.ReportRow(capped, "CRM still failing after 3 re-drives (HTTP503)")])


def test_csv_has_one_row_per_lead_with_the_fields_the_story_and_no_formulas() -> None:
    rows = rows_for_report()
    records = list(csv.DictReader(io.StringIO(dlq_report.csv_text(rows))))
    assert [r["id"] for r in records] == [r.letter.id for r in rows]
    first = records[0]
    assert first["reason"] == "CRM refused the lead (HTTP 422)"
    assert first["email"] == orjson.loads(rows[0].letter.body)["email"]
    assert (first["name"], first["consent"], first["crm_status"], first["attempts"]) == (
        "Ada Lovelace", "true", "422", "2")
    assert first["failed_at"]
    assert first["received_at"]
    assert records[2]["name"] == "'=HYPERLINK(\"http://x\")"  # a spreadsheet shows it, never runs it
    assert records[3]["redrives"] == "3"


def test_markdown_groups_by_reason_and_says_it_holds_personal_data() -> None:
    text = dlq_report.markdown(dlq_report.rows_sorted(rows_for_report()), generated_at=NOW,
                               queue="leadline.dead.v1", this_pass="re-drove 2")
    assert "personal data" in text
    assert "| CRM refused the lead (HTTP 422) | 3 |" in text
    assert "| CRM still failing after 3 re-drives (HTTP503) | 1 |" in text
    refused = text.index("## CRM refused the lead (HTTP 422): 3 leads")
    capped = text.index("## CRM still failing after 3 re-drives (HTTP503): 1 lead")
    assert refused < capped  # the biggest group first
    assert "e\\|vil@example.com" in text  # a pipe cannot break the table
    assert "<b>" not in text
    assert "line one line &lt;b&gt;two&lt;/b&gt;" in text


def test_report_files_are_private_timestamped_and_never_overwritten(tmp_path: Path) -> None:
    rows = rows_for_report()
    first = dlq_report.write(tmp_path, rows, generated_at=NOW, queue="q", this_pass="")
    second = dlq_report.write(tmp_path, rows, generated_at=NOW, queue="q", this_pass="")
    assert [p.name for p in first] == ["dlq-report-20250106T120000Z.csv", "dlq-report-20250106T120000Z.md"]
    assert [p.name for p in second] == ["dlq-report-20250106T120000Z-2.csv",
                                        "dlq-report-20250106T120000Z-2.md"]
    for path in (*first, *second):
        assert path.stat().st_mode & 0o777 == 0o600


# -- against the real broker ------------------------------------------------------

async def seed(amqp_url: str, topology: Topology, count: int, **kwargs: Any) -> list[str]:
    """Dead letters straight into the DLQ, as the worker would have left them."""
    await declare(amqp_url, topology)
    leads = [make_lead(kwargs.pop("domain", "example.com")) for _ in range(count)]
    async with amqp_channel(amqp_url) as channel:
        for start in range(0, count, 200):
            confirms = await asyncio.gather(*(
                channel.basic_publish(orjson.dumps(fields), exchange="",
                                      routing_key=topology.dead_letter_queue, mandatory=True,
                                      properties=letter_headers(sid, **kwargs))
                for sid, fields in leads[start:start + 200]))
            assert all(isinstance(c, Basic.Ack) for c in confirms)
    return [sid for sid, _ in leads]


ANY_AGE = Policy(min_age=0, max_redrives=3)


async def one_pass(amqp_url: str, topology: Topology, policy: Policy = ANY_AGE) -> PassResult:
    connection = await aiormq.connect(amqp_url)
    try:
        return await run_pass(connection, topology, policy)
    finally:
        await connection.close()


async def work_messages(amqp_url: str, topology: Topology) -> list[Basic.Properties]:
    """Every message on the work queue (taken and handed back)."""
    async with amqp_channel(amqp_url) as channel:
        out = []
        while True:
            got = await channel.basic_get(topology.work_queue, no_ack=False)
            if isinstance(got.delivery, Basic.GetEmpty):
                return out
            out.append(got.header.properties)


async def test_leads_failing_longer_than_all_retries_then_the_processor_lands_each_lead_once(
    amqp_url: str, topology: Topology, crm: Crm, tmp_path: Path
) -> None:
    # (An outage of the whole CRM pauses the worker instead: nothing is dead-lettered.)
    down = [make_lead("flaky.test") for _ in range(5)]
    refused = [make_lead("reject.test") for _ in range(2)]
    settings = settings_for(amqp_url, topology, crm, max_attempts=2, retry_delays=(0.2,))
    crm.configure(fail_domain="flaky.test")  # these leads fail for longer than all the retries
    async with running_worker(settings):
        await publish(amqp_url, topology, down)
        await wait_for(lambda: _depth_is(amqp_url, topology.dead_letter_queue, 5), 15, "5 dead letters")
        crm.configure(fail_domain="")
        await publish(amqp_url, topology, refused)
        await wait_for(lambda: _depth_is(amqp_url, topology.dead_letter_queue, 7), 15, "7 dead letters")
        assert crm.state.leads == {}
        done = await dlq(amqp_url, topology, "process", "--min-age", "0s", "--report", str(tmp_path))
        assert done.returncode == 0, done.stderr
        assert "re-drove 5" in done.stdout
        assert "2 need a person" in done.stdout
        await wait_for(lambda: len(crm.state.leads) == 5, 15, "the re-driven leads in the CRM")
    assert set(crm.state.leads) == {sid for sid, _ in down}
    assert crm.state.stats.created == 5
    assert crm.state.stats.duplicates == 0
    left = await dead_letters(amqp_url, topology)
    assert sorted(lt.id for lt in left) == sorted(sid for sid, _ in refused)  # permanent ones stay
    [csv_path, md_path] = sorted(await asyncio.to_thread(lambda: list(tmp_path.glob("dlq-report-*"))))
    records = list(csv.DictReader(io.StringIO(csv_path.read_text())))
    assert sorted(r["id"] for r in records) == sorted(sid for sid, _ in refused)
    assert {r["email"] for r in records} == {fields["email"] for _, fields in refused}
    assert {(r["kind"], r["crm_status"], r["attempts"], r["redrives"]) for r in records} == {
        ("permanent", "422", "1", "0")}
    summary = md_path.read_text()
    assert "## CRM refused the lead (HTTP 422): 2 leads" in summary
    assert "personal data" in summary
    log = done.stderr
    assert '"dlq pass done"' in log
    assert "reject.test" not in log.replace("@reject.test", "")  # masked or absent
    assert all(fields["email"] not in log for _, fields in [*down, *refused])


async def test_redrive_keeps_the_id_resets_attempts_and_records_itself(
    amqp_url: str, topology: Topology
) -> None:
    [sid] = await seed(amqp_url, topology, 1, redrives=1, attempts=8)
    result = await one_pass(amqp_url, topology)
    assert result.redriven == [sid]
    [props] = await work_messages(amqp_url, topology)
    headers = props.headers or {}
    assert props.message_id == sid
    assert props.delivery_mode == 2
    assert (headers[H_REDRIVES], headers[H_ATTEMPTS]) == (2, 0)
    assert headers[H_LAST_REDRIVE_AT]
    assert H_FAILURE_KIND not in headers
    assert await depth(amqp_url, topology.dead_letter_queue) == 0


async def test_min_age_leaves_young_letters_for_a_later_pass(amqp_url: str, topology: Topology) -> None:
    old = await seed(amqp_url, topology, 2, dead_at=datetime.now(UTC) - timedelta(hours=2))
    young = await seed(amqp_url, topology, 3, dead_at=datetime.now(UTC) - timedelta(minutes=10))
    result = await one_pass(amqp_url, topology, Policy(min_age=HOUR, max_redrives=3))
    assert sorted(result.redriven) == sorted(old)
    assert (result.waiting, result.report) == (3, [])
    assert sorted(lt.id for lt in await dead_letters(amqp_url, topology)) == sorted(young)


async def test_a_lead_redriven_up_to_the_cap_is_left_and_reported(
    amqp_url: str, topology: Topology, crm: Crm
) -> None:
    crm.configure(fail_domain="flaky.test")  # it never gets better
    settings = settings_for(amqp_url, topology, crm, max_attempts=1, retry_delays=(0.2,))
    lead = make_lead("flaky.test")
    policy = Policy(min_age=0, max_redrives=2)
    async with running_worker(settings):
        await publish(amqp_url, topology, [lead])
        for redrives in (1, 2):
            await wait_for(lambda: _depth_is(amqp_url, topology.dead_letter_queue, 1), 10, "the letter")
            assert (await one_pass(amqp_url, topology, policy)).redriven == [lead[0]]
            await wait_for(lambda n=redrives: crm.state.stats.failed == n + 1, 10, "the next try")  # type: ignore[misc]
        await wait_for(lambda: _depth_is(amqp_url, topology.dead_letter_queue, 1), 10, "the letter")
        result = await one_pass(amqp_url, topology, policy)
    assert result.redriven == []
    [row] = result.report
    assert (row.letter.id, row.letter.redrives) == (lead[0], 2)
    assert row.reason == "CRM still failing after 2 re-drives (HTTP503)"
    assert await depth(amqp_url, topology.dead_letter_queue) == 1
    assert crm.state.stats.failed == 3


async def test_two_processors_at_once_redrive_each_letter_exactly_once(
    amqp_url: str, topology: Topology
) -> None:
    temporary = await seed(amqp_url, topology, 300)
    permanent = await seed(amqp_url, topology, 20, kind="permanent", status=422)
    first, second = await asyncio.gather(one_pass(amqp_url, topology), one_pass(amqp_url, topology))
    redriven = first.redriven + second.redriven
    assert sorted(redriven) == sorted(temporary)  # none twice, none missed
    assert await depth(amqp_url, topology.work_queue) == 300  # not one extra copy
    assert await depth(amqp_url, topology.dead_letter_queue) == 20
    reported = {row.letter.id for row in first.report} | {row.letter.id for row in second.report}
    assert reported <= set(permanent)  # each saw what the other did not hold at the time


async def test_crash_between_publish_and_ack_is_a_duplicate_the_crm_absorbs(
    amqp_url: str, topology: Topology, crm: Crm, monkeypatch: pytest.MonkeyPatch
) -> None:
    [sid] = await seed(amqp_url, topology, 1)

    async def crash(self: Browse, message: object) -> None:
        raise RuntimeError("killed between the confirm and the ack")

    with monkeypatch.context() as patch:
        patch.setattr(Browse, "remove", crash)
        with pytest.raises(RuntimeError, match="killed"):
            await one_pass(amqp_url, topology)
    assert await depth(amqp_url, topology.dead_letter_queue) == 1  # handed back, not lost
    assert await depth(amqp_url, topology.work_queue) == 1  # the confirmed copy
    assert (await one_pass(amqp_url, topology)).redriven == [sid]  # the next run does it again
    assert await depth(amqp_url, topology.work_queue) == 2
    async with running_worker(settings_for(amqp_url, topology, crm)):
        await wait_for(lambda: crm.state.stats.requests == 2, 10, "both copies at the CRM")
    assert list(crm.state.leads) == [sid]
    assert (crm.state.stats.created, crm.state.stats.duplicates) == (1, 1)


async def test_processor_killed_mid_run_loses_nothing_and_the_crm_gets_each_lead_once(
    amqp_url: str, topology: Topology, crm: Crm, tmp_path: Path, processes: list[Service]
) -> None:
    ids = await seed(amqp_url, topology, 600)
    processor = _processor(amqp_url, topology, tmp_path, "--min-age", "0s")
    processes.append(processor)
    processor.start()
    await wait_for(lambda: _depth_at_least(amqp_url, topology.work_queue, 30), 20, "re-drives under way")
    processor.kill()
    dead_after_kill = await depth(amqp_url, topology.dead_letter_queue)
    assert 0 < dead_after_kill < 600, "the kill should land mid-run"
    assert dead_after_kill + await depth(amqp_url, topology.work_queue) >= 600  # nothing lost
    again = await dlq(amqp_url, topology, "process", "--min-age", "0s")
    assert again.returncode == 0, again.stderr
    assert await depth(amqp_url, topology.dead_letter_queue) == 0
    assert await depth(amqp_url, topology.work_queue) in (600, 601)  # at most the one caught mid-step
    async with running_worker(settings_for(amqp_url, topology, crm)):
        await wait_for(lambda: len(crm.state.leads) == 600, 30, "every lead in the CRM", 0.1)
        await wait_for(lambda: _depth_is(amqp_url, topology.work_queue, 0), 10, "an empty work queue")
    assert set(crm.state.leads) == set(ids)
    assert crm.state.stats.created == 600


async def test_loop_mode_runs_a_pass_every_interval_serves_metrics_and_stops_on_sigterm(
    amqp_url: str, topology: Topology, tmp_path: Path, processes: list[Service]
) -> None:
    await seed(amqp_url, topology, 1)
    await seed(amqp_url, topology, 2, kind="permanent", status=422)
    port = free_port()
    reports = tmp_path / "reports"
    reports.mkdir()
    processor = _processor(amqp_url, topology, tmp_path, "--min-age", "0s", "--every", "300ms",
                           "--report", str(reports), "--metrics-port", str(port))
    processes.append(processor)
    processor.start()
    await asyncio.to_thread(processor.wait_http, f"http://127.0.0.1:{port}/metrics")
    await wait_for(lambda: _depth_is(amqp_url, topology.work_queue, 1), 10, "the first pass")
    await seed(amqp_url, topology, 1)  # arrives between passes
    await wait_for(lambda: _depth_is(amqp_url, topology.work_queue, 2), 10, "a later pass")
    metrics = await _text(f"http://127.0.0.1:{port}/metrics")
    assert "leadline_dlq_redriven_total 2.0" in metrics
    assert "leadline_dlq_permanent_waiting 2.0" in metrics
    assert 'leadline_dlq_reported_total{kind="permanent"}' in metrics
    assert await asyncio.to_thread(processor.stop, 10) == 0
    assert len(list(reports.glob("*.csv"))) == 1  # the same two letters: no new file every pass
    assert processor.output().count('"dlq pass done"') >= 2


def test_bad_arguments_are_one_line_naming_the_option(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    cases = [
        (["--min-age", "soon"], "--min-age"),
        (["--max-redrives", "-1"], "--max-redrives"),
        (["--max-redrives", "three"], "--max-redrives"),
        (["--report", str(tmp_path / "missing")], "--report"),
        (["--every", "0s", "--report", str(tmp_path)], "--every"),
        (["--every", "1h"], "--report"),
        (["--metrics-port", "80000", "--every", "1h", "--report", str(tmp_path)], "--metrics-port"),
    ]
    for args, option in cases:
        assert main(["dlq", "process", *args]) == 2, args
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1, err
        assert option in err, err


async def test_unreachable_broker_is_one_line_and_exit_1(topology: Topology) -> None:
    done = await dlq("amqp://guest:guest@127.0.0.1:1/", topology, "process")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [done.stderr.strip()]
    assert done.stderr.startswith("worker dlq: cannot reach RabbitMQ at amqp://guest:***@127.0.0.1:1/")


async def test_without_a_report_dir_the_report_is_printed(amqp_url: str, topology: Topology) -> None:
    [sid] = await seed(amqp_url, topology, 1, kind="permanent", status=422)
    done = await dlq(amqp_url, topology, "process")
    assert done.returncode == 0, done.stderr
    assert "## CRM refused the lead (HTTP 422): 1 lead" in done.stdout
    assert sid in done.stdout
    assert "personal data" in done.stdout
    assert await depth(amqp_url, topology.dead_letter_queue) == 1


# -- helpers --------------------------------------------------------------------

@pytest.fixture
def processes() -> Iterator[list[Service]]:
    started: list[Service] = []
    yield started
    for service in started:
        service.kill()


def _processor(amqp_url: str, topology: Topology, log_dir: Path, *args: str) -> Service:
    env = {"AMQP_URL": amqp_url, "QUEUE_PREFIX": topology.prefix}
    return Service(f"dlq-process-{uuid.uuid4().hex[:6]}", ["-m", "worker", "dlq", "process", *args],
                   env, log_dir)


async def _depth_is(amqp_url: str, queue: str, expected: int) -> bool:
    return await depth(amqp_url, queue) == expected


async def _depth_at_least(amqp_url: str, queue: str, expected: int) -> bool:
    return await depth(amqp_url, queue) >= expected


async def _text(url: str) -> str:
    import aiohttp

    async with aiohttp.ClientSession() as session, session.get(url) as answer:
        return await answer.text()

