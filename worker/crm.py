"""The CRM edge: an adapter interface and the HTTP webhook adapter (the default).

An adapter never raises for a failed call: every way a call can end becomes
a `CrmResult` for `classify()` to judge.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
import orjson

from worker.classify import CrmResult

BODY_SNIPPET_CHARS = 200


@dataclass(frozen=True, slots=True)
class Lead:
    """What the CRM gets: the submission id makes its write idempotent."""

    submission_id: str
    form: str
    fields: dict[str, Any]
    received_at: str = ""
    traceparent: str | None = None

    def payload(self) -> bytes:
        return orjson.dumps({
            "id": self.submission_id, "form": self.form,
            "received_at": self.received_at, "lead": self.fields,
        })


class CrmAdapter(Protocol):
    async def send(self, lead: Lead) -> CrmResult: ...

    async def close(self) -> None: ...


class WebhookCrm:
    """POST the lead as JSON to `url`, `Idempotency-Key` = the submission id."""

    def __init__(self, url: str, *, timeout: float, max_connections: int = 100) -> None:
        self._url = url
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        # Created lazily, inside the running loop, as aiohttp requires.
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout,
                connector=aiohttp.TCPConnector(limit=self._max_connections),
                json_serialize=lambda obj: orjson.dumps(obj).decode(),
            )
        return self._session

    async def send(self, lead: Lead) -> CrmResult:
        headers = {"Idempotency-Key": lead.submission_id, "Content-Type": "application/json"}
        if lead.traceparent:
            headers["traceparent"] = lead.traceparent
        started = time.perf_counter()
        try:
            async with self._client().post(self._url, data=lead.payload(), headers=headers) as answer:
                if 200 <= answer.status < 300:
                    await answer.read()  # drain, so the connection goes back to the pool
                    snippet = ""
                else:
                    snippet = (await answer.text(errors="replace"))[:BODY_SNIPPET_CHARS]
                return CrmResult(
                    status=answer.status, error=snippet.strip(),
                    retry_after=answer.headers.get("Retry-After"),
                    seconds=time.perf_counter() - started,
                )
        except TimeoutError:
            return CrmResult(error_class="TimeoutError",
                             error=f"no answer within {self._timeout.total:g}s",
                             seconds=time.perf_counter() - started)
        except (aiohttp.ClientError, OSError) as exc:
            return CrmResult(error_class=type(exc).__name__, error=str(exc)[:BODY_SNIPPET_CHARS],
                             seconds=time.perf_counter() - started)

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()
            # lets the connector's transports finish closing; avoids ResourceWarnings
            await asyncio.sleep(0)
