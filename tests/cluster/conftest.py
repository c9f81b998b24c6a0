"""A three-node RabbitMQ cluster of this run's own, and the tools to hurt it.

The cluster starts once, the first time a test here asks for it, on ports
and directories of its own (`devtools/cluster.py`); the node on 5672
that the rest of the suite uses is never touched. If it cannot start, every
test here fails with the reason: never a skip. Each test breaks something,
restores it, and leaves the cluster healthy (three members of each of its
quorum queues, caught up) for the next; the figures each test measured are
printed at the end of the run.
"""

from __future__ import annotations

import asyncio
import itertools
import signal
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import aiormq
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from devtools.cluster import Cluster, Node
from leadline.topology import Topology
from proxy.app import create_app
from proxy.settings import Settings
from proxy.state import PUBLISHER

ORIGIN = "http://localhost:8000"
# Short enough that a test sees many 503s and their ends; the README's figures
# come from these runs.
PUBLISH_TIMEOUT = 1.0

AiohttpClient = Callable[[web.Application], Awaitable[TestClient[web.Request, web.Application]]]
Client = TestClient[web.Request, web.Application]
MakeProxy = Callable[..., Awaitable[Client]]

FIGURES: list[str] = []


def figure(text: str) -> None:
    """A measured figure for the summary at the end of the run (and the README)."""
    FIGURES.append(text)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if FIGURES:
        terminalreporter.section("RabbitMQ cluster: measured")
        for line in FIGURES:
            terminalreporter.write_line(line)


_RUNNING: list[Cluster] = []


def pytest_keyboard_interrupt() -> None:
    # Ctrl-C: kill the nodes now. A test thread may be waiting on one of them
    # (a node booting), and the run would wait for it before any teardown.
    for running in _RUNNING:
        running.teardown(graceful=False)


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    started = Cluster()
    _RUNNING.append(started)
    try:
        started.start()
    except Exception as exc:  # the reason, as a failure of every cluster test
        pytest.fail(f"the three-node RabbitMQ cluster did not start: {exc}", pytrace=False)
    figure(f"cluster of 3 started in {started.boot_seconds:.1f}s (first node, then two at once)")
    try:
        yield started
    finally:
        began = time.monotonic()
        started.teardown()
        _RUNNING.remove(started)
        figure(f"cluster torn down in {time.monotonic() - began:.1f}s")


@pytest.fixture
async def healthy(cluster: Cluster, topology: Topology) -> AsyncIterator[Cluster]:
    """The cluster for one test. The test restores what it broke; afterwards the
    work queue's three members are caught up (same commit index), every quorum
    queue of the test has three online members, and those queues go."""
    yield cluster
    quorum = [topology.work_queue, *topology.retry_queues]
    try:
        await asyncio.gather(
            asyncio.to_thread(cluster.wait_quorum_caught_up, [topology.work_queue], "/", 90),
            asyncio.to_thread(_members_online, cluster, quorum))
    finally:
        await delete_queues(cluster.nodes[0].url, [*quorum, topology.dead_letter_queue],
                            topology.work_exchange)


@asynccontextmanager
async def broken(cluster: Cluster, node: Node, how: str = "kill") -> AsyncIterator[float]:
    """`node` killed (`kill`: SIGKILL), hung (`stop`: SIGSTOP) or its broker app
    stopped (`stop_app`) inside the block, restored after it; yields the moment
    just before the blow."""
    began = time.monotonic()
    if how == "kill":
        await asyncio.to_thread(cluster.kill, node)
    elif how == "stop":
        await asyncio.to_thread(cluster.kill, node, signal.SIGSTOP)
    elif how == "stop_app":
        await asyncio.to_thread(cluster.stop_app, node)
    else:
        raise ValueError(how)
    try:
        yield began
    finally:
        if how == "kill":
            await asyncio.to_thread(cluster.start_node, node)
        elif how == "stop":
            await asyncio.to_thread(cluster.kill, node, signal.SIGCONT)
        else:
            await asyncio.to_thread(cluster.start_app, node)


def _members_online(cluster: Cluster, queues: Sequence[str]) -> None:
    deadline = time.monotonic() + 60
    while True:
        rows = {r["name"]: r for r in cluster.queues()}
        short = [q for q in queues if q in rows and len(rows[q].get("online") or []) != cluster.size]
        if not short:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"quorum queues without three online members: {short}")
        time.sleep(0.3)


async def delete_queues(url: str, queues: Sequence[str], exchange: str) -> None:
    connection = await aiormq.connect(url)
    try:
        channel = await connection.channel()
        for queue in queues:
            await channel.queue_delete(queue)
        await channel.exchange_delete(exchange)
    finally:
        await connection.close()


@pytest.fixture
def make_proxy(aiohttp_client: AiohttpClient, topology: Topology) -> MakeProxy:
    """The real proxy app on `AMQP_URL` = the nodes given (all by default)."""

    async def make(url: str, wait: bool = True, **env: str) -> Client:
        settings = Settings.from_env({
            "AMQP_URL": url, "QUEUE_PREFIX": topology.prefix, "RATE_LIMIT": "off",
            "ALLOWED_ORIGINS": ORIGIN, "PUBLISH_TIMEOUT": f"{PUBLISH_TIMEOUT:g}s", **env})
        app = create_app(settings)
        client = await aiohttp_client(app)
        if wait:
            assert await app[PUBLISHER].broker.wait_connected(30), "the proxy reached no node"
        return client

    return make


def broker_of(client: Client) -> Any:
    return client.app[PUBLISHER].broker


@dataclass
class Answer:
    key: str
    status: int
    started: float
    ended: float


@dataclass
class Visitors:
    """Pages whose outbox posts a lead and retries it, same key, until a 202."""

    client: Client
    answers: list[Answer] = field(default_factory=list)
    accepted: set[str] = field(default_factory=set)
    posted: set[str] = field(default_factory=set)
    errors: int = 0

    def statuses(self, since: float = 0.0, until: float = float("inf")) -> dict[int, int]:
        counts: dict[int, int] = {}
        for a in self.answers:
            if since <= a.started <= until:
                counts[a.status] = counts.get(a.status, 0) + 1
        return dict(sorted(counts.items()))

    def first_202_after(self, moment: float) -> float | None:
        """Seconds from `moment` to the first 202 of a request sent after it."""
        times = [a.ended for a in self.answers if a.status == 202 and a.started >= moment]
        return min(times) - moment if times else None

    def gap(self, since: float, until: float) -> float:
        """The longest stretch between `since` and `until` in which no 202 arrived:
        the window the visitors saw, whatever the proxy thought."""
        ends = sorted(a.ended for a in self.answers if a.status == 202 and since <= a.ended <= until)
        edges = [since, *ends]
        return max((b - a for a, b in itertools.pairwise(edges)), default=until - since)

    def longest(self, since: float, until: float) -> float:
        """The longest answer among requests sent between `since` and `until`."""
        spans = [a.ended - a.started for a in self.answers if since <= a.started <= until]
        return max(spans, default=0.0)

    async def post(self, key: str, lead: dict[str, Any]) -> int:
        started = time.monotonic()
        try:
            async with self.client.post("/api/forms/lead", data=orjson.dumps(lead), headers={
                    "Content-Type": "application/json", "Idempotency-Key": key, "Origin": ORIGIN},
                    timeout=aiohttp.ClientTimeout(total=10)) as answer:
                status = answer.status
        except (aiohttp.ClientError, OSError, TimeoutError):
            self.errors += 1  # a browser's outbox retries these like a 503
            status = 0
        self.answers.append(Answer(key, status, started, time.monotonic()))
        return status

    async def one_lead(self, i: int) -> None:
        key = str(uuid.uuid4())
        self.posted.add(key)
        lead = {"name": f"Visitor {i}", "email": f"v{i}.{key[:8]}@example.com", "consent": True}
        delay = 0.05
        while True:
            status = await self.post(key, lead)
            if status == 202:
                self.accepted.add(key)
                return
            assert status in {0, 503}, f"the proxy answered {status}: only 202 or 503 are right here"
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.5)

    @asynccontextmanager
    async def streaming(self, pages: int = 12, pause: float = 0.02) -> AsyncIterator[None]:
        """`pages` visitors, each posting lead after lead, until the block ends;
        then each finishes the lead it has (its outbox would)."""
        stop = asyncio.Event()
        counter = iter(range(10**9))

        async def page() -> None:
            while not stop.is_set():
                await self.one_lead(next(counter))
                await asyncio.sleep(pause)

        tasks = [asyncio.create_task(page()) for _ in range(pages)]
        try:
            yield
        finally:
            stop.set()
            await asyncio.wait_for(asyncio.gather(*tasks), 90)


async def get_json(client: Client, path: str) -> tuple[int, Any]:
    async with client.get(path) as answer:
        return answer.status, await answer.json()


async def metrics_text(client: Client) -> str:
    async with client.get("/metrics") as answer:
        return await answer.text()


async def until(check: Callable[[], bool | Awaitable[bool]], timeout: float, what: str,
                every: float = 0.05) -> float:
    """Poll `check` until true; the seconds it took."""
    began = time.monotonic()
    while True:
        outcome = check()
        if not isinstance(outcome, bool):
            outcome = await outcome
        if outcome:
            return time.monotonic() - began
        if time.monotonic() - began > timeout:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(every)
