"""Suite-wide set-up: the real RabbitMQ, in a vhost of this run's own."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from leadline.topology import Topology
from tests.support import rabbit


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
    rabbit.delete_stale_vhosts()
    name = rabbit.create_vhost()
    yield name
    rabbit.delete_vhost(name)


@pytest.fixture(scope="session")
def amqp_url(vhost: str) -> str:
    return rabbit.url_for_vhost(rabbit.base_url(), vhost)


@pytest.fixture
def topology() -> Topology:
    """A fresh set of names per test, so tests never share queues."""
    return Topology(prefix=f"t{uuid.uuid4().hex[:10]}", retry_delays=(0.5, 1.0))
