"""`/readyz` answers for every process of the proxy, not only the one asked.

With two processes on one port, a load balancer that heard "ready" from one
while the other was still connecting would send that one half the traffic,
answered 503. CI saw it: `/readyz` said 200 and the next POST got a 503.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from leadline.topology import Topology
from proxy.app import create_app
from proxy.readiness import Readiness
from proxy.settings import Settings
from proxy.state import PUBLISHER
from proxy.workers import Supervisor
from tests.proxy.conftest import AiohttpClient
from tests.support.ports import free_port
from tests.support.procs import Service


def test_a_table_counts_the_processes_that_are_connected() -> None:
    table = Readiness(3)
    first, second, third = (table.slot(i) for i in range(3))
    assert table.connected() == 0
    first.set(True)
    third.set(True)
    assert (second.connected(), second.processes) == (2, 3)
    table.clear(0)
    assert table.connected() == 1
    with pytest.raises(IndexError):
        table.slot(3)
    with pytest.raises(ValueError, match="at least one"):
        Readiness(0)


def test_a_forked_child_writes_what_the_parent_reads() -> None:
    table = Readiness(2)
    pid = os.fork()
    if pid == 0:
        table.slot(1).set(True)
        os._exit(0)
    os.waitpid(pid, 0)
    assert table.connected() == 1


def test_the_supervisor_clears_a_dead_childs_slot() -> None:
    table = Readiness(2)

    def connect_then_die(slot: int) -> int:
        table.set(slot, True)
        return 3  # every start fails fast: the supervisor gives up

    supervisor = Supervisor(2, connect_then_die, stop_timeout=2, fast_failure_seconds=5,
                            max_fast_failures=2, on_exit=lambda pid, slot: table.clear(slot))
    assert supervisor.run() == 1
    assert table.connected() == 0


async def test_readyz_is_503_until_every_process_is_connected(
        aiohttp_client: AiohttpClient, amqp_url: str, topology: Topology) -> None:
    table = Readiness(2)
    app = create_app(Settings.from_env({"AMQP_URL": amqp_url, "QUEUE_PREFIX": topology.prefix}),
                     readiness=table.slot(0))
    client = await aiohttp_client(app)
    assert await app[PUBLISHER].broker.wait_connected(10)
    async with client.get("/readyz") as answer:
        assert answer.status == 503
        assert answer.headers["Retry-After"]
        body = await answer.json()
    assert body["status"] == "connecting"
    assert body["message"] == "1 of 2 proxy processes connected to RabbitMQ"
    table.slot(1).set(True)  # the other process came up
    async with client.get("/readyz") as answer:
        assert answer.status == 200
        assert (await answer.json())["status"] == "ready"
    await app[PUBLISHER].stop()  # this one's connection goes
    assert table.connected() == 1


def _children(pid: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


@pytest.mark.broker
def test_two_processes_are_ready_only_once_both_are_connected_and_again_after_one_dies(
        amqp_url: str, topology: Topology, tmp_path: Path) -> None:
    port = free_port()
    service = Service("proxy", ["-m", "proxy", "--port", str(port), "--workers", "2"], {
        "AMQP_URL": amqp_url, "QUEUE_PREFIX": topology.prefix}, tmp_path).start()

    def connections() -> int:
        return service.log_path.read_text().count('"event":"broker connected"')

    try:
        service.wait_http(f"http://127.0.0.1:{port}/readyz")
        assert connections() == 2  # the first "ready" came after both connected
        assert service.proc is not None
        first, _ = _children(service.proc.pid)
        os.kill(first, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while first in _children(service.proc.pid):  # until the parent reaped it
            assert time.monotonic() < deadline
            time.sleep(0.01)
        service.wait_http(f"http://127.0.0.1:{port}/readyz")
        assert connections() == 3  # ... and again only once its replacement connected
    finally:
        service.stop()
