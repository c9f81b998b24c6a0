"""`python -m worker dlq list|show|replay|purge|export|erase|process|serve`: the operator's DLQ tools."""

from __future__ import annotations

import argparse
import csv
import io
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO, Any

import orjson

from leadline import config
from leadline.broker import connect_once
from leadline.logs import mask_email
from leadline.topology import DEFAULT_PREFIX, Topology
from worker.dlq import PERSONAL_DATA_NOTICE, DeadLetter, browse, erase, purge_all

CSV_FIELDS = ("id", "form", "attempts", "kind", "status", "error_class", "error", "failed_at",
              "first_failure_at", "dead_at", "received_at", "redrives", "lead")


@dataclass(frozen=True, slots=True)
class ToolSettings:
    amqp_url: str
    topology: Topology

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> ToolSettings:
        # Only what the tools need, so a bad CRM setting does not lock the DLQ away.
        return cls(
            amqp_url=config.parse_amqp_url("AMQP_URL", config.get(environ, "AMQP_URL",
                                                                  config.DEFAULT_AMQP_URL)),
            topology=Topology(prefix=config.parse_prefix(
                "QUEUE_PREFIX", config.get(environ, "QUEUE_PREFIX", DEFAULT_PREFIX))),
        )


def add_parser(subparsers: Any) -> None:
    dlq = subparsers.add_parser("dlq", help="inspect, replay, purge or export dead letters")
    cmds = dlq.add_subparsers(dest="dlq_command", required=True, metavar="COMMAND")
    ls = cmds.add_parser("list", help="one line per dead letter")
    ls.add_argument("--json", action="store_true", help="one JSON object per line")
    ls.add_argument("--limit", type=int, default=None, help="at most this many letters")
    show = cmds.add_parser("show", help="a letter's full story and the lead itself")
    show.add_argument("ids", nargs="+", metavar="ID")
    show.add_argument("--json", action="store_true")
    for name, text in (("replay", "send letters back to the work queue with fresh attempts"),
                       ("purge", "delete letters for good (needs --yes)")):
        cmd = cmds.add_parser(name, help=text)
        cmd.add_argument("ids", nargs="*", metavar="ID")
        cmd.add_argument("--all", action="store_true", help="every letter in the queue")
        if name == "purge":
            cmd.add_argument("--yes", action="store_true", help="yes, delete them")
    export = cmds.add_parser("export", help=f"every letter with its lead ({PERSONAL_DATA_NOTICE})")
    export.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    export.add_argument("--output", metavar="FILE", help="write here (mode 0600) instead of stdout")
    erase_cmd = cmds.add_parser("erase", help="remove every dead letter of one person (right to erasure)")
    erase_cmd.add_argument("--email", required=True, metavar="ADDRESS",
                           help="the person's e-mail address (any case)")
    # Values are checked by dlq_process.Options.parse: one line naming the option, exit 2.
    process = cmds.add_parser("process", help="re-drive temporary failures, report what needs a person")
    process.add_argument("--min-age", default="1h", metavar="DURATION",
                         help="re-drive a temporary failure once dead this long (default 1h)")
    process.add_argument("--max-redrives", default="3", metavar="N",
                         help="re-drives per lead before it needs a person (default 3)")
    process.add_argument("--report", metavar="DIR", help=f"write the report here (mode 0600; it "
                         f"{PERSONAL_DATA_NOTICE}); printed without it")
    process.add_argument("--every", metavar="DURATION", help="a pass every DURATION until SIGTERM "
                         "(a container); without it, one pass (cron, a Kubernetes CronJob)")
    process.add_argument("--metrics-port", metavar="PORT", help="with --every: serve /metrics here "
                         "(on WORKER_METRICS_HOST, default 127.0.0.1)")
    process.add_argument("--retain", metavar="DURATION", help="purge dead letters dead for longer than "
                         "this (such as 30d), and delete report files older than this from --report DIR")
    process.add_argument("--textfile", metavar="PATH", help="after each pass, write the metrics to PATH "
                         "(ending in .prom) for node_exporter's textfile collector, atomically")
    serve = cmds.add_parser("serve", help="the dead-letter console: a web page behind HTTP Basic auth "
                            "(password: DLQ_CONSOLE_TOKEN)")
    serve.add_argument("--host", default="127.0.0.1", help="default 127.0.0.1")
    serve.add_argument("--port", default="9180", help="default 9180")


class UsageError(Exception):
    """A command line the tool refuses; exit 2."""


async def run(args: argparse.Namespace, environ: Mapping[str, str], out: IO[str]) -> int:
    settings = ToolSettings.from_env(environ)
    command: str = args.dlq_command
    if command == "process":
        from leadline import logs
        from worker import dlq_process

        options = dlq_process.Options.parse(args.min_age, args.max_redrives, args.report, args.every,
                                            args.metrics_port, args.retain, args.textfile)
        logs.configure(environ.get("LOG_LEVEL", "INFO"))
        return await dlq_process.run(options, settings.amqp_url, settings.topology, out,
                                     metrics_host=environ.get("WORKER_METRICS_HOST", "127.0.0.1"))
    if command == "serve":
        from worker.dlq_console import serve as console

        return await console.run(args.host, args.port, environ, settings.amqp_url, settings.topology.prefix)
    if command == "erase":
        address = _email(args.email)
    if command in {"replay", "purge"}:
        if bool(args.ids) == bool(args.all):
            raise UsageError(f"dlq {command}: give IDs or --all (not both)")
        if command == "purge" and not args.yes:
            raise UsageError("dlq purge deletes dead letters for good: add --yes to confirm")
    connection = await connect_once(settings.amqp_url, name=f"leadline-dlq-{command}")
    try:
        if command == "purge" and args.all:
            print(f"purged {await purge_all(connection, settings.topology)} dead letters", file=out)
            return 0
        if command == "erase":
            erased = await erase(connection, settings.topology, address)
            print(f"erased {erased} dead letters of {mask_email(address)}; reports that `dlq process` "
                  "wrote earlier may still name this person (see the README's privacy section)", file=out)
            return 0
        limit = args.limit if command == "list" else None
        async with browse(connection, settings.topology, limit=limit) as taken:
            if command == "list":
                _print_list(taken.letters, out, as_json=args.json)
                return 0
            if command == "export":
                return _export(taken.letters, args.format, args.output, out)
            wanted = None if getattr(args, "all", False) else set(args.ids)
            chosen = taken.select(wanted)
            found = {m.header.properties.message_id or "" for m in chosen}
            missing = sorted((wanted or set()) - found)
            if command == "show":
                for letter in (taken.letters[taken.messages.index(m)] for m in chosen):
                    _print_story(letter, out, as_json=args.json)
            else:
                for message in chosen:
                    await (taken.replay(message) if command == "replay" else taken.remove(message))
                verb = "replayed" if command == "replay" else "purged"
                print(f"{verb} {len(chosen)} dead letters", file=out)
            for missing_id in missing:
                print(f"worker dlq: no dead letter with id {missing_id!r}", file=sys.stderr)
            return 1 if missing else 0
    finally:
        await connection.close()


def _email(text: str) -> str:
    address = text.strip()
    local, at, domain = address.rpartition("@")
    if not (at and local and domain) or any(c.isspace() for c in address):
        raise UsageError(f"dlq erase --email: {text!r} is not an e-mail address")
    return address


def _print_list(letters: list[DeadLetter], out: IO[str], *, as_json: bool) -> None:
    if as_json:
        for letter in letters:
            out.write(orjson.dumps(letter.summary()).decode() + "\n")
        return
    rows = [("ID", "FORM", "ATTEMPTS", "KIND", "STATUS", "FAILED AT", "ERROR")]
    rows += [(lt.id, lt.form, str(lt.attempts), lt.kind, str(lt.crm_status or "-"), lt.failed_at,
              _short(lt.error, 60)) for lt in letters]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        out.write("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)) + "  " + row[-1] + "\n")
    out.write(f"{len(letters)} dead letters\n")


def _print_story(letter: DeadLetter, out: IO[str], *, as_json: bool) -> None:
    full = letter.full()
    if as_json:
        out.write(orjson.dumps(full).decode() + "\n")
        return
    for key, value in full.items():
        if key != "lead":
            out.write(f"{key:>17}: {'' if value is None else value}\n")
    out.write(f"{'lead':>17}: {orjson.dumps(full['lead'], option=orjson.OPT_INDENT_2).decode()}\n\n")


def _short(text: str, width: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _export(letters: list[DeadLetter], fmt: str, output: str | None, out: IO[str]) -> int:
    buffer = io.StringIO()
    if fmt == "jsonl":
        for letter in letters:
            buffer.write(orjson.dumps(letter.full()).decode() + "\n")
    else:
        writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, extrasaction="ignore")
        writer.writeheader()
        for letter in letters:
            row = letter.full()
            row["lead"] = orjson.dumps(row["lead"]).decode()
            writer.writerow(row)
    # Personal data: say so every time, and keep files private to their owner.
    print(f"worker dlq export: {len(letters)} letters; {PERSONAL_DATA_NOTICE}", file=sys.stderr)
    if output is None:
        out.write(buffer.getvalue())
        return 0
    fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as file:
        file.write(buffer.getvalue())
    return 0
