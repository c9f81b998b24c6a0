"""A per-client token bucket and who "the client" is.

Buckets live in one dict kept in least-recently-used order, so the ones that
have refilled completely (the same as never seen) are found at its front and
dropped; memory follows the number of clients active in the last window,
and `max_clients` caps it even under a flood of addresses.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections.abc import Callable, Sequence

from leadline.config import Rate
from proxy.settings import IpNetwork


class RateLimiter:
    def __init__(self, rate: Rate, *, max_clients: int = 100_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = float(rate.count)
        self.per_second = rate.count / rate.per_seconds
        self._refill_seconds = rate.per_seconds
        self._max_clients = max_clients
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # client -> (tokens, at)

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, client: str) -> float:
        """0 when the request may go ahead, else the seconds until it could."""
        now = self._clock()
        tokens, at = self._buckets.pop(client, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - at) * self.per_second)
        if tokens >= 1.0:
            tokens -= 1.0
            wait = 0.0
        else:
            wait = (1.0 - tokens) / self.per_second
        self._buckets[client] = (tokens, now)  # re-inserted: most recent last
        self._prune(now)
        return wait

    def _prune(self, now: float) -> None:
        buckets = self._buckets
        while buckets:
            client = next(iter(buckets))
            _, at = buckets[client]
            if now - at < self._refill_seconds and len(buckets) <= self._max_clients:
                return
            del buckets[client]


def retry_after(wait: float) -> str:
    """Whole seconds for `Retry-After`, never 0 (that reads as "now")."""
    return str(max(1, math.ceil(wait)))


def client_address(peer: str | None, forwarded_for: str | None, trusted: Sequence[IpNetwork]) -> str:
    """The client's IP: the peer, unless the peer is a trusted proxy.

    Behind trusted proxies, the client is the right-most `X-Forwarded-For`
    entry that is not itself a trusted proxy; entries further left are
    whatever the client chose to send and are never believed.
    """
    address = peer or "unknown"
    if not trusted or not forwarded_for or not _is_trusted(address, trusted):
        return address
    for hop in reversed([h.strip() for h in forwarded_for.split(",")]):
        if not hop:
            continue
        if not _is_trusted(hop, trusted):
            return hop
        address = hop
    return address


def _is_trusted(address: str, trusted: Sequence[IpNetwork]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)
