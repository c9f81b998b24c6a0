"""`./dev bench proxy`: the edge proxy against the obvious implementation.

Both servers run as their own processes on the same RabbitMQ (each with a
queue prefix of its own, deleted afterwards); a load generator in a third
process posts valid leads over 64 keep-alive connections on loopback and
measures accepted leads/s and the latency of each request. The two sides are
measured in alternating rounds, and the CPU time each server used per request
is printed too: on a shared 2-core machine the throughput moves with the
background load, the CPU per request much less. So is what the broker and the
load generator spent per request: on one machine they share its cores with
the server, which puts a ceiling on any server's throughput. Then the proxy
takes a long run (100,000 requests by default) while its RSS (all its
processes together) is sampled at the start, the middle and the end: memory
must stay flat.

Ours runs with `PROXY_WORKERS=2` (`--workers`), the setting recommended for a
2-core machine; the baseline is one process, as the issue defines it. A third
side is ours again with OpenTelemetry on (`OTEL_EXPORTER_OTLP_ENDPOINT` at a
local OTLP/HTTP receiver in a process of its own, which decodes and counts
the spans), measured in the same alternating rounds: the price of tracing
(`--no-tracing` leaves it out).
Figures also go to `BENCH_RESULTS_DIR` (see `benchmarks.results`).

The obvious implementation (`--role baseline`) is what one writes first: an
aiohttp handler doing `await request.json()`, jsonschema validation, and an
aiormq publish awaiting the confirm, on the default asyncio loop.

`--stamps` (`./dev bench stamps`) measures instead the price of checking spam
stamps: ours with SPAM_STAMP=flag, every request carrying a valid stamp over
its own Idempotency-Key, against ours with SPAM_STAMP=off sent the very same
requests, in alternating rounds of one run. The stamps are made beforehand
with 4 bits: checking one is one SHA-256 whatever its bits (the bits only
say how many leading zeros that one hash must show), so the page's real
difficulty would cost the proxy the same.

    python -m benchmarks.proxy [--requests N] [--soak N] [--quick] [--workers N] [--no-tracing]
    python -m benchmarks.proxy --stamps [--requests N] [--workers N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from functools import partial
from pathlib import Path
from typing import Any, cast

import aiohttp
import aiormq
from aiohttp import web
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError
from pamqp.commands import Basic

from benchmarks import results as bench_results
from leadline.config import DEFAULT_AMQP_URL
from leadline.schemas import SCHEMA_DIR
from leadline.topology import Topology, declare_for_publishing

ROOT = Path(__file__).resolve().parent.parent
CONCURRENCY = 64
# The load generator: "raw" (a minimal keep-alive client) or "aiohttp" (its client
# session, as before; it costs more CPU per request than either server).
CLIENT = ["raw"]
# PROXY_WORKERS for ours: its default, one process per CPU (README).
RECOMMENDED_WORKERS = "auto"
LEAD = {"name": "Ada Lovelace", "email": "ada@example.com", "company": "Analytical Engines",
        "message": "We would like a demo of the pipeline.", "consent": True}


# --- the obvious implementation ----------------------------------------------------------

async def _baseline_app(amqp_url: str, topology: Topology) -> web.Application:
    schema = json.loads((SCHEMA_DIR / "lead.schema.json").read_text())
    validator = Draft202012Validator(schema, format_checker=FormatChecker())
    connection = await aiormq.connect(amqp_url)
    channel = await connection.channel(publisher_confirms=True)
    await declare_for_publishing(channel, topology)

    async def submit(request: web.Request) -> web.Response:
        data = await request.json()
        try:
            validator.validate(data)
        except ValidationError as exc:
            return web.json_response({"status": "invalid", "message": exc.message}, status=422)
        submission_id = request.headers.get("Idempotency-Key") or str(uuid.uuid4())
        await channel.basic_publish(
            json.dumps(data).encode(), exchange=topology.work_exchange,
            routing_key=topology.routing_key("lead"), mandatory=True,
            properties=Basic.Properties(delivery_mode=2, message_id=submission_id,
                                        content_type="application/json"))
        return web.json_response({"status": "queued", "id": submission_id}, status=202)

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def close(app: web.Application) -> None:
        await connection.close()

    app = web.Application()
    app.router.add_post("/api/forms/{form}", submit)
    app.router.add_get("/readyz", healthz)
    app.on_cleanup.append(close)
    return app


def serve_baseline(port: int) -> None:
    topology = Topology(prefix=os.environ["QUEUE_PREFIX"])
    amqp_url = os.environ.get("AMQP_URL", DEFAULT_AMQP_URL)
    web.run_app(_baseline_app(amqp_url, topology), host="127.0.0.1", port=port,
                access_log=None, print=None)


# --- the HTTP ceiling: aiohttp + uvloop answering 202, no broker ---------------------------

def serve_ceiling(port: int) -> None:
    """What any aiohttp server on this machine can do at best: read the body, answer 202."""
    import uvloop

    async def submit(request: web.Request) -> web.Response:
        body = await request.read()
        return web.Response(status=202, body=b'{"status":"queued","id":"' + str(len(body)).encode() + b'"}',
                            content_type="application/json")

    async def ready(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/api/forms/{form}", submit)
    app.router.add_get("/readyz", ready)
    uvloop.install()
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


# --- a local OTLP/HTTP receiver for the tracing side --------------------------------------

def serve_otlp_sink(port: int) -> None:
    """Decode each export as a collector would and count the spans (`GET /count`)."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
        ExportTraceServiceResponse,
    )

    spans = [0]
    answer = ExportTraceServiceResponse().SerializeToString()

    async def export(request: web.Request) -> web.Response:
        decoded = ExportTraceServiceRequest()
        decoded.ParseFromString(await request.read())
        spans[0] += sum(len(scope.spans) for rs in decoded.resource_spans for scope in rs.scope_spans)
        return web.Response(body=answer, content_type="application/x-protobuf")

    async def count(request: web.Request) -> web.Response:
        return web.json_response({"spans": spans[0]})

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/v1/traces", export)
    app.router.add_get("/count", count)
    app.router.add_get("/readyz", count)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


def _sink_spans(port: int, settle: float = 12.0) -> int:
    """The spans received, once the count stopped growing (the exporter sends every few seconds)."""
    import urllib.request

    def count() -> int:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/count", timeout=5) as answer:
            return int(json.load(answer)["spans"])

    deadline, last = time.monotonic() + settle, -1
    while (now := count()) != last and time.monotonic() < deadline:
        last = now
        time.sleep(2.0)
    return now


# --- the load generator --------------------------------------------------------------------

async def _load(url: str, requests: int, concurrency: int) -> dict[str, Any]:
    body = json.dumps(LEAD).encode()
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    remaining = requests
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one_connection() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                started = time.perf_counter()
                async with session.post(url, data=body, headers={
                        "Content-Type": "application/json"}) as answer:
                    await answer.read()
                latencies.append(time.perf_counter() - started)
                statuses[answer.status] = statuses.get(answer.status, 0) + 1

        started, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(one_connection() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return {"requests": requests, "elapsed_s": elapsed, "statuses": statuses,
            "latencies_ms": [round(t * 1000, 3) for t in latencies], "cpu_s": time.process_time() - cpu}


class _Keepalive(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection posting the same request back to back.

    It reads only the status and Content-Length of each answer (both servers
    send one), so the generator's own CPU stays a small part of the machine's:
    aiohttp's client spent more per request than either server.
    """

    def __init__(self, request: Callable[[], bytes], take: Callable[[], bool], latencies: list[float],
                 statuses: dict[int, int], done: asyncio.Future[None]) -> None:
        self._request, self._take = request, take
        self._latencies, self._statuses, self._done = latencies, statuses, done
        self._buffer = b""
        self._started = 0.0
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self._send()

    def _send(self) -> None:
        assert self._transport is not None
        if not self._take():
            self._transport.close()
            if not self._done.done():
                self._done.set_result(None)
            return
        self._started = time.perf_counter()
        self._transport.write(self._request())

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = self._buffer[:end].lower()
        start = head.find(b"\r\ncontent-length:")
        if start < 0:
            raise RuntimeError("bench: an answer without Content-Length")
        stop = head.find(b"\r\n", start + 2)  # -1: the last header line
        length = int(head[start + 17:stop if stop > 0 else None])
        if len(self._buffer) < end + 4 + length:
            return
        self._latencies.append(time.perf_counter() - self._started)
        status = int(self._buffer[9:12])
        self._statuses[status] = self._statuses.get(status, 0) + 1
        self._buffer = self._buffer[end + 4 + length:]
        self._send()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._done.done():
            self._done.set_exception(exc or RuntimeError("bench: the server closed a connection"))


STAMP_BITS = 4  # made beforehand; checking costs one hash whatever the bits
STAMPED_POOL = 4096  # distinct (Idempotency-Key, stamp) requests, cycled


def _stamped_headers(form: str, count: int) -> list[str]:
    """Header lines of `count` requests, each with its own key and a valid stamp for it."""
    from proxy import stamp

    lines = []
    for _ in range(count):
        key = str(uuid.uuid4())
        lines.append(f"Idempotency-Key: {key}\r\n{stamp.HEADER}: {stamp.mint(form, key, STAMP_BITS)}\r\n")
    return lines


async def _load_raw(url: str, requests: int, concurrency: int, stamped: bool = False) -> dict[str, Any]:
    from itertools import cycle
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    body = json.dumps(LEAD).encode()
    extra = _stamped_headers(parts.path.rsplit("/", 1)[-1], STAMPED_POOL) if stamped else [""]
    pool = cycle([(f"POST {parts.path} HTTP/1.1\r\nHost: {host}:{port}\r\n{lines}"
                   f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
                  for lines in extra])
    request = pool.__next__
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    remaining = requests

    def take() -> bool:
        nonlocal remaining
        if remaining <= 0:
            return False
        remaining -= 1
        return True

    loop = asyncio.get_running_loop()
    started, cpu = time.perf_counter(), time.process_time()
    waiters: list[asyncio.Future[None]] = []
    for _ in range(concurrency):
        done: asyncio.Future[None] = loop.create_future()
        waiters.append(done)
        await loop.create_connection(partial(_Keepalive, request, take, latencies, statuses, done),
                                     host, port)
    await asyncio.gather(*waiters)
    elapsed = time.perf_counter() - started
    return {"requests": requests, "elapsed_s": elapsed, "statuses": statuses,
            "latencies_ms": [round(t * 1000, 3) for t in latencies], "cpu_s": time.process_time() - cpu}


def run_load(url: str, requests: int, concurrency: int, client: str, stamped: bool = False) -> None:
    import uvloop  # the generator should spend as little CPU as it can, for both sides

    if stamped:
        print(json.dumps(uvloop.run(_load_raw(url, requests, concurrency, stamped=True))))
        return
    load = _load_raw if client == "raw" else _load
    print(json.dumps(uvloop.run(load(url, requests, concurrency))))


# --- the orchestration ---------------------------------------------------------------------

def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def _server(args: list[str], env: dict[str, str], port: int) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([sys.executable, *args], cwd=ROOT, env={**os.environ, **env},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_ready(proc, port)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_ready(proc: subprocess.Popen[bytes], port: int, timeout: float = 20.0) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"bench: server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    sys.exit(f"bench: server on port {port} not ready in {timeout:g}s")


def _load_run(port: int, requests: int, stamped: bool = False) -> dict[str, Any]:
    url = f"http://127.0.0.1:{port}/api/forms/lead"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.proxy", "--role", "load", "--url", url,
         "--requests", str(requests), "--concurrency", str(CONCURRENCY), "--client", CLIENT[0],
         *(["--stamped"] if stamped else [])],
        cwd=ROOT, capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _tree(pid: int) -> list[int]:
    """The process and its descendants (a proxy with workers is a parent and children)."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    return [pid, *(p for child in children for p in _tree(int(child)))]


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time the process and its children used so far."""
    total = 0
    for one in _tree(pid):
        try:
            fields = Path(f"/proc/{one}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def _broker_pid() -> int | None:
    """The local RabbitMQ (beam.smp) if this machine runs it and we may read it."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "beam.smp":
                    return int(entry.name)
            except OSError:
                continue
    return None


def _rss_mib(pid: int) -> float:
    total = 0
    for one in _tree(pid):
        for line in Path(f"/proc/{one}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total / 1024 if total else float("nan")


async def _purge_or_delete(amqp_url: str, topologies: list[Topology], delete: bool) -> None:
    connection = await aiormq.connect(amqp_url)
    try:
        channel = await connection.channel()
        for topology in topologies:
            for queue in (topology.work_queue, topology.dead_letter_queue):
                if delete:
                    await channel.queue_delete(queue)
                else:
                    await channel.queue_purge(queue)
            if delete:
                await channel.exchange_delete(topology.work_exchange)
    finally:
        await connection.close()


class Side:
    """One server under test and what its rounds measured."""

    def __init__(self, name: str, args: list[str], topology: Topology | None) -> None:
        self.name, self.args, self.topology = name, args, topology
        self.port = _free_port()
        self.pid = 0
        self.elapsed = self.cpu = self.broker_cpu = self.load_cpu = 0.0
        self.requests = 0
        self.statuses: dict[str, int] = {}
        self.latencies: list[float] = []

    def measure(self, amqp_url: str, requests: int, broker: int | None, stamped: bool = False) -> None:
        cpu = _cpu_seconds(self.pid)
        broker_cpu = _cpu_seconds(broker) if broker else 0.0
        result = _load_run(self.port, requests, stamped)
        # CPU per request does not depend on how fast the broker confirms
        self.cpu += _cpu_seconds(self.pid) - cpu
        self.broker_cpu += (_cpu_seconds(broker) if broker else 0.0) - broker_cpu
        self.load_cpu += result["cpu_s"]  # while it posted, not its start-up
        self.elapsed += result["elapsed_s"]
        self.requests += requests
        for status, count in result["statuses"].items():
            self.statuses[status] = self.statuses.get(status, 0) + count
        self.latencies.extend(result["latencies_ms"])
        if self.topology is not None:
            asyncio.run(_purge_or_delete(amqp_url, [self.topology], delete=False))

    @property
    def accepted_per_s(self) -> float:
        return self.statuses.get("202", 0) / self.elapsed

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]

    @property
    def cpu_us(self) -> float:
        return self.cpu / self.requests * 1e6

    def describe(self) -> str:
        return (f"{self.name:<9} {self.accepted_per_s:>8.0f} leads/s   p50 {self.percentile(0.5):6.2f} ms   "
                f"p99 {self.percentile(0.99):6.2f} ms   server CPU {self.cpu_us:5.0f} us/request   "
                f"statuses {self.statuses}")

    def budget(self) -> str:
        """Where the machine's CPU went per request, and what that leaves any server."""
        broker = self.broker_cpu / self.requests * 1e6
        load = self.load_cpu / self.requests * 1e6
        cores = os.cpu_count() or 1
        ceiling = cores / ((broker + load) / 1e6) if broker + load else float("inf")
        return (f"{self.name:<9} per request: server {self.cpu_us:4.0f} us + broker {broker:4.0f} us + "
                f"load generator {load:4.0f} us; with a server costing nothing, {cores} cores would "
                f"top out near {ceiling:,.0f} leads/s")


def bench(requests: int, soak: int, workers: str = RECOMMENDED_WORKERS, rounds: int = 4,
          tracing: bool = True) -> None:
    """The servers up at once, measured in alternating rounds (A B B A ...), so
    that a change in the machine's background load falls on every side alike."""
    amqp_url = os.environ.get("AMQP_URL", DEFAULT_AMQP_URL)
    tag = uuid.uuid4().hex[:8]
    ours, theirs = Topology(prefix=f"bench-proxy-{tag}"), Topology(prefix=f"bench-base-{tag}")
    traced = Topology(prefix=f"bench-otel-{tag}")
    common = {"AMQP_URL": amqp_url, "RATE_LIMIT": "off", "LOG_LEVEL": os.environ.get("LOG_LEVEL", "INFO")}
    ours_env = {**common, "PROXY_WORKERS": workers}
    sides = [Side("obvious", ["-m", "benchmarks.proxy", "--role", "baseline"], theirs),
             Side("proxy", ["-m", "proxy"], ours),
             Side("ceiling", ["-m", "benchmarks.proxy", "--role", "ceiling"], None)]
    envs = [common, ours_env, common]
    sink_port = _free_port()
    if tracing:
        sides.append(Side("proxy+otel", ["-m", "proxy"], traced))
        envs.append({**ours_env, "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{sink_port}",
                     "OTEL_SERVICE_NAME": "leadline-proxy-bench"})
    broker = _broker_pid()
    print(f"proxy benchmark: {requests} valid leads per side at {CONCURRENCY} connections in "
          f"{rounds} alternating rounds, {os.cpu_count()} CPUs, broker {amqp_url.rsplit('@', 1)[-1]}; "
          f"ours with PROXY_WORKERS={workers}, the obvious implementation in one process; "
          f"load generator: {CLIENT[0]} client"
          + ("; proxy+otel: ours exporting spans over OTLP/HTTP to a local receiver" if tracing else ""))
    try:
        with ExitStack() as stack:
            if tracing:
                stack.enter_context(_server(["-m", "benchmarks.proxy", "--role", "otlp-sink", "--port",
                                             str(sink_port)], {}, sink_port))
            for side, side_env in zip(sides, envs, strict=True):
                env = {**side_env, "QUEUE_PREFIX": side.topology.prefix if side.topology else "none"}
                side.pid = stack.enter_context(_server([*side.args, "--port", str(side.port)], env,
                                                       side.port)).pid
                _load_run(side.port, max(1000, requests // 10))  # warm up (each worker too)
                if side.topology is not None:
                    asyncio.run(_purge_or_delete(amqp_url, [side.topology], delete=False))
            for round_ in range(rounds):
                for side in sides if round_ % 2 == 0 else sides[::-1]:
                    side.measure(amqp_url, requests // rounds, broker)
            exported = _sink_spans(sink_port) if tracing else 0
        base, proxy, ceiling = sides[:3]
        for side in sides:
            print(side.describe())
        ratio = proxy.accepted_per_s / base.accepted_per_s
        of_ceiling = proxy.accepted_per_s / ceiling.accepted_per_s
        print(f"ratio     {ratio:.2f}x the obvious implementation (goal >= 3.0); p99 "
              f"{proxy.percentile(0.99):.2f} ms vs {base.percentile(0.99):.2f} ms; "
              f"{base.cpu_us / proxy.cpu_us:.2f}x less server CPU per request; "
              f"{of_ceiling:.2f}x the bare HTTP ceiling (goal >= 0.7)", flush=True)
        if broker:
            for side in sides:
                print(side.budget())
        rows = [
            bench_results.Row(f"proxy, {CONCURRENCY} connections, PROXY_WORKERS={workers}", "leads/s",
                              proxy.accepted_per_s, base.accepted_per_s, "ratio >= 3.0", ratio >= 3.0),
            bench_results.Row("proxy against the bare HTTP ceiling (aiohttp + uvloop, 202, no broker)",
                              "leads/s", proxy.accepted_per_s, ceiling.accepted_per_s, "ratio >= 0.7",
                              of_ceiling >= 0.7),
            bench_results.Row("proxy, p99 latency", "p99 ms", proxy.percentile(0.99),
                              base.percentile(0.99), "lower than baseline",
                              proxy.percentile(0.99) < base.percentile(0.99), higher_is_better=False),
            bench_results.Row("proxy, p50 latency", "p50 ms", proxy.percentile(0.5),
                              base.percentile(0.5), "", None, higher_is_better=False),
            bench_results.Row("proxy, server CPU per request", "us", proxy.cpu_us, base.cpu_us, "", None,
                              higher_is_better=False),
        ]
        if tracing:
            rows += _tracing_rows(proxy, sides[3], exported)
        if soak:
            rows.append(_soak(amqp_url, ours, {**ours_env, "QUEUE_PREFIX": ours.prefix}, soak))
        bench_results.record("proxy", rows)
    finally:
        asyncio.run(_purge_or_delete(amqp_url, [ours, theirs, traced], delete=True))


def bench_stamps(requests: int, workers: str = RECOMMENDED_WORKERS, rounds: int = 10) -> None:
    """Ours with SPAM_STAMP=flag against ours with SPAM_STAMP=off, the same stamped requests
    to both, in alternating rounds (see the module doc)."""
    import urllib.request

    # Many short rounds: a difference of a few percent drowns in the machine's background
    # load otherwise. At most 5000 requests a round (a load run's JSON report stays small).
    rounds = max(rounds, -(-requests // 5000))
    amqp_url = os.environ.get("AMQP_URL", DEFAULT_AMQP_URL)
    tag = uuid.uuid4().hex[:8]
    plain, checked = Topology(prefix=f"bench-nostamp-{tag}"), Topology(prefix=f"bench-stamp-{tag}")
    common = {"AMQP_URL": amqp_url, "RATE_LIMIT": "off", "PROXY_WORKERS": workers,
              "LOG_LEVEL": os.environ.get("LOG_LEVEL", "INFO")}
    sides = [Side("off", ["-m", "proxy"], plain), Side("flag", ["-m", "proxy"], checked)]
    envs = [{**common, "SPAM_STAMP": "off"},
            {**common, "SPAM_STAMP": "flag", "SPAM_STAMP_BITS": str(STAMP_BITS)}]
    broker = _broker_pid()
    print(f"stamp benchmark: {requests} valid leads per side, each with its own Idempotency-Key and a "
          f"valid stamp made beforehand ({STAMP_BITS} bits; checking costs one SHA-256 whatever the "
          f"bits), at {CONCURRENCY} connections in {rounds} alternating rounds, {os.cpu_count()} CPUs, "
          f"PROXY_WORKERS={workers}; SPAM_STAMP=flag against SPAM_STAMP=off", flush=True)
    try:
        with ExitStack() as stack:
            for side, side_env in zip(sides, envs, strict=True):
                assert side.topology is not None
                side.pid = stack.enter_context(_server([*side.args, "--port", str(side.port)],
                                                       {**side_env, "QUEUE_PREFIX": side.topology.prefix},
                                                       side.port)).pid
                _load_run(side.port, min(5000, max(1000, requests // 10)), stamped=True)  # warm up
                asyncio.run(_purge_or_delete(amqp_url, [side.topology], delete=False))
            for round_ in range(rounds):
                for side in sides if round_ % 2 == 0 else sides[::-1]:
                    side.measure(amqp_url, requests // rounds, broker, stamped=True)
            scraped = []
            for side in sides:
                with urllib.request.urlopen(f"http://127.0.0.1:{side.port}/metrics", timeout=5) as answer:
                    scraped.append(answer.read().decode())
        verdicts = {line.split('"')[1]: float(line.rsplit(" ", 1)[1]) for line in scraped[1].splitlines()
                    if line.startswith("leadline_proxy_stamps_total{")}
        off, flag = sides
        for side, text in zip(sides, scraped, strict=True):
            print(side.describe(), f"  leads per broker message {_mean_batch(text):.1f}")
        if broker:
            for side in sides:
                print(side.budget())
        ratio = flag.accepted_per_s / off.accepted_per_s
        print(f"stamps    {ratio:.3f}x the throughput with every stamp checked (goal >= 0.95: cost at most "
              f"5%); server CPU {flag.cpu_us:.0f} vs {off.cpu_us:.0f} us/request "
              f"({flag.cpu_us - off.cpu_us:+.0f}); p99 {flag.percentile(0.99):.2f} vs "
              f"{off.percentile(0.99):.2f} ms; verdicts counted by the flag side: {verdicts}", flush=True)
        bench_results.record("stamps", [
            bench_results.Row("proxy, SPAM_STAMP=flag (every request stamped) vs off", "leads/s",
                              flag.accepted_per_s, off.accepted_per_s, "ratio >= 0.95", ratio >= 0.95),
            bench_results.Row("proxy, stamps checked vs off, server CPU per request", "us", flag.cpu_us,
                              off.cpu_us, "", None, higher_is_better=False),
            bench_results.Row("proxy, stamps checked vs off, p99 latency", "p99 ms", flag.percentile(0.99),
                              off.percentile(0.99), "", None, higher_is_better=False),
        ])
    finally:
        asyncio.run(_purge_or_delete(amqp_url, [plain, checked], delete=True))


def _mean_batch(metrics: str) -> float:
    """Leads per confirmed broker message, from a /metrics scrape (group commit's batch sizes)."""
    found = {line.split(" ")[0]: float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
             if line.startswith(("leadline_proxy_batch_size_sum", "leadline_proxy_batch_size_count"))}
    count = found.get("leadline_proxy_batch_size_count", 0.0)
    return found.get("leadline_proxy_batch_size_sum", 0.0) / count if count else float("nan")


def _tracing_rows(off: Side, on: Side, exported: int) -> list[bench_results.Row]:
    """Tracing on against off, in the same rounds; the spans the receiver got (a SERVER
    span per request and a PRODUCER span per broker message, which group commit shares
    among the leads it carries; the warm-up's too, once the exporter caught up)."""
    ratio = on.accepted_per_s / off.accepted_per_s
    warm = max(1000, on.requests // 10)
    print(f"tracing   {ratio:.2f}x throughput with tracing on; p50 {on.percentile(0.5):.2f} ms vs "
          f"{off.percentile(0.5):.2f} ms, p99 {on.percentile(0.99):.2f} ms vs {off.percentile(0.99):.2f} ms; "
          f"server CPU {on.cpu_us:.0f} vs {off.cpu_us:.0f} us/request (+{on.cpu_us - off.cpu_us:.0f}); "
          f"the receiver got {exported:,} spans for {on.requests + warm:,} requests (a SERVER span "
          f"each, a PRODUCER span per message: {exported / (on.requests + warm):.2f} a request)", flush=True)
    return [
        bench_results.Row("proxy, tracing on (OTLP/HTTP, local receiver) vs off", "leads/s",
                          on.accepted_per_s, off.accepted_per_s, "", None),
        bench_results.Row("proxy, tracing on vs off, p99 latency", "p99 ms", on.percentile(0.99),
                          off.percentile(0.99), "", None, higher_is_better=False),
        bench_results.Row("proxy, tracing on vs off, server CPU per request", "us", on.cpu_us, off.cpu_us,
                          "", None, higher_is_better=False),
    ]


def _soak(amqp_url: str, topology: Topology, env: dict[str, str], total: int) -> bench_results.Row:
    port = _free_port()
    step = max(1000, total // 10)
    with _server(["-m", "proxy", "--port", str(port)], env, port) as proc:
        _load_run(port, min(step, 5000))
        samples = [(0, _rss_mib(proc.pid))]
        done = 0
        accepted = 0
        while done < total:
            result = _load_run(port, min(step, total - done))
            done += result["requests"]
            accepted += result["statuses"].get("202", 0)
            asyncio.run(_purge_or_delete(amqp_url, [topology], delete=False))
            samples.append((done, _rss_mib(proc.pid)))
    middle = min(samples, key=lambda s: abs(s[0] - total / 2))
    start, end = samples[0][1], samples[-1][1]
    print(f"memory    {total} requests ({accepted} accepted), PROXY_WORKERS={env['PROXY_WORKERS']}, "
          f"all processes: RSS start {start:.1f} MiB, middle ({middle[0]}) {middle[1]:.1f} MiB, "
          f"end {end:.1f} MiB")
    growth = end - start
    return bench_results.Row(f"proxy memory over {total:,} requests", "RSS growth MiB", growth, None,
                             "flat: < 10% of the start", growth < 0.1 * start, higher_is_better=False)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.proxy", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=20_000, help="per side (default 20000)")
    parser.add_argument("--soak", type=int, default=100_000,
                        help="requests of the memory run, 0 to skip (default 100000)")
    parser.add_argument("--quick", action="store_true", help="5000 per side, a 20000 memory run")
    parser.add_argument("--workers", default=RECOMMENDED_WORKERS,
                        help=f"PROXY_WORKERS for ours (default {RECOMMENDED_WORKERS})")
    parser.add_argument("--no-tracing", action="store_true",
                        help="leave out the side with OpenTelemetry on (to a local OTLP receiver)")
    parser.add_argument("--stamps", action="store_true",
                        help="instead: SPAM_STAMP=flag with every request stamped against SPAM_STAMP=off")
    parser.add_argument("--stamped", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--role", choices=["bench", "baseline", "ceiling", "load", "otlp-sink"],
                        default="bench",
                        help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--url", default="", help=argparse.SUPPRESS)
    parser.add_argument("--concurrency", type=int, default=CONCURRENCY, help=argparse.SUPPRESS)
    parser.add_argument("--client", choices=["raw", "aiohttp"], default="raw",
                        help="load generator: a minimal keep-alive HTTP client (default) or aiohttp's")
    args = parser.parse_args()
    CLIENT[0] = args.client
    if args.role == "baseline":
        serve_baseline(args.port)
    elif args.role == "ceiling":
        serve_ceiling(args.port)
    elif args.role == "otlp-sink":
        serve_otlp_sink(args.port)
    elif args.role == "load":
        run_load(args.url, args.requests, args.concurrency, args.client, stamped=args.stamped)
    elif args.stamps:
        bench_stamps(5000 if args.quick else args.requests, args.workers)
    elif args.quick:
        bench(5000, 20_000, args.workers, tracing=not args.no_tracing)
    else:
        bench(args.requests, args.soak, args.workers, tracing=not args.no_tracing)


if __name__ == "__main__":
    main()
