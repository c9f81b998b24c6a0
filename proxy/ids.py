"""The submission id (`Idempotency-Key`) and the W3C trace context of a request.

Both are pure checks: a bad key is the client's mistake (400), a bad or
missing `traceparent` is replaced, because tracing must never refuse a lead.
"""

from __future__ import annotations

import os
import re

# Ids come from the kernel's CSPRNG (a guessable generated id would let
# someone claim a keyless visitor's submission id in advance), read in blocks:
# one getrandom call per 256 ids instead of one or two per request.
_BLOCK = 4096


class _RandomPool:
    def __init__(self) -> None:
        self._buffer = b""
        self._offset = 0

    def take(self, size: int) -> bytes:
        if self._offset + size > len(self._buffer):
            self._buffer, self._offset = os.urandom(_BLOCK), 0
        start, self._offset = self._offset, self._offset + size
        return self._buffer[start:self._offset]


_pool = _RandomPool()

# A UUID matches this too; the charset keeps keys safe in headers, logs and AMQP.
_IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9_.:-]{8,128}")
_TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}")
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16


def submission_id(header: str | None) -> str | None:
    """The key when it is well formed, a fresh uuid4 when absent, None when malformed."""
    if header is None:
        return uuid4_text(_pool.take(16))
    if _IDEMPOTENCY_KEY.fullmatch(header):
        return header
    return None


def uuid4_text(raw: bytes) -> str:
    """`str(uuid.UUID(bytes=raw, version=4))`, without building the UUID object."""
    octets = bytearray(raw)
    octets[6] = (octets[6] & 0x0F) | 0x40  # version 4
    octets[8] = (octets[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = octets.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def valid_traceparent(header: str | None) -> bool:
    if not header:
        return False
    match = _TRACEPARENT.fullmatch(header)
    return match is not None and match.group(1) != _ZERO_TRACE and match.group(2) != _ZERO_SPAN


def traceparent(header: str | None) -> str:
    """The client's `traceparent` when valid, else the start of a new, sampled trace."""
    if header is not None and valid_traceparent(header):
        return header
    ids = _pool.take(24)
    return f"00-{ids[:16].hex()}-{ids[16:].hex()}-01"
