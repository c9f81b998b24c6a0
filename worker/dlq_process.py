"""`python -m worker dlq process`: re-drive what time can heal, report what needs a person.

The decisions are pure (`decide`, `redrive_headers`; the table in
tests/worker/test_dlq_process.py is their specification):
- `temporary` (timeouts, 5xx, 429, CRM unreachable until attempts ran out):
  re-driven once quiet for `--min-age` since it was dead-lettered, with fresh
  attempts, the same message_id (the CRM's idempotency key), `H_REDRIVES` + 1
  and `H_LAST_REDRIVE_AT`; past `--max-redrives` it needs a person.
- `permanent` (CRM 4xx), `poison`, and whatever the broker dead-lettered itself
  (the delivery limit: a lead that crashed workers; re-driving it would crash
  them again) stay in the queue and go into the report (worker/dlq_report.py).
- With `--retain`, a letter dead for longer than that is purged first, whatever
  its kind (personal data is kept no longer than the retention), and report
  files older than that are deleted from `--report DIR`.

`run_pass` is the edge, on the DLQ machinery of worker/dlq.py: take letters one
at a time without acking (a letter taken is invisible to a second processor),
re-drive with publish-confirm before the ack (a crash in between is a duplicate
the CRM's idempotency key absorbs, never a loss), hold every letter it leaves
until the pass ends, then hand them all back by closing the channel. A pass
takes at most as many letters as were ready when it began, so it never spins
on letters handed back by another processor.

Metrics (`DlqMetrics`) go to `--metrics-port` in loop mode and, with
`--textfile PATH`, to a `.prom` file after every pass, written atomically (a
temporary file, then a rename) for node_exporter's textfile collector: the way
a one-shot batch job (cron, a Kubernetes CronJob) leaves its metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from aiohttp import web
from aiormq.abc import AbstractConnection
from prometheus_client import write_to_textfile

from leadline.broker import TRANSIENT_ERRORS, connect_once
from leadline.config import format_duration, parse_duration, parse_int
from leadline.errors import BrokerUnavailable, ConfigError, PublishNotConfirmed
from leadline.logs import mask_email
from leadline.message import (
    H_ATTEMPTS,
    H_CRM_STATUS,
    H_DEAD_AT,
    H_ERROR,
    H_ERROR_CLASS,
    H_FAILURE_KIND,
    H_LAST_FAILURE_AT,
    H_LAST_REDRIVE_AT,
    H_REDRIVES,
    utc_now_iso,
)
from leadline.topology import Topology
from worker import dlq_report, story
from worker.dlq import DeadLetter, describe, open_dlq
from worker.dlq_report import ReportRow
from worker.metrics import DlqMetrics, metrics_app

log = logging.getLogger("leadline.dlq")

DEFAULT_MIN_AGE = 3600.0
DEFAULT_MAX_REDRIVES = 3
# The failure story a re-driven lead starts its new cycle without; the first
# failure's time stays, so a report shows since when a lead has been failing.
RESET_ON_REDRIVE = (H_LAST_FAILURE_AT, H_ERROR_CLASS, H_ERROR, H_CRM_STATUS, H_FAILURE_KIND, H_DEAD_AT)
# A re-drive that fails like this stops re-driving for the rest of the pass.
NOT_CONFIRMED = (PublishNotConfirmed,)


class Action(enum.Enum):
    REDRIVE = "redrive"
    WAIT = "wait"  # temporary, but not quiet for long enough yet: a later pass decides
    REPORT = "report"  # needs a person: stays in the DLQ, goes into the report


@dataclass(frozen=True, slots=True)
class Policy:
    min_age: float = DEFAULT_MIN_AGE
    max_redrives: int = DEFAULT_MAX_REDRIVES
    retain: float | None = None  # seconds a dead letter is kept at most; None: for ever


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    reason: str  # in words; the report groups by it


def parse_time(value: str) -> datetime | None:
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def age_seconds(letter: DeadLetter, now: datetime) -> float | None:
    """Seconds since the letter was dead-lettered (else since its last failure); None if unknown."""
    when = parse_time(letter.dead_at) or parse_time(letter.failed_at)
    return None if when is None else (now - when).total_seconds()


def expired(letter: DeadLetter, now: datetime, policy: Policy) -> bool:
    """Dead for longer than the retention; a letter of unknown age is kept (a person decides)."""
    if policy.retain is None:
        return False
    age = age_seconds(letter, now)
    return age is not None and age > policy.retain


def decide(letter: DeadLetter, now: datetime, policy: Policy) -> Decision:
    if letter.kind == story.KIND_TEMPORARY:
        if letter.redrives >= policy.max_redrives:
            why = letter.error_class or "no error recorded"
            return Decision(Action.REPORT, f"CRM still failing after {letter.redrives} re-drives ({why})")
        age = age_seconds(letter, now)
        # An unknown age counts as old: the letter was dead before this pass, and the cap bounds it.
        if policy.min_age > 0 and age is not None and age < policy.min_age:
            return Decision(Action.WAIT, f"younger than {format_duration(policy.min_age)}")
        return Decision(Action.REDRIVE, "temporary failure")
    return Decision(Action.REPORT, report_reason(letter))


def report_reason(letter: DeadLetter) -> str:
    if letter.kind == story.KIND_PERMANENT:
        status = f"HTTP {letter.crm_status}" if letter.crm_status is not None else letter.error_class
        return f"CRM refused the lead ({status or 'no status'})"
    if letter.kind == story.KIND_POISON:
        return f"unreadable message ({letter.error_class or 'unknown'})"
    if letter.kind == "delivery_limit":
        return "made workers crash (delivery limit)"
    return f"dead-lettered by the broker ({letter.kind or 'unknown'})"


def redrive_headers(headers: Mapping[str, Any], now: str) -> dict[str, Any]:
    """A fresh cycle of attempts, the re-drive counted; the broker's `x-death` dropped."""
    out = {k: v for k, v in story.clean(headers).items() if k not in RESET_ON_REDRIVE}
    redrives = headers.get(H_REDRIVES)
    out[H_REDRIVES] = (redrives if isinstance(redrives, int) else 0) + 1
    out[H_LAST_REDRIVE_AT] = now
    out[H_ATTEMPTS] = 0
    return out


@dataclass
class PassResult:
    seen: int = 0
    redriven: list[str] = field(default_factory=list)
    waiting: int = 0  # temporary, too young
    not_confirmed: int = 0  # re-drive publish failed, or skipped after one did
    not_reached: int = 0  # ready at the start, not taken: the pass was told to stop
    report: list[ReportRow] = field(default_factory=list)
    expired: list[str] = field(default_factory=list)  # purged: older than the retention
    reports_deleted: int = 0  # report files older than the retention

    def summary(self, policy: Policy) -> str:
        min_age = format_duration(policy.min_age) if policy.min_age else "0s"
        text = (f"re-drove {len(self.redriven)}, {len(self.report)} need a person, "
                f"{self.waiting} left to rest (younger than {min_age})")
        if policy.retain is not None:
            retain = format_duration(policy.retain)
            text += (f", purged {len(self.expired)} older than {retain} (retention)"
                     f", deleted {self.reports_deleted} report files older than {retain}")
        if self.not_confirmed:
            text += f", {self.not_confirmed} not re-driven (publish not confirmed)"
        if self.not_reached:
            text += f", {self.not_reached} not reached (stopped)"
        return text


async def run_pass(connection: AbstractConnection, topology: Topology, policy: Policy,
                   stop: Callable[[], bool] = lambda: False) -> PassResult:
    """One pass over the letters ready now; `stop()` is asked before taking each."""
    result = PassResult()
    redriving = True
    async with open_dlq(connection, topology) as dlq:
        budget = await dlq.ready()
        while result.seen < budget:
            if stop():
                result.not_reached = budget - result.seen
                break
            message = await dlq.take()
            if message is None:
                break  # another processor holds the rest
            result.seen += 1
            letter = describe(message.body, message.header.properties)
            now = datetime.now(UTC)
            if expired(letter, now, policy):
                await dlq.remove(message)
                result.expired.append(letter.id)
                log.info("dead letter purged: older than the retention", extra={
                    "submission_id": letter.id, "dead_at": letter.dead_at, "kind": letter.kind})
                continue
            decision = decide(letter, now, policy)
            if decision.action is Action.WAIT:
                result.waiting += 1
            elif decision.action is Action.REPORT:
                result.report.append(ReportRow(letter, decision.reason))
            elif not redriving:
                result.not_confirmed += 1
            else:
                try:
                    await dlq.replay(message, redrive_headers(letter.headers, utc_now_iso()))
                except NOT_CONFIRMED as exc:
                    redriving = False
                    result.not_confirmed += 1
                    log.warning("re-drive not confirmed: leaving the rest for the next pass",
                                extra={"submission_id": letter.id, "error": repr(exc)[:300]})
                    continue
                result.redriven.append(letter.id)
                log.info("dead letter re-driven", extra={
                    "submission_id": letter.id, "redrives": letter.redrives + 1, "attempts": letter.attempts,
                    "error_class": letter.error_class})
        # leaving the block hands back every letter taken and not re-driven
    return result


# -- the command ------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Options:
    policy: Policy
    report_dir: Path | None
    every: float | None  # None: one pass (cron, CronJob); else a pass every this many seconds
    metrics_port: int | None
    textfile: Path | None = None  # node_exporter's textfile collector: <dir>/<name>.prom

    @classmethod
    def parse(cls, min_age: str, max_redrives: str, report: str | None, every: str | None,
              metrics_port: str | None, retain: str | None = None, textfile: str | None = None) -> Options:
        """Checked command-line values; a bad one raises `ConfigError` naming the option."""
        age = parse_duration("--min-age", min_age)
        cap = parse_int("--max-redrives", max_redrives, minimum=0)
        report_dir = Path(report) if report is not None else None
        if report_dir is not None and not (report_dir.is_dir() and os.access(report_dir, os.W_OK | os.X_OK)):
            raise ConfigError("--report", f"{report!r} is not a directory this user can write to")
        interval = None if every is None else parse_duration("--every", every)
        if interval is not None and interval <= 0:
            raise ConfigError("--every", "must be longer than zero")
        if interval is not None and report_dir is None:
            # a container's stdout is its log, and the report holds personal data
            raise ConfigError("--report", "--every needs --report DIR (the report holds personal data)")
        port = None if metrics_port is None else parse_int("--metrics-port", metrics_port, minimum=1)
        if port is not None and (port > 65535 or interval is None):
            raise ConfigError("--metrics-port", "a TCP port (1-65535), and only with --every")
        keep = None if retain is None else parse_duration("--retain", retain)
        if keep is not None and keep <= age:
            raise ConfigError("--retain", f"must be longer than --min-age ({format_duration(age)}): "
                              "a letter would be purged before it could be re-driven")
        return cls(Policy(age, cap, keep), report_dir, interval, port, _textfile(textfile))


def _textfile(text: str | None) -> Path | None:
    if text is None:
        return None
    path = Path(text)
    if path.suffix != ".prom":
        raise ConfigError("--textfile", f"{text!r} must end in .prom (node_exporter reads only those)")
    folder = path.parent
    if not (folder.is_dir() and os.access(folder, os.W_OK | os.X_OK)):
        raise ConfigError("--textfile", f"{str(folder)!r} is not a directory this user can write to")
    return path


async def run(options: Options, amqp_url: str, topology: Topology, out: IO[str],
              metrics: DlqMetrics | None = None, metrics_host: str = "127.0.0.1") -> int:
    """One pass, or a pass every `options.every` until SIGTERM/SIGINT; the exit code.

    The first connection failing is exit 1 (`BrokerUnavailable`), as is a report
    that cannot be written in one-shot mode; in loop mode later failures are
    logged and the next pass tries again. A signal stops the pass at the next
    letter (what it took goes back) and ends the loop.
    """
    metrics = metrics or DlqMetrics()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    runner: web.AppRunner | None = None
    last_reported: frozenset[tuple[str, int, str]] | None = None
    try:
        if options.metrics_port is not None:
            runner = web.AppRunner(metrics_app(metrics, lambda: True), access_log=None)
            await runner.setup()
            await web.TCPSite(runner, metrics_host, options.metrics_port).start()
        first = True
        while True:
            started = time.monotonic()
            deleted = _delete_old_reports(options)
            try:
                result = await _one_pass(amqp_url, topology, options.policy, stop)
            except BrokerUnavailable as exc:
                if first or options.every is None:
                    raise
                log.warning("dlq pass failed; trying again next time", extra={"error": str(exc)})
            else:
                result.reports_deleted = deleted
                metrics.last_pass_seconds.set(time.monotonic() - started)
                try:
                    last_reported = _finish_pass(result, options, topology, out, metrics, last_reported)
                except OSError as exc:
                    log.error("cannot write the report", extra={"error": repr(exc)[:300]})
                    if options.every is None:
                        print(f"worker dlq process: cannot write the report: {exc}", file=sys.stderr)
                        return 1
            first = False
            if options.every is None or stop.is_set():
                return 0
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), options.every)
            if stop.is_set():
                return 0
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        if runner is not None:
            await runner.cleanup()


async def _one_pass(amqp_url: str, topology: Topology, policy: Policy, stop: asyncio.Event) -> PassResult:
    connection = await connect_once(amqp_url, name="leadline-dlq-process")
    try:
        return await run_pass(connection, topology, policy, stop.is_set)
    except TRANSIENT_ERRORS as exc:
        raise BrokerUnavailable(f"lost RabbitMQ during the pass: {exc!r}"[:300]) from exc
    finally:
        with contextlib.suppress(Exception):
            await connection.close()


def _delete_old_reports(options: Options) -> int:
    """Report files past the retention, deleted before each pass (even one the broker refuses)."""
    if options.policy.retain is None or options.report_dir is None:
        return 0
    cutoff = datetime.now(UTC).timestamp() - options.policy.retain
    try:
        gone = dlq_report.delete_older(options.report_dir, datetime.fromtimestamp(cutoff, UTC))
    except OSError as exc:
        log.error("cannot delete old reports", extra={"error": repr(exc)[:300]})
        return 0
    for path in gone:
        log.info("report deleted: older than the retention", extra={"file": str(path)})
    return len(gone)


def _finish_pass(result: PassResult, options: Options, topology: Topology, out: IO[str], metrics: DlqMetrics,
                 last_reported: frozenset[tuple[str, int, str]] | None) -> frozenset[tuple[str, int, str]]:
    """Metrics, the report, one line on `out`, one JSON log line; what was reported."""
    summary = result.summary(options.policy)
    metrics.redriven.inc(len(result.redriven))
    for row in result.report:
        metrics.reported.labels(row.letter.kind).inc()
    for why, count in (("too_young", result.waiting), ("needs_person", len(result.report)),
                       ("not_confirmed", result.not_confirmed), ("not_reached", result.not_reached)):
        if count:
            metrics.left.labels(why).inc(count)
    metrics.expired.inc(len(result.expired))
    metrics.reports_deleted.inc(result.reports_deleted)
    metrics.permanent_waiting.set(len(result.report))
    metrics.last_pass.set(time.time())
    keys = [(r.letter.id, r.letter.redrives, r.letter.dead_at) for r in result.report]
    reported = frozenset(keys)
    for row, key in zip(result.report, keys, strict=True):
        if last_reported is None or key not in last_reported:  # new since the last pass
            log.info("dead letter needs a person", extra={
                "submission_id": row.letter.id, "reason": row.reason, "email": _masked_email(row.letter)})
    files: list[str] = []
    now = datetime.now(UTC)
    if result.report and options.report_dir is None:
        rows = dlq_report.rows_sorted(result.report)
        out.write(dlq_report.markdown(rows, generated_at=now, queue=topology.dead_letter_queue,
                                      this_pass=summary))
        out.write("\n```csv\n" + dlq_report.csv_text(rows) + "```\n\n")
    elif result.report and options.report_dir is not None and reported != last_reported:
        # The same letters as last pass: the last report still says it all.
        files = [str(p) for p in dlq_report.write(options.report_dir, result.report, generated_at=now,
                                                  queue=topology.dead_letter_queue, this_pass=summary)]
    out.write(f"dlq process: {summary}" + (f"; report: {', '.join(files)}" if files else "") + "\n")
    out.flush()
    log.info("dlq pass done", extra={
        "seen": result.seen, "redriven": len(result.redriven), "reported": len(result.report),
        "waiting": result.waiting, "not_confirmed": result.not_confirmed,
        "not_reached": result.not_reached, "expired": len(result.expired),
        "reports_deleted": result.reports_deleted, "report_files": files})
    if options.textfile is not None:
        # prometheus_client writes <path>.<pid>.<thread> and renames it: never half a file
        write_to_textfile(str(options.textfile), metrics.registry)
    return reported


def _masked_email(letter: DeadLetter) -> str | None:
    email = dlq_report.lead_fields(letter).get("email")
    return None if email is None else mask_email(email)
