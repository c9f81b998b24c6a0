"""`./dev soak`: the chaos soak. N leads through the real proxy, broker, worker
and fake CRM while things break, then the accounting.

Chaos, by progress of accepted leads: the worker is SIGKILLed at 20% and 70%
(and restarted), the broker closes every connection at 35%, the proxy
restarts at 50%. The fake CRM answers 503 to 30% of calls and stores then
times out on 5%. About 2% of the leads use the CRM's reject domain: those
must end in the dead-letter queue. The client retries like the page's
outbox: the same Idempotency-Key until a 202, with backoff.

`--cluster` runs it on a three-node RabbitMQ cluster of its own
(devtools/cluster.py; the node on 5672 is not touched), with every
`AMQP_URL` listing the three nodes, and kills nodes instead of closing
connections: at 35% the node the proxy is on (kill -9), at 60% the node
leading the work queue (kill -9), each started again at once.

Exit status 0 only when lost = 0, duplicate CRM records = 0 and every lead
is where it belongs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from devtools import rabbit
from devtools.cluster import Cluster, ClusterError, Node
from devtools.net import free_port
from devtools.procs import Service
from leadline.topology import Topology

ROOT = Path(__file__).resolve().parent.parent
REJECT_DOMAIN = "reject.test"


@dataclass
class Tally:
    accepted: set[str] = field(default_factory=set)
    rejected_domain: set[str] = field(default_factory=set)
    answers: Counter[int] = field(default_factory=Counter)
    network_errors: int = 0
    chaos: list[str] = field(default_factory=list)


async def wait_http(session: aiohttp.ClientSession, url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
            async with session.get(url, timeout=aiohttp.ClientTimeout(total=1)) as answer:
                if answer.status == 200:
                    return
        await asyncio.sleep(0.1)
    raise TimeoutError(f"{url} was not ready after {timeout:.0f}s")


async def submit(session: aiohttp.ClientSession, url: str, i: int, tally: Tally) -> None:
    """One visitor's outbox entry: retried with the same key until the proxy takes it."""
    key = str(uuid.uuid4())
    domain = REJECT_DOMAIN if i % 50 == 7 else "example.com"
    lead = {"name": f"Soak {i}", "email": f"soak{i}@{domain}", "consent": True, "company": "Soak Ltd"}
    body = json.dumps(lead).encode()
    delay = 0.05
    while True:
        try:
            async with session.post(url, data=body, headers={
                "Content-Type": "application/json", "Idempotency-Key": key,
                "Origin": "http://127.0.0.1:8000"}, timeout=aiohttp.ClientTimeout(total=10)) as answer:
                tally.answers[answer.status] += 1
                if answer.status == 202:
                    tally.accepted.add(key)
                    if domain == REJECT_DOMAIN:
                        tally.rejected_domain.add(key)
                    return
                if answer.status < 500 and answer.status != 429:
                    raise RuntimeError(f"lead {i}: the proxy refused it for good with {answer.status}")
        except (aiohttp.ClientError, OSError, TimeoutError):
            tally.network_errors += 1
        await asyncio.sleep(delay * random.uniform(0.5, 1.5))
        delay = min(delay * 2, 2.0)


def start_cluster() -> Cluster | None:
    cluster = Cluster()
    print("soak: starting a three-node RabbitMQ cluster ...", file=sys.stderr, flush=True)
    try:
        cluster.start()
    except ClusterError as exc:
        print(f"soak: the cluster did not start: {exc}", file=sys.stderr)
        return None
    print(f"soak: cluster up in {cluster.boot_seconds:.1f}s: "
          + ", ".join(str(n) for n in cluster.nodes), file=sys.stderr, flush=True)
    return cluster


HUBSPOT_TOKEN = "soak-token"  # noqa: S105 - the fake's credential


async def crm_records(session: aiohttp.ClientSession, crm_url: str, crm: str) -> tuple[Counter[str], int]:
    """(records per submission id, duplicate records) as the CRM holds them.

    The webhook fake keeps a record per Idempotency-Key; HubSpot one contact per
    e-mail (each soak lead has its own), which carries the submission id.
    """
    if crm == "webhook":
        async with session.get(f"{crm_url}/_leads") as answer:
            ids = Counter(str(rec["id"]) for rec in await answer.json())
        return ids, sum(n - 1 for n in ids.values() if n > 1)
    async with session.get(f"{crm_url}/_state") as answer:
        contacts = (await answer.json())["contacts"]
    ids = Counter(str(c["properties"].get("leadline_submission_id", "")) for c in contacts)
    emails = Counter(str(c["properties"].get("email", "")).lower() for c in contacts)
    return ids, sum(n - 1 for n in ids.values() if n > 1) + sum(n - 1 for n in emails.values() if n > 1)


def crm_set_up(crm: str, env: dict[str, str]) -> None:
    """`crm setup` against a fake that fails 30% of calls: tried until it goes through."""
    if crm == "webhook":
        return
    for _ in range(20):
        done = subprocess.run([sys.executable, "-m", "worker", "crm", "setup"], cwd=ROOT,
                              env={**os.environ, **env}, capture_output=True, text=True, timeout=60,
                              check=False)
        if done.returncode == 0:
            return
    raise RuntimeError(f"crm setup failed: {done.stdout}{done.stderr}")


async def run(leads: int, concurrency: int, rate: float, quiet_timeout: float,
              cluster: Cluster | None = None, crm_kind: str = "webhook") -> int:
    started = time.monotonic()
    if cluster is None and shutil.which("rabbitmqctl") is None:
        print("soak: needs rabbitmqctl (the broker's own CLI) to make a vhost and drop connections",
              file=sys.stderr)
        return 2
    vhost = rabbit.create_vhost() if cluster is None else "/"
    amqp_url = rabbit.url_for_vhost(rabbit.base_url(), vhost) if cluster is None else cluster.amqp_url()
    log_dir = Path(tempfile.mkdtemp(prefix="leadline-soak-"))
    ports = {"proxy": free_port(), "crm": free_port()}
    common = {"AMQP_URL": amqp_url, "QUEUE_PREFIX": "soak", "LOG_LEVEL": "WARNING"}
    vendor = [] if crm_kind == "webhook" else ["--vendor", crm_kind, "--token", HUBSPOT_TOKEN]
    crm = Service("crm", ["-m", "worker.fakecrm", "--port", str(ports["crm"]), "--fail-rate", "0.3",
                          "--timeout-rate", "0.05", *vendor], {}, log_dir)
    crm_env = ({"CRM_URL": f"http://127.0.0.1:{ports['crm']}/leads"} if crm_kind == "webhook" else
               {"CRM": crm_kind, "HUBSPOT_API_URL": f"http://127.0.0.1:{ports['crm']}",
                "HUBSPOT_TOKEN": HUBSPOT_TOKEN, "CRM_BATCH_LINGER": "50ms"})
    worker_env = {**common, **crm_env, "CRM_TIMEOUT": "1",
                  "RETRY_DELAYS": "200ms,500ms,1s", "MAX_ATTEMPTS": "30", "WORKER_METRICS_PORT": "0",
                  "CRM_PROBE_INTERVAL": "1s",
                  "SHUTDOWN_GRACE": "5s"}
    worker = Service("worker", ["-m", "worker"], worker_env, log_dir)
    proxy = Service("proxy", ["-m", "proxy", "--port", str(ports["proxy"])],
                    {**common, "RATE_LIMIT": "off"}, log_dir)
    procs = [crm, worker, proxy]
    tally = Tally()
    crm_url = f"http://127.0.0.1:{ports['crm']}"
    proxy_url = f"http://127.0.0.1:{ports['proxy']}"
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
            for proc in procs:
                proc.start()
            await wait_http(session, f"{crm_url}/_stats")
            await asyncio.to_thread(crm_set_up, crm_kind, worker_env)
            await wait_http(session, f"{proxy_url}/readyz")

            def crash_worker() -> None:
                worker.kill()
                worker.start()

            def restart_proxy() -> None:
                proxy.stop()
                proxy.start()

            def drop_connections() -> None:
                rabbit.close_connections(vhost, "soak: chaos")

            chaos_points: list[tuple[float, str, Callable[[], str | None]]] = [
                (0.20, "worker SIGKILLed and restarted", crash_worker),
                (0.35, "broker closed every connection", drop_connections),
                (0.50, "proxy restarted", restart_proxy),
                (0.70, "worker SIGKILLed and restarted", crash_worker),
            ]
            restarts: NodeRestarts | None = None
            if cluster is not None:
                nodes = cluster
                restarts = node_restarts = NodeRestarts(cluster)

                def kill_proxys_node() -> str:
                    # our own proxy on loopback
                    with urllib.request.urlopen(f"{proxy_url}/readyz", timeout=5) as answer:  # noqa: S310
                        node = nodes.node_at(json.loads(answer.read())["node"])
                    return node_restarts.kill(node)

                def kill_leader() -> str:
                    return node_restarts.kill(nodes.leader_of(Topology(prefix="soak").work_queue))

                chaos_points[1] = (0.35, "kill -9 of the proxy's node, started again", kill_proxys_node)
                chaos_points.insert(3, (0.60, "kill -9 of the work queue's leader, started again",
                                        kill_leader))

            submitted = asyncio.Event()

            async def chaos_monkey() -> None:
                # Each point fires when its share of leads is accepted, or at once
                # when all are: the rest of the chaos then hits the draining worker.
                for share, what, action in chaos_points:
                    while len(tally.accepted) < share * leads and not submitted.is_set():  # noqa: ASYNC110
                        await asyncio.sleep(0.02)  # polling a counter the submitters bump
                    at, began = len(tally.accepted), time.monotonic()
                    detail = await asyncio.to_thread(action)
                    tally.chaos.append(f"at {at} accepted: {what}" + (f" [{detail}]" if detail else "")
                                       + f" ({time.monotonic() - began:.1f}s)")

            monkey = asyncio.create_task(chaos_monkey())
            semaphore = asyncio.Semaphore(concurrency)

            t0 = time.monotonic()

            async def one(i: int) -> None:
                # visitors arrive at a steady pace, so the chaos lands mid-traffic
                await asyncio.sleep(max(0.0, t0 + i / rate - time.monotonic()))
                async with semaphore:
                    await submit(session, f"{proxy_url}/api/forms/lead", i, tally)

            await asyncio.gather(*(one(i) for i in range(leads)))
            submitted_at = time.monotonic()
            submitted.set()
            await monkey
            if restarts is not None:
                tally.chaos.extend(await asyncio.to_thread(restarts.join))

            # Quiet: every accepted lead is in the CRM or the dead-letter queue, and stays so.
            in_crm: Counter[str] = Counter()
            dead: set[str] = set()
            deadline = time.monotonic() + quiet_timeout
            duplicates = 0
            while time.monotonic() < deadline:
                in_crm, duplicates = await crm_records(session, crm_url, crm_kind)
                dead = await asyncio.to_thread(dead_letter_ids, amqp_url)
                if tally.accepted <= (set(in_crm) | dead):
                    break
                await asyncio.sleep(1)
            async with session.get(f"{crm_url}/_stats") as answer:
                crm_stats = await answer.json()
            if cluster is not None and not tally.accepted <= (set(in_crm) | dead):
                # where the missing leads wait, for the post-mortem
                for row in await asyncio.to_thread(cluster.queues):
                    tally.chaos.append(f"queue {json.dumps(row)}")
    finally:
        for proc in reversed(procs):
            proc.stop()
        if cluster is None:
            rabbit.delete_vhost(vhost)

    lost = tally.accepted - set(in_crm) - dead
    misplaced = (tally.rejected_domain & set(in_crm)) | ((tally.accepted - tally.rejected_domain) & dead)
    print("\nLeadline chaos soak" + (" on a three-node RabbitMQ cluster" if cluster is not None else "")
          + (f", into the {crm_kind} fake (its batch API)" if crm_kind != "webhook" else ""))
    print(f"  leads submitted          {leads} ({rate:g}/s, at most {concurrency} at once)")
    for line in tally.chaos:
        print(f"  chaos                    {line}")
    print(f"  proxy answers            {dict(sorted(tally.answers.items()))}, "
          f"network errors {tally.network_errors}")
    print(f"  accepted                 {len(tally.accepted)}")
    print(f"  in the CRM               {len(set(in_crm) & tally.accepted)}")
    print(f"  dead-lettered            {len(dead & tally.accepted)} "
          f"(expected {len(tally.rejected_domain)}: the {REJECT_DOMAIN} leads)")
    print(f"  lost                     {len(lost)}")
    print(f"  duplicate CRM records    {duplicates}")
    print(f"  misplaced                {len(misplaced)}")
    print(f"  CRM calls                {crm_stats}")
    total = time.monotonic() - started
    print(f"  took                     {submitted_at - started:.1f}s to submit, {total:.1f}s in all")
    print(f"  logs                     {log_dir}")
    ok = not lost and not duplicates and not misplaced and len(tally.accepted) == leads
    print("  result                   " + ("PASS" if ok else "FAIL"))
    return 0 if ok else 1


class NodeRestarts:
    """kill -9 a node and start it again in the background, one node down at a
    time: the chaos goes on meanwhile, and a majority of the three stays up."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.pending: threading.Thread | None = None
        self.done: list[str] = []

    def kill(self, node: Node) -> str:
        waited = self._wait()
        self.cluster.kill(node)
        killed_at = time.monotonic()

        def restart() -> None:
            self.cluster.start_node(node)
            self.done.append(f"{node.name} started again, running {time.monotonic() - killed_at:.1f}s "
                             "after its kill")

        self.pending = threading.Thread(target=restart, name=f"restart-{node.name}")
        self.pending.start()
        return f"{node.name}" + (f", after waiting {waited:.1f}s for the last one to come back" if waited
                                 else "")

    def _wait(self) -> float:
        began = time.monotonic()
        if self.pending is not None:
            self.pending.join()
            self.pending = None
            return time.monotonic() - began
        return 0.0

    def join(self) -> list[str]:
        self._wait()
        return self.done


def dead_letter_ids(amqp_url: str) -> set[str]:
    done = subprocess.run([sys.executable, "-m", "worker", "dlq", "list", "--json"], cwd=ROOT,
                          env={**os.environ, "AMQP_URL": amqp_url, "QUEUE_PREFIX": "soak"},
                          capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0:
        return set()
    return {str(json.loads(line)["id"]) for line in done.stdout.splitlines() if line.strip()}


def main() -> int:
    parser = argparse.ArgumentParser(prog="./dev soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--leads", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rate", type=float, default=250.0, help="new visitors per second")
    parser.add_argument("--quiet-timeout", type=float, default=300.0,
                        help="seconds to wait for every lead to settle")
    parser.add_argument("--cluster", action="store_true",
                        help="on a three-node RabbitMQ cluster of its own, killing nodes")
    parser.add_argument("--crm", choices=("webhook", "hubspot"), default="webhook",
                        help="the webhook fake (default) or the HubSpot fake (contacts upserted in batches)")
    args = parser.parse_args()
    if args.leads < 10:
        parser.error("--leads must be at least 10")
    if not args.cluster:
        return asyncio.run(run(args.leads, args.concurrency, args.rate, args.quiet_timeout,
                               crm_kind=args.crm))
    cluster = start_cluster()
    if cluster is None:
        return 2
    try:
        return asyncio.run(run(args.leads, args.concurrency, args.rate, args.quiet_timeout, cluster,
                               crm_kind=args.crm))
    finally:
        cluster.teardown()


if __name__ == "__main__":
    sys.exit(main())
