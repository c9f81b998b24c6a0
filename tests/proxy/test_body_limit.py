"""The body cap holds before the body is read in full: a raw client shows the
413 arrives while the body is still being sent."""

from __future__ import annotations

import asyncio

import pytest

from tests.proxy.conftest import Client

pytestmark = pytest.mark.broker


async def _raw(client: Client) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    assert client.port is not None
    return await asyncio.open_connection("127.0.0.1", client.port)


def _head(extra: str) -> bytes:
    return (f"POST /api/forms/lead HTTP/1.1\r\nHost: proxy\r\nContent-Type: application/json\r\n"
            f"{extra}\r\n").encode()


async def test_declared_length_over_the_limit_is_413_without_sending_the_body(client: Client) -> None:
    reader, writer = await _raw(client)
    try:
        writer.write(_head("Content-Length: 1000000000\r\n"))
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 5)
        assert status_line.startswith(b"HTTP/1.1 413")
    finally:
        writer.close()


async def test_huge_chunked_body_is_413_after_the_limit_not_at_its_end(client: Client) -> None:
    reader, writer = await _raw(client)
    try:
        writer.write(_head("Transfer-Encoding: chunked\r\n"))
        chunk = b"x" * 4096
        # 40 KiB, past the 16 KiB limit, and the body never ends: no final 0-chunk
        for _ in range(10):
            writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 5)
        assert status_line.startswith(b"HTTP/1.1 413")
    finally:
        writer.close()
