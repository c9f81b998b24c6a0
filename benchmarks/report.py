"""`./dev bench`: every benchmark in one report, each beside its baseline.

Runs the proxy, worker and page benchmarks one after the other (never at
once: the machine has two cores), then writes to `bench-results/`:
`report.md` (the machine, a table of figures, baselines and ratios),
`report.png` (throughput and latency, ours beside the baseline), and each
benchmark's own output (`<name>.txt`, `<name>.json`).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.results import RESULTS_ENV, Row, load

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench-results"
BENCHMARKS = ("proxy", "worker", "crm", "page")


def machine() -> list[str]:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or "unknown CPU")
    mem_kb = next((int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal")), 0)
    rabbit = _first_line(["rabbitmqctl", "--quiet", "version"])
    chromium = _first_line(["/usr/bin/chromium", "--version"])
    load1, load5, _ = os.getloadavg()
    return [
        f"{os.cpu_count()} cores ({cpu}), {mem_kb / 1024 / 1024:.0f} GiB memory, "
        f"{platform.system()} {platform.release()}",
        f"Python {platform.python_version()}, RabbitMQ {rabbit}, {chromium}",
        f"load average at start {load1:.2f} (1 min), {load5:.2f} (5 min)",
    ]


def _first_line(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    except OSError:
        return "unknown"
    return (done.stdout.strip().splitlines() or ["unknown"])[0]


def run_one(name: str, extra: list[str]) -> tuple[int, float]:
    started = time.monotonic()
    with (OUT / f"{name}.txt").open("w") as log:
        proc = subprocess.Popen([sys.executable, "-m", f"benchmarks.{name}", *extra], cwd=ROOT,
                                env={**os.environ, RESULTS_ENV: str(OUT)}, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        assert proc.stdout is not None
        for line in proc.stdout:
            sys.stdout.write(line)
            log.write(line)
        code = proc.wait()
    return code, time.monotonic() - started


def _fmt(value: float | None, metric: str) -> str:
    if value is None:
        return "-"
    if metric == "bytes" or value >= 100:
        return f"{value:,.0f}"
    return f"{value:,.1f}"


def markdown(rows: list[Row], described: list[str], outcomes: dict[str, tuple[int, float]]) -> str:
    lines = ["# Leadline benchmarks", "",
             f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC. Each figure is beside a baseline measured "
             "in the same run on the same machine; ratios are ours / baseline.", "",
             "Machine:", *[f"- {d}" for d in described], "",
             "| benchmark | unit | ours | baseline | ratio | goal | met |",
             "| --- | --- | ---: | ---: | ---: | --- | --- |"]
    for r in rows:
        ratio = "-" if r.ratio is None else f"{r.ratio:.2f}x"
        met = "-" if r.met is None else ("yes" if r.met else "**no**")
        lines.append(f"| {r.benchmark} | {r.metric} | {_fmt(r.ours, r.metric)} | "
                     f"{_fmt(r.baseline, r.metric)} | {ratio} | {r.goal} | {met} |")
    lines += ["", "| benchmark run | exit | took |", "| --- | ---: | ---: |"]
    lines += [f"| `python -m benchmarks.{name}` | {code} | {secs:.0f} s |"
              for name, (code, secs) in outcomes.items()]
    lines += ["", "Raw output of each benchmark: `bench-results/<name>.txt`; "
              "chart: `bench-results/report.png`."]
    return "\n".join(lines) + "\n"


def chart(rows: list[Row], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = [("Throughput (higher is better)", [r for r in rows if r.metric.endswith("/s")]),
              ("Latency, ms (lower is better)", [r for r in rows if r.metric.endswith("ms")])]
    groups = [(title, chosen) for title, chosen in groups if chosen]
    if not groups:
        return
    fig, axes = plt.subplots(len(groups), 1, figsize=(10, 3.2 * len(groups)), squeeze=False)
    for ax, (title, chosen) in zip(axes[:, 0], groups, strict=True):
        labels = [r.benchmark for r in chosen]
        ys = range(len(chosen))
        ax.barh([y + 0.2 for y in ys], [r.ours for r in chosen], height=0.4, label="Leadline",
                color="#1f6f5c")
        ax.barh([y - 0.2 for y in ys], [r.baseline or 0 for r in chosen], height=0.4,
                label="baseline (same run)", color="#b9c4c9")
        ax.set_yticks(list(ys), labels, fontsize=8)
        ax.set_title(title, fontsize=10)
        for y, r in zip(ys, chosen, strict=True):
            if r.ratio is not None:
                ax.text(r.ours, y + 0.2, f" {r.ratio:.2f}x", va="center", fontsize=8)
        ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(prog="./dev bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller runs, for a first look")
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    for stale in OUT.glob("*.json"):
        stale.unlink()
    described = machine()
    quick = {"proxy": ["--quick"], "worker": ["--leads", "2000", "--latency-leads", "1000", "--repeat", "1"],
             "crm": ["--leads", "4000", "--baseline-seconds", "12"], "page": ["--submissions", "10"]}
    outcomes = {name: run_one(name, quick[name] if args.quick else []) for name in BENCHMARKS}
    rows = [row for name in BENCHMARKS for row in load(OUT, name)]
    (OUT / "report.md").write_text(markdown(rows, described, outcomes))
    chart(rows, OUT / "report.png")
    print(f"\nreport: {OUT / 'report.md'}  chart: {OUT / 'report.png'}")
    print((OUT / "report.md").read_text())
    return 0 if all(code == 0 for code, _ in outcomes.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
