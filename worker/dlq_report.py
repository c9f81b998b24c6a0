"""The report `dlq process` leaves for the business team: the leads that need a person.

One row per lead: what the visitor submitted, why it failed, when, how many
tries and re-drives. As CSV (for a spreadsheet: cells that would start a
formula are defused) and as a Markdown summary grouped by reason (cells
escaped so a visitor's text cannot break the table or inject HTML). Both
hold personal data and say so; files are created 0600, never overwritten,
and `delete_older` removes them once past the retention (`--retain`).
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from worker.dlq import PERSONAL_DATA_NOTICE, DeadLetter

STORY_COLUMNS = ("reason", "id", "form", "received_at", "failed_at", "dead_at", "attempts", "redrives",
                 "kind", "crm_status", "error_class", "error")
RAW_BODY = "raw_body"  # the column for a body that is not a JSON object of fields
MD_CELL_CHARS = 80
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# The names `write` gives: dlq-report-<UTC stamp>[-<n>].csv|.md
REPORT_NAME = re.compile(r"dlq-report-(\d{8}T\d{6}Z)(?:-\d+)?\.(?:csv|md)")


@dataclass(frozen=True, slots=True)
class ReportRow:
    letter: DeadLetter
    reason: str  # the group in the summary, such as "CRM refused the lead (HTTP 422)"


def lead_fields(letter: DeadLetter) -> dict[str, str]:
    """What the visitor submitted, as text; a body that is not a JSON object stays raw."""
    try:
        fields: Any = orjson.loads(letter.body)
    except orjson.JSONDecodeError:
        fields = None
    if not isinstance(fields, dict):
        return {RAW_BODY: letter.body.decode("utf-8", "replace")}
    return {str(k): _text(v) for k, v in fields.items()}


def rows_sorted(rows: Iterable[ReportRow]) -> list[ReportRow]:
    """Biggest group first, then by reason; oldest submission first within a group."""
    rows = list(rows)
    sizes: dict[str, int] = {}
    for row in rows:
        sizes[row.reason] = sizes.get(row.reason, 0) + 1
    return sorted(rows, key=lambda r: (-sizes[r.reason], r.reason, r.letter.received_at, r.letter.id))


def csv_text(rows: Sequence[ReportRow]) -> str:
    fields = [lead_fields(row.letter) for row in rows]
    names = _field_names(fields)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([*STORY_COLUMNS, *(_csv_column(n) for n in names)])
    for row, lead in zip(rows, fields, strict=True):
        story = _story(row)
        cells = [story[c] for c in STORY_COLUMNS] + [lead.get(n, "") for n in names]
        writer.writerow([_defuse(c) for c in cells])
    return buffer.getvalue()


def markdown(rows: Sequence[ReportRow], *, generated_at: datetime, queue: str, this_pass: str) -> str:
    groups: dict[str, list[ReportRow]] = {}
    for row in rows:
        groups.setdefault(row.reason, []).append(row)
    when = generated_at.strftime("%Y-%m-%d %H:%M:%S UTC")
    out = [
        "# Leads waiting for a person", "",
        f"Dead-letter report of {when}, queue `{queue}`."
        + (f" This pass: {this_pass}." if this_pass else ""),
        "", f"**This report {PERSONAL_DATA_NOTICE}.**", "",
        f"{_leads(len(rows))} stay in the dead-letter queue until someone acts: fix the data or the "
        "CRM's mapping, then `python -m worker dlq replay ID`; or enter the lead by hand, then "
        "`python -m worker dlq purge ID --yes`.", "",
        "| reason | leads |", "| --- | ---: |",
        *(f"| {_md(reason)} | {len(group)} |" for reason, group in groups.items()),
    ]
    for reason, group in groups.items():
        fields = [lead_fields(row.letter) for row in group]
        names = _field_names(fields)
        head = ["submitted", "failed", "tries", "re-drives", *names, "error", "id"]
        out += ["", f"## {_md(reason)}: {_leads(len(group))}", "",
                "| " + " | ".join(_md(h) for h in head) + " |", "|" + " --- |" * len(head)]
        for row, lead in zip(group, fields, strict=True):
            lt = row.letter
            cells = [lt.received_at, lt.failed_at, str(lt.attempts), str(lt.redrives),
                     *(lead.get(n, "") for n in names), lt.error, lt.id]
            out.append("| " + " | ".join(_md(c) for c in cells) + " |")
    return "\n".join(out) + "\n"


def write(directory: Path, rows: Sequence[ReportRow], *, generated_at: datetime, queue: str,
          this_pass: str) -> tuple[Path, Path]:
    """`dlq-report-<UTC timestamp>.csv` and `.md` in `directory`, mode 0600; a taken name gets `-2`, `-3`…"""
    rows = rows_sorted(rows)
    contents = (csv_text(rows), markdown(rows, generated_at=generated_at, queue=queue, this_pass=this_pass))
    stamp = generated_at.strftime("%Y%m%dT%H%M%SZ")
    for n in range(1, 1000):
        base = directory / (f"dlq-report-{stamp}" + (f"-{n}" if n > 1 else ""))
        paths = (base.with_suffix(".csv"), base.with_suffix(".md"))
        try:
            for path, text in zip(paths, contents, strict=True):
                _create_private(path, text)
        except FileExistsError:
            continue
        return paths
    raise FileExistsError(f"no free report name for {stamp} in {directory}")


def delete_older(directory: Path, cutoff: datetime) -> list[Path]:
    """Delete the reports generated before `cutoff` (the time in their name); only ours."""
    gone = []
    for path in sorted(directory.iterdir()):
        match = REPORT_NAME.fullmatch(path.name)
        if match is None or not path.is_file():
            continue
        generated = datetime.strptime(match.group(1), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        if generated < cutoff:
            path.unlink(missing_ok=True)
            gone.append(path)
    return gone


def _create_private(path: Path, text: str) -> None:
    # O_EXCL: two processors at the same second never write into one file.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as file:
        file.write(text)


def _story(row: ReportRow) -> dict[str, str]:
    lt = row.letter
    return {"reason": row.reason, "id": lt.id, "form": lt.form, "received_at": lt.received_at,
            "failed_at": lt.failed_at, "dead_at": lt.dead_at, "attempts": str(lt.attempts),
            "redrives": str(lt.redrives), "kind": lt.kind,
            "crm_status": "" if lt.crm_status is None else str(lt.crm_status),
            "error_class": lt.error_class, "error": lt.error}


def _field_names(fields: Iterable[dict[str, str]]) -> list[str]:
    """Every field name, in order of first appearance."""
    return list(dict.fromkeys(name for lead in fields for name in lead))


def _csv_column(name: str) -> str:
    """A lead field named like a story column (`id`, `error`…) gets a prefix in the CSV header."""
    return f"lead_{name}" if name in STORY_COLUMNS else name


def _text(value: object) -> str:
    if isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


def _defuse(value: str) -> str:
    """A cell a spreadsheet would run as a formula is shown as text instead."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def _md(value: str) -> str:
    flat = " ".join(value.split())
    if len(flat) > MD_CELL_CHARS:
        flat = flat[: MD_CELL_CHARS - 1] + "…"
    for char, escaped in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ("\\", "\\\\"), ("|", "\\|")):
        flat = flat.replace(char, escaped)
    return flat


def _leads(count: int) -> str:
    return f"{count} lead" + ("" if count == 1 else "s")
