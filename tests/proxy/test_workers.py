"""`PROXY_WORKERS` / `--workers`: pre-forked processes sharing the port, run
for real. Both serve, a dead one is replaced, SIGTERM leaves no child, and
even a SIGKILLed parent leaves no orphan."""

from __future__ import annotations

import http.client
import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from leadline.errors import ConfigError
from leadline.topology import Topology
from proxy.settings import Settings
from proxy.workers import cpu_count
from tests.support.ports import free_port
from tests.support.procs import Service

LEAD = b'{"name":"Ada","email":"ada@example.com","consent":true}'


def test_proxy_workers_reads_a_number_or_auto() -> None:
    assert Settings.from_env({}).workers == cpu_count()  # the default: one per CPU
    assert Settings.from_env({"PROXY_WORKERS": "3"}).workers == 3
    assert Settings.from_env({"PROXY_WORKERS": "auto"}).workers == cpu_count()


@pytest.mark.parametrize("value", ["0", "-1", "many", "65"])
def test_a_bad_proxy_workers_is_a_config_error(value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"PROXY_WORKERS": value})
    assert caught.value.setting == "PROXY_WORKERS"


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait_for(condition: object, timeout: float = 15.0) -> None:
    assert callable(condition)
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _established_on(pid: int, port: int, clients: set[int]) -> int:
    """How many of the connections from the `clients` ports to `port` process `pid` holds.

    Only those: the readiness polls' connections may linger on the server's side
    for a moment after the client closed them."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            remote_port = int(fields[2].rsplit(":", 1)[1], 16)
            if local_port == port and remote_port in clients and fields[3] == "01" and fields[9] in inodes:
                count += 1
    return count


@pytest.fixture
def two_workers(amqp_url: str, topology: Topology, tmp_path: Path) -> Iterator[tuple[Service, int]]:
    port = free_port()
    service = Service("proxy", ["-m", "proxy", "--port", str(port), "--workers", "2"], {
        "AMQP_URL": amqp_url, "QUEUE_PREFIX": topology.prefix, "RATE_LIMIT": "off"}, tmp_path).start()
    try:
        service.wait_http(f"http://127.0.0.1:{port}/readyz")
        assert service.proc is not None
        parent = service.proc.pid
        _wait_for(lambda: len(_children(parent)) == 2)
        _wait_for(lambda: _broker_connections(service) == 2)  # both ready, not only one
        yield service, port
    finally:
        service.stop()


def _broker_connections(service: Service) -> int:
    return service.log_path.read_text().count('"event":"broker connected"')


def _post(connection: http.client.HTTPConnection) -> int:
    connection.request("POST", "/api/forms/lead", body=LEAD,
                       headers={"Content-Type": "application/json"})
    answer = connection.getresponse()
    payload = json.loads(answer.read())
    assert payload["status"] == "queued"
    return answer.status


@pytest.mark.broker
def test_two_workers_both_serve_and_sigterm_leaves_no_child(two_workers: tuple[Service, int]) -> None:
    service, port = two_workers
    assert service.proc is not None
    parent = service.proc.pid
    children = _children(parent)
    connections = [http.client.HTTPConnection("127.0.0.1", port, timeout=10) for _ in range(24)]
    try:
        # The kernel spreads connections by a hash: the chance that one of two
        # children gets none of 24 is 2**-23.
        for connection in connections:
            assert _post(connection) == 202
        clients = {connection.sock.getsockname()[1] for connection in connections}
        served = {child: _established_on(child, port, clients) for child in children}
        assert all(count > 0 for count in served.values()), served
        assert sum(served.values()) == len(connections)
    finally:
        for connection in connections:
            connection.close()
    assert service.stop() == 0
    assert not [child for child in children if _alive(child)]


@pytest.mark.broker
def test_a_worker_that_dies_is_replaced(two_workers: tuple[Service, int]) -> None:
    service, port = two_workers
    assert service.proc is not None
    parent = service.proc.pid
    first, second = _children(parent)
    os.kill(first, signal.SIGKILL)
    _wait_for(lambda: len(_children(parent)) == 2 and first not in _children(parent))
    replacement = next(child for child in _children(parent) if child != second)
    _wait_for(lambda: _broker_connections(service) == 3)
    for _ in range(8):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            assert _post(connection) == 202
        finally:
            connection.close()
    assert "proxy worker died, starting another" in service.output()
    assert service.stop() == 0
    assert not _alive(second)
    assert not _alive(replacement)


@pytest.mark.broker
def test_a_killed_parent_leaves_no_orphan(two_workers: tuple[Service, int]) -> None:
    service, _ = two_workers
    assert service.proc is not None
    children = _children(service.proc.pid)
    service.kill()
    _wait_for(lambda: not any(_alive(child) for child in children))


@pytest.mark.broker
def test_two_workers_share_one_set_of_metrics_whichever_answers_the_scrape(
    two_workers: tuple[Service, int],
) -> None:
    _service, port = two_workers
    connections = [http.client.HTTPConnection("127.0.0.1", port, timeout=10) for _ in range(24)]
    try:
        for connection in connections:
            assert _post(connection) == 202
    finally:
        for connection in connections:
            connection.close()
    scrapes = []
    for _ in range(8):  # fresh connections: the kernel spreads them over both workers
        scrape = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            scrape.request("GET", "/metrics")
            scrapes.append(scrape.getresponse().read().decode())
        finally:
            scrape.close()
    for text in scrapes:
        assert 'leadline_proxy_accepted_total{form="lead"} 24.0' in text
        assert 'leadline_proxy_stamps_total{verdict="missing"} 24.0' in text  # SPAM_STAMP=flag
        assert "leadline_proxy_broker_connected 1.0" in text
