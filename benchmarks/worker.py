"""Worker drain rate, side by side with a bare consume -> POST -> ack loop.

    python -m benchmarks.worker [--leads 5000] [--repeat 3] [--prefetch 64]

Each round fills a fresh work queue with N leads, then drains it into the
fake CRM (a separate process) once with the bare loop and once with the real
worker (schema check, classification, metrics, JSON logs), in alternating
order; medians are printed. Then the same with 50 ms of CRM latency, against
the goal 0.8 x prefetch / latency. Runs in a vhost of its own, deleted after.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Coroutine
from pathlib import Path
from tempfile import gettempdir
from typing import IO, Any

import aiohttp
import aiormq
import orjson
import uvloop
from aiormq.abc import DeliveredMessage
from pamqp.commands import Basic

from benchmarks import results as bench_results
from devtools import rabbit
from devtools.net import free_port
from devtools.procs import Service
from leadline import batch as envelope
from leadline import logs
from leadline.message import lead_properties
from leadline.topology import Topology, declare_all
from worker.consumer import Worker
from worker.settings import Settings

Drain = Callable[[str, Topology, str, int, int], Coroutine[Any, Any, float]]


async def fill(url: str, topology: Topology, count: int, batch: int = 1) -> None:
    """`count` leads in the work queue: one a message, or `batch` a message (group commit's envelope)."""
    connection = await aiormq.connect(url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        await declare_all(channel, topology)
        body_base = {"name": "Ada Lovelace", "company": "Analytical Engines", "consent": True}
        if batch > 1:
            for start in range(0, count, batch):
                entries = [envelope.Entry(str(uuid.uuid4()), "lead",
                                          orjson.dumps({**body_base, "email": f"ada{i}@example.com"}),
                                          traceparent=f"00-{uuid.uuid4().hex}-{'1' * 16}-01")
                           for i in range(start, min(start + batch, count))]
                confirm = await channel.basic_publish(
                    envelope.encode(entries), exchange=topology.work_exchange,
                    routing_key=envelope.ROUTING_KEY,
                    mandatory=True, properties=envelope.properties(len(entries)))
                assert isinstance(confirm, Basic.Ack)
            return
        for start in range(0, count, 500):
            confirms = await asyncio.gather(*(
                channel.basic_publish(
                    orjson.dumps({**body_base, "email": f"ada{i}@example.com"}),
                    exchange=topology.work_exchange, routing_key=topology.routing_key("lead"),
                    mandatory=True,
                    properties=lead_properties(submission_id=str(uuid.uuid4()), form="lead",
                                               traceparent=f"00-{uuid.uuid4().hex}-{'1' * 16}-01"))
                for i in range(start, min(start + 500, count))))
            assert all(isinstance(c, Basic.Ack) for c in confirms)
    finally:
        await connection.close()


async def drain_bare(url: str, topology: Topology, crm_url: str, count: int, prefetch: int) -> float:
    """The floor: consume, POST with the Idempotency-Key, ack. No checks, no story."""
    done = asyncio.Event()
    acked = 0
    connection = await aiormq.connect(url)
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=prefetch))
    try:
        channel = await connection.channel()
        await channel.basic_qos(prefetch_count=prefetch)

        async def post(key: str, fields: bytes) -> None:
            payload = orjson.dumps({"id": key, "lead": orjson.loads(fields)})
            async with session.post(crm_url, data=payload, headers={
                    "Idempotency-Key": key, "Content-Type": "application/json"}) as answer:
                await answer.read()

        async def on_message(message: DeliveredMessage) -> None:
            nonlocal acked
            if envelope.is_batch(message.header.properties):
                entries = envelope.decode(message.body)
                await asyncio.gather(*(post(e.id, e.fields) for e in entries))
                leads = len(entries)
            else:
                await post(message.header.properties.message_id or "", message.body)
                leads = 1
            assert message.delivery_tag is not None
            await channel.basic_ack(message.delivery_tag)
            acked += leads
            if acked == count:
                done.set()

        started = time.perf_counter()
        await channel.basic_consume(topology.work_queue, on_message)
        await done.wait()
        return time.perf_counter() - started
    finally:
        await session.close()
        await connection.close()


async def drain_worker(url: str, topology: Topology, crm_url: str, count: int, prefetch: int) -> float:
    settings = Settings(amqp_url=url, queue_prefix=topology.prefix, crm_url=crm_url, crm_timeout=10,
                        retry_delays=topology.retry_delays, prefetch=prefetch, metrics_port=0)
    worker = Worker(settings)
    started = time.perf_counter()
    await worker.start()
    try:
        while worker.metrics.synced._value.get() < count:  # noqa: ASYNC110 - a counter, not an event
            await asyncio.sleep(0.005)
        return time.perf_counter() - started
    finally:
        await worker.stop()


async def crm_reset(crm: str, **config: Any) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{crm}/_reset") as answer:
            answer.raise_for_status()
        async with session.post(f"{crm}/_config", json=config) as answer:
            answer.raise_for_status()


async def measure(url: str, crm: str, drain: Drain, count: int, prefetch: int, latency_ms: float,
                  batch: int = 1) -> float:
    topology = Topology(prefix=f"bench{uuid.uuid4().hex[:8]}", retry_delays=(1.0,))
    await fill(url, topology, count, batch)
    await crm_reset(crm, latency_ms=latency_ms)
    seconds = await drain(url, topology, f"{crm}/leads", count, prefetch)
    async with aiohttp.ClientSession() as session, session.get(f"{crm}/_stats") as answer:
        stats = await answer.json()
    assert stats["created"] == count, f"the CRM has {stats['created']} of {count} leads"
    return count / seconds


async def compare(url: str, crm: str, count: int, repeat: int, prefetch: int, latency_ms: float,
                  batch: int = 1) -> tuple[float, float]:
    bare: list[float] = []
    ours: list[float] = []
    for round_ in range(repeat):
        # Alternate who goes first, so a warming broker favours neither side.
        order = [(bare, drain_bare), (ours, drain_worker)]
        for results, drain in order if round_ % 2 == 0 else order[::-1]:
            results.append(await measure(url, crm, drain, count, prefetch, latency_ms, batch))
        print(f"  round {round_ + 1}: bare {bare[-1]:,.0f}/s  worker {ours[-1]:,.0f}/s", flush=True)
    return statistics.median(bare), statistics.median(ours)


async def main(args: argparse.Namespace, sink: IO[str]) -> int:
    # Real JSON logging, as in production, written where it costs the same but shows nothing.
    logs.configure("INFO")
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(sink)
    vhost = rabbit.create_vhost()
    url = rabbit.url_for_vhost(rabbit.base_url(), vhost)
    port = free_port()
    crm_service = Service("bench-fakecrm", ["-m", "worker.fakecrm", "--port", str(port)], {},
                          _log_dir())
    crm_service.start()
    crm = f"http://127.0.0.1:{port}"
    try:
        await asyncio.to_thread(crm_service.wait_http, f"{crm}/_stats")
        print(f"worker drain, {args.leads:,} leads, prefetch {args.prefetch}, instant CRM "
              f"(medians of {args.repeat})", flush=True)
        bare, ours = await compare(url, crm, args.leads, args.repeat, args.prefetch, 0)
        ratio = ours / bare
        print(f"bare loop {bare:,.0f} leads/s | worker {ours:,.0f} leads/s | ratio {ratio:.2f} "
              f"(goal >= 0.80: {'ok' if ratio >= 0.8 else 'MISSED'})", flush=True)

        latency = 50.0
        target = 0.8 * args.prefetch / (latency / 1000)
        count = args.latency_leads
        print(f"\nworker drain, {count:,} leads, prefetch {args.prefetch}, CRM latency {latency:g} ms",
              flush=True)
        bare50, ours50 = await compare(url, crm, count, args.repeat, args.prefetch, latency)
        print(f"bare loop {bare50:,.0f} leads/s | worker {ours50:,.0f} leads/s | target {target:,.0f}/s "
              f"(0.8 x prefetch / latency: {'ok' if ours50 >= target else 'MISSED'})", flush=True)
        batch = 32
        print(f"\nworker drain, {args.leads:,} leads in batch messages of {batch} (group commit), prefetch "
              f"{args.prefetch}, instant CRM", flush=True)
        bare_b, ours_b = await compare(url, crm, args.leads, args.repeat, args.prefetch, 0, batch)
        ratio_b = ours_b / bare_b
        print(f"bare loop {bare_b:,.0f} leads/s | worker {ours_b:,.0f} leads/s | ratio {ratio_b:.2f} "
              f"(goal >= 0.80: {'ok' if ratio_b >= 0.8 else 'MISSED'})", flush=True)
        bench_results.record("worker", [
            bench_results.Row(f"worker drain, batch messages of {batch}, instant CRM", "leads/s", ours_b,
                              bare_b, "ratio >= 0.80 vs bare loop", ratio_b >= 0.8),
            bench_results.Row(f"worker drain, instant CRM, prefetch {args.prefetch}", "leads/s", ours, bare,
                        "ratio >= 0.80 vs bare loop", ratio >= 0.8),
            bench_results.Row("worker drain, CRM latency 50 ms", "leads/s", ours50, bare50,
                        f">= {target:,.0f}/s (0.8 x prefetch / latency)", ours50 >= target),
        ])
        return 0
    finally:
        crm_service.stop()
        rabbit.delete_vhost(vhost)


def _log_dir() -> Path:
    return Path(gettempdir())


def cli() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.worker", description=__doc__)
    parser.add_argument("--leads", type=int, default=5000)
    parser.add_argument("--latency-leads", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=5, help="rounds per side; medians are quoted")
    parser.add_argument("--prefetch", type=int, default=64)
    args = parser.parse_args()
    with open(os.devnull, "w") as sink:
        code = uvloop.run(main(args, sink))
    sys.exit(code)


if __name__ == "__main__":
    cli()
