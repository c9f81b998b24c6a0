"""Suite-wide set-up: the real RabbitMQ, in a vhost of this run's own.

Each test's queues are deleted soon after it ends (`rabbit.QueueSweeper`):
a quorum queue holds file handles on the broker, and a suite that kept a
thousand of them until the end would run a broker with the default limit
out of handles.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from leadline.topology import Topology
from tests.support import rabbit

_sweeper: rabbit.QueueSweeper | None = None


def pytest_sessionstart(session: pytest.Session) -> None:
    url = rabbit.base_url()
    if not rabbit.reachable(url):
        pytest.exit(
            f"RabbitMQ is not reachable at {url.rsplit('@', 1)[-1]}: start it with "
            "`rabbitmq-server -detached` (or point AMQP_URL at one) and run the tests again.",
            returncode=3,
        )


@pytest.fixture(scope="session")
def vhost() -> Iterator[str]:
    """A vhost for this test session, deleted afterwards."""
    global _sweeper
    rabbit.delete_stale_vhosts()
    name = rabbit.create_vhost()
    _sweeper = rabbit.QueueSweeper(rabbit.url_for_vhost(rabbit.base_url(), name), name)
    yield name
    _sweeper = None
    rabbit.delete_vhost(name)


@pytest.fixture(scope="session")
def amqp_url(vhost: str) -> str:
    return rabbit.url_for_vhost(rabbit.base_url(), vhost)


@pytest.fixture
def topology() -> Iterator[Topology]:
    """A fresh set of names per test, so tests never share queues; swept after the test."""
    names = Topology(prefix=f"t{uuid.uuid4().hex[:10]}", retry_delays=(0.5, 1.0))
    yield names
    if _sweeper is not None:
        _sweeper.finished(names.prefix)


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """With several test processes (`./dev test`): a file's tests run in one of them, in order
    (module-scoped fixtures, a browser, a console and its letters, start once and keep their
    order), and every test under tests/cluster/ in the same one (the cluster starts once a run).
    (xdist's own loadgroup cannot do it with pytest 9: it renames nodes in a way pytest 9 ignores.)"""
    from xdist.scheduler import LoadFileScheduling

    class ByFile(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return "tests/cluster/" if path.startswith("tests/cluster/") else path

    return ByFile(config, log)
