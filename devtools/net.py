"""Small loopback helpers for the dev tools, tests and benchmarks (never the services)."""

from __future__ import annotations

import random
import socket
from pathlib import Path
from urllib.parse import urlsplit

# Ports below the kernel's ephemeral range: no outgoing connection is ever
# given one. A port the OS picked (bind to 0) comes from that range, so between
# the check and the server's bind any client socket of a parallel test could
# take it (CI saw "address already in use" that way).
_LOWEST = 20000
_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")


def _below_ephemeral() -> int:
    try:
        return int(_EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def free_port() -> int:
    """A TCP port nothing listens on now, outside the range the OS hands to clients."""
    top = _below_ephemeral()
    if top - _LOWEST < 1000:  # an unusual range: let the OS pick
        return _os_pick()
    rng = random.SystemRandom()  # parallel test processes must not share a sequence
    for _ in range(100):
        port = rng.randrange(_LOWEST, top)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    return _os_pick()


def _os_pick() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def tcp_reachable(url: str, default_port: int = 5672, timeout: float = 2.0) -> bool:
    """Whether the host and port of `url` accept a TCP connection."""
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or default_port), timeout):
            return True
    except OSError:
        return False
