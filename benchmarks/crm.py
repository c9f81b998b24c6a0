"""`./dev bench crm`: queued leads into the HubSpot fake under a binding rate limit, batched vs one per call.

    python -m benchmarks.crm [--leads 10000] [--limit 20/10s] [--latency-ms 150] [--baseline-seconds 30]

The fake (a separate process) enforces HubSpot's rolling window at arrival,
answering 429 over it; the worker is told the same `CRM_RATE_LIMIT`. The
fastest pace a compliant client can reach is the first window's calls at
once, then the limit in every further window: N leads in batches of B at C
calls per W seconds need ceil(N/B) calls, the last of which can start at
(ceil(ceil(N/B)/C) - 1) * W, so the ideal drain takes that plus one call's
latency. Goal: at least 0.8 of that pace, with under 1% of calls answered
429. The baseline, in the same run, is the original design (one call per
lead, CRM_BATCH_SIZE=1) at the same limit, drained for a fixed time.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import os
import sys
import time
import uuid
from dataclasses import dataclass
from typing import IO, Any

import aiohttp
import uvloop

from benchmarks import results as bench_results
from benchmarks.worker import _log_dir, fill
from devtools import rabbit
from devtools.net import free_port
from devtools.procs import Service
from leadline import config, logs
from leadline.config import Rate
from leadline.schemas import load_schemas
from leadline.topology import Topology
from worker.consumer import Worker
from worker.crm.settings import HubSpotSettings, build_connector
from worker.settings import Settings

TOKEN = "bench-token"  # noqa: S105 - the fake's credential


@dataclass(frozen=True, slots=True)
class Drain:
    leads: int
    seconds: float
    requests: int
    refused: int

    @property
    def pace(self) -> float:
        return self.leads / self.seconds


def ideal_seconds(leads: int, batch: int, rate: Rate, latency: float) -> float:
    calls = math.ceil(leads / batch)
    windows = math.ceil(calls / rate.count)
    return (windows - 1) * rate.per_seconds + latency


async def stats(crm: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session, session.get(f"{crm}/_stats") as answer:
        data: dict[str, Any] = await answer.json()
        return data


async def reset(crm: str) -> None:
    async with aiohttp.ClientSession() as session, session.post(f"{crm}/_reset") as answer:
        answer.raise_for_status()


async def set_up(crm: str) -> None:
    """`crm setup`: the contact property the mapping writes."""
    connector = build_connector(crm="hubspot", vendor=HubSpotSettings(TOKEN, crm), crm_url="", timeout=10,
                                rate="off", max_connections=2, forms=load_schemas())
    try:
        findings = await connector.setup()
    finally:
        await connector.close()
    assert all(f.ok for f in findings), findings


async def drain(url: str, crm: str, leads: int, *, batch: int, rate: Rate, seconds: float | None) -> Drain:
    """Fill a fresh queue, start a worker, wait until all are in the CRM (or `seconds` pass)."""
    topology = Topology(prefix=f"benchcrm{uuid.uuid4().hex[:8]}", retry_delays=(30.0,))
    await fill(url, topology, leads)
    await reset(crm)
    settings = Settings(amqp_url=url, queue_prefix=topology.prefix, crm="hubspot",
                        vendor=HubSpotSettings(TOKEN, crm), crm_rate_limit=rate, crm_batch_size=batch,
                        crm_timeout=30, retry_delays=topology.retry_delays, metrics_port=0,
                        crm_batch_linger=0.1)
    worker = Worker(settings)
    started = time.perf_counter()
    await worker.start()
    try:
        deadline = started + seconds if seconds is not None else math.inf
        while True:
            done = int(worker.metrics.synced._value.get())
            if done >= leads or time.perf_counter() >= deadline:
                break
            await asyncio.sleep(0.02)
        elapsed = time.perf_counter() - started
    finally:
        await worker.stop()
    seen = await stats(crm)
    return Drain(int(seen["stored"]["contacts"]), elapsed, int(seen["requests"]), int(seen["rate_limited"]))


async def main(args: argparse.Namespace, sink: IO[str]) -> int:
    logs.configure("WARNING")
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(sink)
    rate = config.parse_rate("--limit", args.limit)
    assert rate is not None, "a benchmark of a rate limit needs one"
    vhost = rabbit.create_vhost()
    url = rabbit.url_for_vhost(rabbit.base_url(), vhost)
    port = free_port()
    fake = Service("bench-hubspot", ["-m", "worker.fakecrm", "--vendor", "hubspot", "--port", str(port),
                                     "--token", TOKEN, "--rate-limit", args.limit,
                                     "--latency-ms", str(args.latency_ms)], {}, _log_dir())
    fake.start()
    crm = f"http://127.0.0.1:{port}"
    try:
        await asyncio.to_thread(fake.wait_http, f"{crm}/_stats")
        await set_up(crm)
        latency = args.latency_ms / 1000
        ideal = ideal_seconds(args.leads, 100, rate, latency)
        print(f"crm drain into the HubSpot fake: {args.leads:,} leads, limit {args.limit} (enforced by the "
              f"fake at arrival), {args.latency_ms:g} ms per call", flush=True)
        batched = await drain(url, crm, args.leads, batch=100, rate=rate, seconds=None)
        ideal_pace = args.leads / ideal
        share = batched.pace / ideal_pace
        refused = batched.refused / max(1, batched.requests)
        print(f"batched (100 per call): {batched.leads:,} leads in {batched.seconds:.1f} s = "
              f"{batched.pace:,.0f} leads/s; {batched.requests} calls, {batched.refused} answered 429 "
              f"({refused:.1%})", flush=True)
        print(f"fastest compliant pace: {ideal_pace:,.0f} leads/s ({ideal:.1f} s); share {share:.2f} "
              f"(goal >= 0.80: {'ok' if share >= 0.8 else 'MISSED'}; 429s < 1%: "
              f"{'ok' if refused < 0.01 else 'MISSED'})", flush=True)
        single = await drain(url, crm, args.leads, batch=1, rate=rate, seconds=args.baseline_seconds)
        print(f"one call per lead (the original design): {single.leads:,} leads in {single.seconds:.1f} s = "
              f"{single.pace:,.1f} leads/s ({rate.count / rate.per_seconds:g}/s once past the first window); "
              f"{single.refused} answered 429", flush=True)
        print(f"batched / one per call: {batched.pace / single.pace:,.0f}x", flush=True)
        bench_results.record("crm", [
            bench_results.Row(f"CRM drain, HubSpot fake at {args.limit}, batches of 100", "leads/s",
                              batched.pace, single.pace, ">= 0.8 of the fastest compliant pace "
                              f"({ideal_pace:,.0f}/s): {share:.2f}", share >= 0.8),
            bench_results.Row("CRM calls answered 429 (batched run)", "% of calls", 100 * refused, None,
                              "< 1%", refused < 0.01, higher_is_better=False),
        ])
        return 0 if share >= 0.8 and refused < 0.01 else 1
    finally:
        fake.stop()
        rabbit.delete_vhost(vhost)


def cli() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.crm", description=__doc__)
    parser.add_argument("--leads", type=int, default=10_000)
    parser.add_argument("--limit", default="20/10s", help="the vendor's rate limit, enforced by the fake")
    parser.add_argument("--latency-ms", type=float, default=150.0, help="the fake's delay per call")
    parser.add_argument("--baseline-seconds", type=float, default=30.0,
                        help="how long the one-call-per-lead baseline drains")
    args = parser.parse_args()
    with open(os.devnull, "w") as sink:
        code = uvloop.run(main(args, sink))
    sys.exit(code)


if __name__ == "__main__":
    cli()
