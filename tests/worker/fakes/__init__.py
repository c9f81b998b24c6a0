"""Tests of the vendor fakes themselves. `running()` serves one on a real
loopback port and talks to it with `aiohttp.ClientSession`, as a connector would."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from tests.support.ports import free_port


@dataclass
class Answer:
    status: int
    headers: Mapping[str, str]
    body: Any


@dataclass
class Fake:
    """One running fake: its base URL, its live state, and a client with the good credentials."""

    url: str
    state: Any
    session: aiohttp.ClientSession
    headers: dict[str, str] = field(default_factory=dict)

    async def call(self, method: str, path: str, *, json: Any = None, data: Any = None,
                   params: Mapping[str, str] | None = None, headers: Mapping[str, str] | None = None,
                   auth: bool = True, timeout: float = 10.0) -> Answer:
        sent = {**(self.headers if auth else {}), **(headers or {})}
        body = orjson.dumps(json) if json is not None else data
        if json is not None:
            sent.setdefault("Content-Type", "application/json")
        async with self.session.request(method, self.url + path, data=body, params=params, headers=sent,
                                        timeout=aiohttp.ClientTimeout(total=timeout)) as answer:
            raw = await answer.read()
            return Answer(answer.status, answer.headers, orjson.loads(raw) if raw else None)

    async def control(self, method: str, path: str, json: Any = None) -> Answer:
        return await self.call(method, path, json=json, auth=False)


@asynccontextmanager
async def running(app: web.Application, key: web.AppKey[Any],
                  headers: Mapping[str, str]) -> AsyncIterator[Fake]:
    # handler_cancellation: a withheld ("hanging") answer ends when the caller
    # gives up, so the server stops at once after the test.
    runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=0.5)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        async with aiohttp.ClientSession() as session:
            yield Fake(f"http://127.0.0.1:{port}", app[key], session, dict(headers))
    finally:
        await runner.cleanup()


async def wait_until(condition: Any, timeout: float = 5.0) -> None:
    """Poll `condition()` until it is true; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


async def sleep_until_window_frees(state: Any, margin: float = 0.05) -> None:
    """Until the oldest accepted request has left the fake's rolling window."""
    await asyncio.sleep(state.window_frees_in(time.monotonic()) + margin)
