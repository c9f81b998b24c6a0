"""`./dev status`: queue depths, consumers and the accounting, at a glance.

    accepted (proxy) = synced (worker) + retrying (work + retry tiers) + dead-lettered

The counters come from the proxy's and the worker's /metrics and start at
zero when those processes start; the depths come from the broker. The
balance holds for a pipeline whose processes ran since its queues were empty.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence

from leadline import config
from leadline.accounting import account, metric_sum
from leadline.broker import connect_once, redact_url
from leadline.errors import ConfigError, LeadlineError
from leadline.queuestats import QueueStat, read_queue_stats
from leadline.topology import DEFAULT_PREFIX, DEFAULT_RETRY_DELAYS, Topology

__all__ = ["fetch", "main", "metric_sum", "render"]


def fetch(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:  # noqa: S310 - operator-given URL
            return str(answer.read().decode())
    except (urllib.error.URLError, OSError, ValueError):
        return None


def render(stats: Sequence[QueueStat], proxy_metrics: str | None, worker_metrics: str | None) -> str:
    lines = [f"{'queue':<34} {'role':<6} {'messages':>9} {'consumers':>9}"]
    for s in stats:
        messages = "absent" if s.messages is None else str(s.messages)
        consumers = "-" if s.consumers is None else str(s.consumers)
        lines.append(f"{s.name:<34} {s.role:<6} {messages:>9} {consumers:>9}")
    books = account(stats, proxy_metrics, worker_metrics)
    dead = books.dead
    lines.append("")
    in_messages = f" (in {books.retrying - books.batched} messages)" if books.batched else ""
    lines.append(f"accepted {_n(books.accepted)} = synced {_n(books.synced)} + queued or retrying "
                 f"{books.retrying}{in_messages} + dead-lettered {dead}")
    gap = books.gap
    if gap is None:
        lines.append("  (proxy or worker metrics unreachable: the accounting needs both)")
    else:
        lines.append("  balanced" if gap == 0 else
                     f"  off by {gap:+.0f} (counters restart with their process; dead letters "
                     "replayed or purged, and leads from earlier runs, count on one side only)")
    if books.paused:
        lines.append(f"CRM PAUSED ({', '.join(books.paused)}): the worker waits out a CRM outage; leads "
                     "wait in the work queue and spend no attempts; it probes every CRM_PROBE_INTERVAL")
    if books.consumers == 0 and not books.paused:
        lines.append("WARNING: no consumer on the work queue: is a worker running?")
    if dead:
        lines.append(f"NOTE: {dead} dead letter(s): `python -m worker dlq list` to inspect")
    return "\n".join(lines)


def _n(value: float | None) -> str:
    return "?" if value is None else f"{value:.0f}"


async def _read(amqp_url: str, topology: Topology) -> tuple[str, list[QueueStat]]:
    """The node that answered (`AMQP_URL` may list a cluster's) and the queues."""
    connection = await connect_once(amqp_url, name="leadline-status")
    try:
        return redact_url(str(connection.url)), await read_queue_stats(connection, topology)
    finally:
        await connection.close()


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    env = os.environ if environ is None else environ
    parser = argparse.ArgumentParser(prog="./dev status", description=__doc__.split("\n\n")[0])
    parser.add_argument("--proxy-metrics", default=env.get("PROXY_METRICS_URL", "http://127.0.0.1:8080/metrics"))
    parser.add_argument("--worker-metrics",
                        default=env.get("WORKER_METRICS_URL", "http://127.0.0.1:9100/metrics"))
    args = parser.parse_args(argv)
    try:
        amqp_url = config.parse_amqp_url("AMQP_URL", config.get(env, "AMQP_URL", config.DEFAULT_AMQP_URL))
        prefix = config.parse_prefix("QUEUE_PREFIX", config.get(env, "QUEUE_PREFIX", DEFAULT_PREFIX))
        delays_text = env.get("RETRY_DELAYS", "")
        delays = config.parse_durations("RETRY_DELAYS", delays_text) if delays_text.strip() \
            else DEFAULT_RETRY_DELAYS
        node, stats = asyncio.run(_read(amqp_url, Topology(prefix=prefix, retry_delays=delays)))
    except ConfigError as exc:
        print(f"status: {exc}", file=sys.stderr)
        return 2
    except LeadlineError as exc:
        print(f"status: {exc}", file=sys.stderr)
        return 1
    nodes = len(config.amqp_urls(amqp_url))
    print(f"broker {node}" + (f" (one of {nodes} nodes in AMQP_URL)" if nodes > 1 else "")
          + f"  prefix {prefix}")
    print(render(stats, fetch(args.proxy_metrics), fetch(args.worker_metrics)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
