"""The connectors' one HTTP client: a pooled session, the call timeout, the rate limiter.

Every request to a vendor goes through `request()`, so every call, a write,
a lookup or a probe, takes a slot of the worker's one limiter. A call that
got no answer raises `CallFailed` (a timeout, a refused or reset connection);
an answer of any status is an `Answer` for the vendor module to judge.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
import orjson
from multidict import CIMultiDictProxy

from worker.crm.base import BODY_SNIPPET_CHARS, snippet
from worker.crm.ratelimit import WindowLimiter


class CallFailed(Exception):
    """No answer: the error class ("TimeoutError", "ClientConnectorError"…) and its text."""

    def __init__(self, error_class: str, error: str) -> None:
        super().__init__(f"{error_class}: {error}")
        self.error_class = error_class
        self.error = error


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes
    seconds: float

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def json(self) -> Any:
        """The body as JSON, or None when it is not."""
        if not self.body:
            return None
        try:
            return orjson.loads(self.body)
        except orjson.JSONDecodeError:
            return None

    def text(self) -> str:
        return snippet(self.body[: BODY_SNIPPET_CHARS * 4].decode("utf-8", "replace"))


class HttpClient:
    def __init__(self, *, timeout: float, limiter: WindowLimiter, max_connections: int = 100,
                 headers: Mapping[str, str] | None = None) -> None:
        self.limiter = limiter
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._max_connections = max_connections
        self._headers = dict(headers or {})
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        # Created lazily, inside the running loop, as aiohttp requires.
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout, headers=self._headers,
                connector=aiohttp.TCPConnector(limit=self._max_connections),
            )
        return self._session

    async def request(self, method: str, url: str, *, json: Any = None, data: bytes | None = None,
                      params: Mapping[str, str] | None = None,
                      headers: Mapping[str, str] | None = None) -> Answer:
        body = data
        sent_headers = dict(headers or {})
        if json is not None:
            body = orjson.dumps(json)
            sent_headers.setdefault("Content-Type", "application/json")
        async with self.limiter.slot():
            started = time.perf_counter()
            try:
                async with self._client().request(method, url, data=body, params=params,
                                                  headers=sent_headers) as answer:
                    payload = await answer.read()
                    return Answer(answer.status, answer.headers, payload, time.perf_counter() - started)
            except TimeoutError:
                raise CallFailed("TimeoutError",
                                 f"no answer within {self._timeout.total:g}s") from None
            except (aiohttp.ClientError, OSError) as exc:
                raise CallFailed(type(exc).__name__, snippet(str(exc))) from None

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()
            # lets the connector's transports finish closing; avoids ResourceWarnings
            await asyncio.sleep(0)


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """`Retry-After` as seconds from now: delta-seconds or an HTTP date; None if absent or junk."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():  # "²".isdigit() is true, float("²") fails
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def header_int(headers: Mapping[str, str], name: str) -> int | None:
    """An integer header, None when absent or not a plain number."""
    value = headers.get(name, "").strip()
    return int(value) if value.isascii() and value.isdigit() else None
