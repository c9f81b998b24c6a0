"""The pure parts: token buckets, who the client is, ids and trace context."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from leadline.config import Rate
from proxy.ids import submission_id, traceparent, uuid4_text, valid_traceparent
from proxy.ratelimit import RateLimiter, client_address, retry_after


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_bucket_allows_the_burst_then_says_how_long_to_wait_and_refills() -> None:
    clock = Clock()
    limiter = RateLimiter(Rate(2, 60.0), clock=clock)
    assert [limiter.take("a"), limiter.take("a")] == [0.0, 0.0]
    assert limiter.take("a") == pytest.approx(30.0)
    assert retry_after(limiter.take("a")) == "30"
    assert limiter.take("b") == 0.0  # per client
    clock.now += 30
    assert limiter.take("a") == 0.0


def test_buckets_of_idle_clients_are_forgotten_and_the_count_is_capped() -> None:
    clock = Clock()
    limiter = RateLimiter(Rate(5, 10.0), clock=clock, max_clients=100)
    for i in range(500):
        limiter.take(f"10.0.{i // 256}.{i % 256}")
    assert len(limiter) <= 100
    clock.now += 11
    limiter.take("one more")
    assert len(limiter) == 1


def test_retry_after_is_never_zero() -> None:
    assert retry_after(0.01) == "1"


TRUSTED = (ipaddress.ip_network("10.0.0.0/8"),)


@pytest.mark.parametrize(("peer", "xff", "trusted", "client"), [
    ("203.0.113.5", "198.51.100.1", (), "203.0.113.5"),                # no proxies trusted
    ("203.0.113.5", "198.51.100.1", TRUSTED, "203.0.113.5"),           # the peer is no proxy of ours
    ("10.0.0.2", "198.51.100.1", TRUSTED, "198.51.100.1"),
    ("10.0.0.2", "6.6.6.6, 198.51.100.1, 10.0.0.3", TRUSTED, "198.51.100.1"),  # left: client's say
    ("10.0.0.2", None, TRUSTED, "10.0.0.2"),
    (None, None, (), "unknown"),
])
def test_client_address_believes_x_forwarded_for_only_from_trusted_proxies(
        peer: str | None, xff: str | None, trusted: tuple[ipaddress.IPv4Network, ...], client: str) -> None:
    assert client_address(peer, xff, trusted) == client


@pytest.mark.parametrize("key", ["0f8fad5b-d9cb-469f-a165-70867728950e", "abcd1234", "a.b:c-d_e" * 10])
def test_well_formed_keys_are_kept(key: str) -> None:
    assert submission_id(key[:128]) == key[:128]


def test_trace_context_is_kept_when_valid_and_started_when_not() -> None:
    good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    assert traceparent(good) == good
    for bad in (None, "", "00-" + "0" * 32 + "-00f067aa0ba902b7-01", good.upper(), good + "-x"):
        made = traceparent(bad)
        assert made != bad
        assert valid_traceparent(made)


def test_generated_ids_are_distinct_version_4_uuids_across_pool_refills() -> None:
    import uuid

    ids = [submission_id(None) for _ in range(1000)]
    assert len(set(ids)) == 1000
    assert all(uuid.UUID(i).version == 4 for i in ids)
    traces = {traceparent(None) for _ in range(500)}
    assert len(traces) == 500


@given(st.binary(min_size=16, max_size=16))
def test_a_generated_id_is_what_the_uuid_module_writes(raw: bytes) -> None:
    import uuid

    assert uuid4_text(raw) == str(uuid.UUID(bytes=raw, version=4))
