"""`dlq process --retain DURATION` (personal data kept no longer than that) and
`--textfile PATH` (a one-shot run's metrics for node_exporter's textfile collector)."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from leadline.topology import Topology
from tests.worker.conftest import dead_letters
from tests.worker.test_dlq import dlq
from tests.worker.test_dlq_process import NOW, letter, seed
from worker import dlq_report
from worker.__main__ import main
from worker.dlq_process import Policy, expired

DAY = 86400.0


@pytest.mark.parametrize(("kwargs", "retain", "gone"), [
    ({"dead_at": NOW - timedelta(days=31)}, 30 * DAY, True),
    ({"dead_at": NOW - timedelta(days=29)}, 30 * DAY, False),
    ({"dead_at": NOW - timedelta(days=31), "kind": "permanent", "status": 422}, 30 * DAY, True),
    ({"dead_at": NOW - timedelta(days=365)}, None, False),
])
def test_expired_counts_from_the_dead_lettering(kwargs: dict[str, object], retain: float | None,
                                                gone: bool) -> None:
    assert expired(letter(**kwargs), NOW, Policy(min_age=0, retain=retain)) is gone  # type: ignore[arg-type]


def test_a_letter_of_unknown_age_is_kept() -> None:
    dead = letter(dead_at=NOW - timedelta(days=400))
    unknown = type(dead)(**{**{n: getattr(dead, n) for n in dead.__slots__}, "dead_at": "", "failed_at": ""})
    assert not expired(unknown, NOW, Policy(min_age=0, retain=DAY))


def test_old_reports_are_deleted_by_the_time_in_their_name_and_nothing_else(tmp_path: Path) -> None:
    names = ["dlq-report-20250101T000000Z.csv", "dlq-report-20250101T000000Z.md",
             "dlq-report-20250101T000000Z-2.md", "dlq-report-20250105T120000Z.csv",
             "notes.md", "dlq-report-someday.csv"]
    for name in names:
        (tmp_path / name).write_text("x")
    gone = dlq_report.delete_older(tmp_path, datetime(2025, 1, 3, tzinfo=UTC))
    assert sorted(p.name for p in gone) == sorted(names[:3])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names[3:])


async def test_retain_purges_old_letters_of_every_kind_and_old_reports(
        amqp_url: str, topology: Topology, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    old = await seed(amqp_url, topology, 2, dead_at=now - timedelta(days=40))
    old += await seed(amqp_url, topology, 1, kind="permanent", status=422, dead_at=now - timedelta(days=31))
    young = await seed(amqp_url, topology, 1, kind="permanent", status=422, dead_at=now - timedelta(days=2))
    resting = await seed(amqp_url, topology, 1, dead_at=now - timedelta(minutes=5))
    stale = tmp_path / f"dlq-report-{(now - timedelta(days=31)):%Y%m%dT%H%M%SZ}.csv"
    recent = tmp_path / f"dlq-report-{(now - timedelta(days=1)):%Y%m%dT%H%M%SZ}.md"
    for path in (stale, recent):
        path.write_text("old report")

    done = await dlq(amqp_url, topology, "process", "--min-age", "1h", "--retain", "30d",
                     "--report", str(tmp_path))
    assert done.returncode == 0, done.stderr
    line = done.stdout.strip().splitlines()[-1]
    assert "purged 3 older than 30d (retention), deleted 1 report files older than 30d" in line
    assert "1 need a person" in line
    assert sorted(lt.id for lt in await dead_letters(amqp_url, topology)) == sorted(young + resting)
    assert not stale.exists()
    assert recent.exists()
    [report] = await asyncio.to_thread(lambda: [p.read_text() for p in tmp_path.glob("dlq-report-*.md")
                                                if p != recent])
    assert "purged 3 older than 30d (retention)" in report  # the line in the report
    for sid in old:
        assert sid in done.stderr  # each purge is logged, by id
    assert '"dead letter purged: older than the retention"' in done.stderr


async def test_textfile_gets_the_passes_metrics_atomically_and_only_the_processors(
        amqp_url: str, topology: Topology, tmp_path: Path) -> None:
    await seed(amqp_url, topology, 2)
    await seed(amqp_url, topology, 1, kind="permanent", status=422)
    path = tmp_path / "leadline_dlq.prom"
    path.write_text("# the previous run's\n")
    before = path.stat().st_ino
    done = await dlq(amqp_url, topology, "process", "--min-age", "0s", "--textfile", str(path))
    assert done.returncode == 0, done.stderr
    assert path.stat().st_ino != before, "a new file renamed into place, not one written in place"
    assert sorted(os.listdir(tmp_path)) == ["leadline_dlq.prom"]  # no temporary file left
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(path.read_text()) for s in family.samples}
    assert samples[("leadline_dlq_redriven_total", ())] == 2
    assert samples[("leadline_dlq_reported_total", (("kind", "permanent"),))] == 1
    assert samples[("leadline_dlq_permanent_waiting", ())] == 1
    assert samples[("leadline_dlq_expired_total", ())] == 0
    assert samples[("leadline_dlq_last_pass_timestamp_seconds", ())] > datetime.now(UTC).timestamp() - 60
    assert samples[("leadline_dlq_last_pass_duration_seconds", ())] > 0
    assert {name for name, _ in samples if not name.startswith("leadline_dlq_")} == set()


def test_bad_retain_and_textfile_are_one_line_naming_the_option(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    cases = [
        (["--retain", "forever"], "--retain"),
        (["--retain", "30m", "--min-age", "1h"], "--retain"),
        (["--textfile", str(tmp_path / "metrics.txt")], "--textfile"),
        (["--textfile", str(tmp_path / "missing" / "leadline.prom")], "--textfile"),
    ]
    for args, option in cases:
        assert main(["dlq", "process", *args]) == 2, args
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1, err
        assert err.startswith(f"worker: {option}: "), err
