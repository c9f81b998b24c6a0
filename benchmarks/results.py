"""Machine-readable benchmark results, for `./dev bench`'s combined report.

Each benchmark prints its figures for people and, when `BENCH_RESULTS_DIR` is
set, also writes them as `<name>.json` there: rows of ours vs the baseline
measured in the same run.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

RESULTS_ENV = "BENCH_RESULTS_DIR"


@dataclass(frozen=True, slots=True)
class Row:
    benchmark: str  # what was measured, e.g. "drain, instant CRM"
    metric: str  # unit, e.g. "leads/s" or "p99 ms"
    ours: float
    baseline: float | None
    goal: str  # e.g. "ratio >= 0.8", readable
    met: bool | None  # None: no goal for this row
    higher_is_better: bool = True

    @property
    def ratio(self) -> float | None:
        if not self.baseline:
            return None
        return self.ours / self.baseline


def record(name: str, rows: list[Row]) -> Path | None:
    folder = os.environ.get(RESULTS_ENV)
    if not folder:
        return None
    path = Path(folder) / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([{**asdict(r), "ratio": r.ratio} for r in rows], indent=2))
    return path


def load(folder: Path, name: str) -> list[Row]:
    path = folder / f"{name}.json"
    if not path.exists():
        return []
    rows = []
    for item in json.loads(path.read_text()):
        item.pop("ratio", None)
        rows.append(Row(**item))
    return rows
