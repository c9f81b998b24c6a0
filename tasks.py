"""Invoke tasks, in the shape pelican-quickstart generates, run through `./dev`.

    ./dev up        the whole pipeline locally (site, fake CRM, worker, proxy)
    ./dev test      lint, types and the whole test suite
    ./dev build     build the site into output/     ./dev serve   serve output/
    ./dev bench [proxy|worker|page|stamps|all]      benchmarks, with baselines
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from pathlib import Path

from invoke.context import Context
from invoke.tasks import task

ROOT = Path(__file__).resolve().parent
PY = shlex.quote(sys.executable)

SETTINGS: dict[str, str] = {
    "settings_base": "pelicanconf.py",
    "settings_publish": "publishconf.py",
    "deploy_path": "output",
    "host": os.environ.get("SITE_HOST", "127.0.0.1"),
    "port": os.environ.get("SITE_PORT", "8000"),
}


def _pelican(c: Context, settings: str, *extra: str) -> None:
    args = " ".join(shlex.quote(a) for a in extra)
    c.run(f"{PY} -m pelican content -o {SETTINGS['deploy_path']} -s {settings} {args}", pty=False)


@task
def clean(c: Context) -> None:
    """Remove the generated site."""
    shutil.rmtree(ROOT / SETTINGS["deploy_path"], ignore_errors=True)


@task
def build(c: Context) -> None:
    """Build the site with the development settings."""
    _pelican(c, SETTINGS["settings_base"])


@task
def rebuild(c: Context) -> None:
    """Clean, then build."""
    clean(c)
    build(c)


@task
def regenerate(c: Context) -> None:
    """Rebuild whenever content, theme or schemas change."""
    _pelican(c, SETTINGS["settings_base"], "--autoreload")


@task
def serve(c: Context) -> None:
    """Serve output/ at http://SITE_HOST:SITE_PORT (default 127.0.0.1:8000)."""
    c.run(f"{PY} -m pelican --listen -o {SETTINGS['deploy_path']} -s {SETTINGS['settings_base']} "
          f"-b {SETTINGS['host']} -p {SETTINGS['port']}", pty=False)


@task
def preview(c: Context) -> None:
    """Build with the production settings."""
    _pelican(c, SETTINGS["settings_publish"])


@task
def lint(c: Context) -> None:
    """ruff and mypy --strict."""
    c.run(f"{PY} -m ruff check .")
    c.run(f"{PY} -m mypy")


# Test processes at once: most tests wait on the broker, a CRM fake or a browser,
# so three share two cores well (the suite in a third of the time, measured);
# a file goes to one of them, the cluster tests all to one (tests/conftest.py).
TEST_PROCESSES = os.environ.get("TEST_PROCESSES", "3")


@task(help={"k": "only tests matching this expression", "x": "stop at the first failure",
            "serial": "one test process (easier to read a failure)"})
def test(c: Context, k: str = "", x: bool = False, serial: bool = False) -> None:
    """Lint, types, then the whole suite against the real RabbitMQ and Chromium."""
    lint(c)
    opts = (f" -k {shlex.quote(k)}" if k else "") + (" -x" if x else "")
    spread = "" if serial else f" -n {shlex.quote(TEST_PROCESSES)}"
    c.run(f"{PY} -m pytest -q{spread}{opts}", pty=False)


@task(help={"which": "proxy, worker, page, crm, or all (default: the combined report)",
                                  "quick": "smaller runs, for a first look"})
def bench(c: Context, which: str = "all", quick: bool = False) -> None:
    """Benchmarks, each side by side with its baseline in the same run; report in bench-results/."""
    if which == "all":
        c.run(f"{PY} -m benchmarks.report" + (" --quick" if quick else ""), pty=False)
        return
    if which == "stamps":  # not in `all`: the price of checking spam stamps, on its own
        c.run(f"{PY} -m benchmarks.proxy --stamps" + (" --quick" if quick else ""), pty=False)
        return
    if which not in {"proxy", "worker", "page", "crm"}:
        sys.exit(f"bench: no benchmark named {which!r} (choose proxy, worker, page, crm, stamps or all)")
    c.run(f"{PY} -m benchmarks.{which}", pty=False)


@task(help={"flaky": "the fake CRM fails and times out now and then",
            "no_build": "serve output/ as it is",
            "crm": "webhook (default), hubspot, salesforce or pipedrive: the CRM whose fake the worker "
                   "writes to"})
def up(c: Context, flaky: bool = False, no_build: bool = False, crm: str = "webhook") -> None:
    """The whole pipeline locally: site :8000, proxy :8080, fake CRM :8090, worker metrics :9100."""
    from devtools import devstack

    args = (["--flaky"] if flaky else []) + (["--no-build"] if no_build else []) + ["--crm", crm]
    raise SystemExit(devstack.run(args))


@task
def status(c: Context) -> None:
    """Queue depths, consumers and accepted = synced + retrying + dead-lettered."""
    from devtools import status as status_module

    raise SystemExit(status_module.main([]))


@task(help={"leads": "how many leads (default 5,000)", "concurrency": "visitors at once",
            "cluster": "on a three-node RabbitMQ cluster of its own, killing nodes",
            "crm": "webhook (default) or hubspot: the fake the worker writes to"})
def soak(c: Context, leads: int = 5000, concurrency: int = 32, cluster: bool = False,
         crm: str = "webhook") -> None:
    """Chaos soak: leads through the real pipeline while it breaks, then the accounting."""
    c.run(f"{PY} -m benchmarks.soak --leads {leads} --concurrency {concurrency} --crm {shlex.quote(crm)}"
          + (" --cluster" if cluster else ""), pty=False)


@task(help={"min_age": "re-drive temporary failures dead this long (default 1h)",
            "max_redrives": "re-drives per lead before it needs a person (default 3)",
            "report": "folder for the CSV + Markdown report (personal data); printed without it",
            "every": "loop: a pass every DURATION until Ctrl-C (needs --report)"})
def dlq_process(c: Context, min_age: str = "1h", max_redrives: int = 3, report: str = "",
                every: str = "") -> None:
    """Re-drive dead letters time can heal; report those that need a person."""
    args = ["--min-age", min_age, "--max-redrives", str(max_redrives)]
    args += ["--report", report] if report else []
    args += ["--every", every] if every else []
    c.run(f"{PY} -m worker dlq process " + " ".join(shlex.quote(a) for a in args), pty=False)

