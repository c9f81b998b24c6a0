"""`./dev up`: the whole pipeline on one machine, for a demo or a try-out.

Checks the broker, builds the site, starts the fake CRM (the webhook, or a
fake of HubSpot's, Salesforce's or Pipedrive's API with `--crm`), the worker,
the proxy and a static server for `output/`, prints the URLs and waits. Ctrl-C
(or SIGTERM) stops every child: each runs in its own process group, gets
SIGTERM, and SIGKILL if it is still there after a grace period, so nothing
is left behind holding a port.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from devtools.net import tcp_reachable
from leadline.broker import redact_url
from leadline.config import DEFAULT_AMQP_URL

ROOT = Path(__file__).resolve().parent.parent
GRACE_SECONDS = 10.0


@dataclass(frozen=True)
class Ports:
    site: int = 8000
    proxy: int = 8080
    crm: int = 8090
    metrics: int = 9100

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Ports:
        def port(name: str, default: int) -> int:
            text = environ.get(name, "") or str(default)
            if not text.isdigit() or not 0 < int(text) < 65536:
                raise SystemExit(f"up: {name} must be a TCP port number, got {text!r}")
            return int(text)

        return cls(port("SITE_PORT", 8000), port("PROXY_PORT", 8080), port("CRM_PORT", 8090),
                   port("WORKER_METRICS_PORT", 9100))


@dataclass
class Child:
    name: str
    argv: list[str]
    ready_url: str
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


CRMS = ("webhook", "hubspot", "salesforce", "pipedrive")
FAKE_TOKEN = "test-token"  # noqa: S105 - the fakes' own credential, for the local demo only


def crm_env(crm: str, crm_base: str) -> dict[str, str]:
    """The worker's settings for the chosen CRM's fake."""
    if crm == "hubspot":
        return {"CRM": crm, "HUBSPOT_API_URL": crm_base, "HUBSPOT_TOKEN": FAKE_TOKEN}
    if crm == "salesforce":
        return {"CRM": crm, "SALESFORCE_INSTANCE_URL": crm_base, "SALESFORCE_TOKEN": FAKE_TOKEN}
    if crm == "pipedrive":
        return {"CRM": crm, "PIPEDRIVE_API_URL": crm_base, "PIPEDRIVE_TOKEN": FAKE_TOKEN}
    return {"CRM": "webhook", "CRM_URL": f"{crm_base}/leads"}


def plan(ports: Ports, environ: Mapping[str, str], *, flaky: bool, crm: str = "webhook") -> list[Child]:
    """The children to start, in order, each with the URL that says it is ready."""
    py = sys.executable
    site_origins = f"http://127.0.0.1:{ports.site},http://localhost:{ports.site}"
    crm_base = f"http://127.0.0.1:{ports.crm}"
    fake = [py, "-m", "worker.fakecrm", "--port", str(ports.crm)]
    if crm != "webhook":
        fake += ["--vendor", crm, "--token", FAKE_TOKEN]
    if flaky:
        fake += ["--fail-rate", "0.2", "--timeout-rate", "0.05", "--latency-ms", "150"]
    return [
        Child("crm", fake, f"{crm_base}/_stats"),
        Child("worker", [py, "-m", "worker"], f"http://127.0.0.1:{ports.metrics}/readyz",
              env={**crm_env(crm, crm_base), "WORKER_METRICS_PORT": str(ports.metrics),
                   "CRM_TIMEOUT": environ.get("CRM_TIMEOUT", "2"),
                   "CRM_PROBE_INTERVAL": environ.get("CRM_PROBE_INTERVAL", "5s")}),
        Child("proxy", [py, "-m", "proxy", "--port", str(ports.proxy)],
              f"http://127.0.0.1:{ports.proxy}/readyz",
              env={"ALLOWED_ORIGINS": environ.get("ALLOWED_ORIGINS", site_origins)}),
        Child("site", [py, "-m", "http.server", str(ports.site), "--bind", "127.0.0.1",
                       "--directory", str(ROOT / "output")], f"http://127.0.0.1:{ports.site}/"),
    ]


def _crm_setup(env: Mapping[str, str], settings: Mapping[str, str]) -> None:
    """What an operator does once per CRM: create the submission-id field (`crm setup`)."""
    done = subprocess.run([sys.executable, "-m", "worker", "crm", "setup"], cwd=ROOT,
                          env={**env, **settings}, capture_output=True, text=True, check=False)
    for line in (done.stdout + done.stderr).splitlines():
        print(f"{'setup':<7}| {line}", flush=True)
    if done.returncode != 0:
        raise SystemExit("up: `python -m worker crm setup` failed; see its lines above")


def _pump(name: str, stream: IO[bytes], out: IO[str]) -> None:
    width = 7
    for raw in iter(stream.readline, b""):
        out.write(f"{name:<{width}}| {raw.decode(errors='replace').rstrip()}\n")
        out.flush()


def _wait_ready(child: Child, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.proc is not None and child.proc.poll() is not None:
            code = child.proc.returncode
            raise SystemExit(f"up: {child.name} exited with code {code}; see its lines above")
        try:
            with urllib.request.urlopen(child.ready_url, timeout=1) as answer:  # noqa: S310 - loopback
                if answer.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    raise SystemExit(f"up: {child.name} was not ready at {child.ready_url} after {timeout:.0f}s")


def stop_all(children: Sequence[Child], grace: float = GRACE_SECONDS) -> None:
    """SIGTERM every process group, newest first; SIGKILL what outlives the grace period."""
    running = [c for c in reversed(children) if c.proc is not None and c.proc.poll() is None]
    for child in running:
        assert child.proc is not None
        _signal_group(child.proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for child in running:
        assert child.proc is not None
        try:
            child.proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _signal_group(child.proc.pid, signal.SIGKILL)
            child.proc.wait()
        # the group may hold grandchildren that outlived their parent
        _signal_group(child.proc.pid, signal.SIGKILL)


def _signal_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def run(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="./dev up", description=__doc__.split("\n\n")[0])
    parser.add_argument("--flaky", action="store_true",
                        help="the fake CRM fails 20%% of calls and times out on 5%% after storing")
    parser.add_argument("--no-build", action="store_true", help="serve output/ as it is")
    parser.add_argument("--crm", choices=CRMS, default="webhook",
                        help="which CRM the worker writes to: the webhook fake (default) or a fake of "
                        "HubSpot's, Salesforce's or Pipedrive's API")
    args = parser.parse_args(argv)
    env = dict(os.environ if environ is None else environ)
    amqp_url = env.get("AMQP_URL") or DEFAULT_AMQP_URL
    ports = Ports.from_env(env)

    if not tcp_reachable(amqp_url):
        print(f"up: no RabbitMQ at {redact_url(amqp_url)}; start one with `rabbitmq-server -detached` "
              "(Debian: apt-get install rabbitmq-server) or `docker compose up -d rabbitmq`, "
              "or set AMQP_URL.", file=sys.stderr)
        return 1
    busy = [f"{name} {port}" for name, port in vars(ports).items() if not port_free(port)]
    if busy:
        print(f"up: port(s) already in use: {', '.join(busy)}; stop what holds them or set "
              "SITE_PORT / PROXY_PORT / CRM_PORT / WORKER_METRICS_PORT.", file=sys.stderr)
        return 1

    endpoint = env.get("LEADFORM_ENDPOINT") or f"http://127.0.0.1:{ports.proxy}/api/forms"
    if not args.no_build:
        print(f"up: building the site (form posts to {endpoint})", flush=True)
        built = subprocess.run(
            [sys.executable, "-m", "pelican", "content", "-o", "output", "-s", "pelicanconf.py", "-q"],
            cwd=ROOT, env={**env, "LEADFORM_ENDPOINT": endpoint}, check=False)
        if built.returncode != 0:
            print("up: the site did not build; see the lines above", file=sys.stderr)
            return built.returncode

    children = plan(ports, env, flaky=args.flaky, crm=args.crm)
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        for child in children:
            child.proc = subprocess.Popen(
                child.argv, cwd=ROOT, env={**env, **child.env, "PYTHONUNBUFFERED": "1"},
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
            assert child.proc.stdout is not None
            threading.Thread(target=_pump, args=(child.name, child.proc.stdout, sys.stdout),
                             daemon=True).start()
            _wait_ready(child, timeout=30)
            if child.name == "crm" and args.crm != "webhook":
                _crm_setup(env, crm_env(args.crm, f"http://127.0.0.1:{ports.crm}"))
        crm_page = "/_leads" if args.crm == "webhook" else "/_state"
        print(
            "\nLeadline is up:\n"
            f"  landing page   http://127.0.0.1:{ports.site}/\n"
            f"  proxy          http://127.0.0.1:{ports.proxy}/api/forms/lead  "
            f"(/healthz /readyz /metrics)\n"
            f"  fake CRM       http://127.0.0.1:{ports.crm}{crm_page}  (/_stats; {args.crm})\n"
            f"  worker metrics http://127.0.0.1:{ports.metrics}/metrics\n"
            f"  broker         {redact_url(amqp_url)}\n"
            "Ctrl-C stops everything.\n", flush=True)
        while not stop.wait(0.5):
            for child in children:
                code = child.proc.poll() if child.proc is not None else None
                if code is not None:
                    print(f"up: {child.name} exited with code {code}; stopping the rest", file=sys.stderr)
                    return 1
        return 0
    except SystemExit as exc:
        print(exc, file=sys.stderr)
        return 1
    finally:
        print("up: stopping", flush=True)
        stop_all(children)
        print("up: stopped", flush=True)


if __name__ == "__main__":
    sys.exit(run())
