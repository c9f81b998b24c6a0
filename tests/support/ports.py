"""Free loopback ports (`devtools.net`)."""
from __future__ import annotations

from devtools.net import free_port, tcp_reachable

__all__ = ["free_port", "tcp_reachable"]
