"""The console's pages and actions. Every broker step runs under one lock: two
page loads at once would each see only the letters the other was not holding."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp import web
from aiormq.abc import AbstractConnection, DeliveredMessage

from leadline.accounting import account
from leadline.errors import PublishNotConfirmed
from leadline.queuestats import read_queue_stats
from worker.dlq import Browse, browse, describe
from worker.dlq_console import guard
from worker.dlq_console.letters import grouped, hourly, lead_data, reason_of, trace_of
from worker.dlq_console.state import BROKER, LOCK, SECRET, SETTINGS, TEMPLATES, USER

log = logging.getLogger("leadline.dlq.console")

# A page holds every letter it shows unacked while it is drawn: a bound on how many.
MAX_LETTERS = 10_000
ROWS_PER_GROUP = 200
DONE_WORDS = frozenset({"replayed", "purged"})
UNAVAILABLE_RETRY_AFTER = "5"


class Problem(Exception):
    """An answer that is a page saying what went wrong (the middleware draws it)."""

    def __init__(self, status: int, title: str, text: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(title)
        self.status, self.title, self.text = status, title, text
        self.headers = headers or {}


def render(request: web.Request, name: str, status: int = 200, **context: Any) -> web.Response:
    user = request.get(USER, "")
    template = request.app[TEMPLATES].get_template(name)
    text = template.render(csrf=guard.csrf_token(request.app[SECRET], user, time.time()),
                           csrf_field=guard.CSRF_FIELD, user=user, **context)
    return web.Response(text=text, status=status, content_type="text/html", charset="utf-8")


def _connection(request: web.Request) -> AbstractConnection:
    connection = request.app[BROKER].connection
    if connection is None:
        raise Problem(503, "RabbitMQ is unreachable",
                      "The console cannot see the dead-letter queue right now; it reconnects on its own.",
                      headers={"Retry-After": UNAVAILABLE_RETRY_AFTER})
    return connection


@contextlib.asynccontextmanager
async def _dead_letters(request: web.Request) -> AsyncIterator[Browse]:
    """Every letter (up to MAX_LETTERS) taken for the block, under the console's lock."""
    topology = request.app[SETTINGS].topology
    # The lock first, then the connection: one looked up while waiting could be gone.
    async with request.app[LOCK], browse(_connection(request), topology, limit=MAX_LETTERS) as taken:
        yield taken


async def _fetch(session: aiohttp.ClientSession, url: str) -> str | None:
    try:
        async with session.get(url) as answer:
            return await answer.text() if answer.status == 200 else None
    except (aiohttp.ClientError, OSError, TimeoutError):
        return None


async def index(request: web.Request) -> web.Response:
    """`GET /`: the accounting, the chart, the letters by reason."""
    settings = request.app[SETTINGS]
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
        fetching = asyncio.gather(_fetch(session, settings.proxy_metrics_url),
                                  _fetch(session, settings.worker_metrics_url))
        try:
            async with request.app[LOCK]:
                connection = _connection(request)
                # Depths first: while the letters are taken below, the queue shows them as unacked.
                stats = await read_queue_stats(connection, settings.topology)
                async with browse(connection, settings.topology, limit=MAX_LETTERS) as taken:
                    letters = taken.letters
                    more = await taken.ready()
        except BaseException:
            fetching.cancel()
            with contextlib.suppress(BaseException):
                await fetching
            raise
        proxy_text, worker_text = await fetching
    done = request.query.get("done")
    return render(
        request, "index.html", books=account(stats, proxy_text, worker_text), groups=grouped(letters),
        chart=hourly(letters, datetime.now(UTC)), total=len(letters), more=more, rows=ROWS_PER_GROUP,
        queue=settings.topology.dead_letter_queue,
        done=done if done in DONE_WORDS else None, done_count=_int(request.query.get("n")),
        missing=_int(request.query.get("missing")))


async def letter(request: web.Request) -> web.Response:
    """`GET /letters/{id}`: one letter's story and data, addresses masked."""
    return await _letter_page(request, reveal=False)


async def reveal(request: web.Request) -> web.Response:
    """`POST /letters/{id}/reveal`: the same page with the data as the visitor sent it."""
    response = await _letter_page(request, reveal=True)
    log.info("dead letter revealed", extra={"submission_id": request.match_info["id"],
                                            "user": request[USER]})
    return response


async def _letter_page(request: web.Request, *, reveal: bool) -> web.Response:
    wanted = request.match_info["id"]
    async with _dead_letters(request) as taken:
        copies = [describe(m.body, m.header.properties) for m in taken.select({wanted})]
    if not copies:
        raise Problem(404, "No such dead letter",
                      f"There is no dead letter with the id {wanted!r} (any more): it may have been "
                      "replayed or purged meanwhile.")
    first = copies[0]
    return render(request, "letter.html", letter=first, copies=len(copies), reason=reason_of(first),
                  data=lead_data(first, reveal=reveal), revealed=reveal, trace=trace_of(first))


async def replay(request: web.Request) -> web.StreamResponse:
    """`POST /replay` with `id`s or a `reason`: back to the work queue, confirmed before the ack."""
    ids, reason = await _selection(request)
    done, missing = await _act(request, ids, reason, "replay")
    raise web.HTTPSeeOther(f"/?done=replayed&n={done}&missing={missing}")


async def purge(request: web.Request) -> web.StreamResponse:
    """`POST /purge`: first a page that lists what would go, then (`confirm=yes`) gone for good."""
    ids, reason = await _selection(request)
    form = await request.post()
    if form.get("confirm") != "yes":
        async with _dead_letters(request) as taken:
            chosen = [describe(m.body, m.header.properties) for m in _chosen(taken, ids, reason)]
        if not chosen:
            raise Problem(404, "Nothing to purge", "None of these letters is in the queue any more.")
        # The confirmation names the letters themselves: a group that grew meanwhile loses no more.
        return render(request, "purge.html", letters=chosen, reasons={lt.id: reason_of(lt) for lt in chosen})
    done, missing = await _act(request, ids, None, "purge")
    raise web.HTTPSeeOther(f"/?done=purged&n={done}&missing={missing}")


async def _selection(request: web.Request) -> tuple[set[str] | None, str | None]:
    form = await request.post()
    ids = {str(v) for v in form.getall("id", []) if str(v)}
    reason = str(form.get("reason") or "") or None
    if not ids and reason is None:
        raise Problem(400, "Nothing selected", "Tick at least one letter, or use a group's buttons.")
    return (ids or None), reason


def _chosen(taken: Browse, ids: set[str] | None, reason: str | None) -> list[DeliveredMessage]:
    if ids is not None:
        return taken.select(ids)
    return [m for m in taken.messages if reason_of(describe(m.body, m.header.properties)) == reason]


async def _act(request: web.Request, ids: set[str] | None, reason: str | None,
               action: str) -> tuple[int, int]:
    """Replay or purge the chosen letters; (done, ids asked for that were not found)."""
    done = 0
    async with _dead_letters(request) as taken:
        chosen = _chosen(taken, ids, reason)
        found = {m.header.properties.message_id or "" for m in chosen}
        try:
            for message in chosen:
                await (taken.replay(message) if action == "replay" else taken.remove(message))
                done += 1
        except PublishNotConfirmed:
            _audit(request, action, done, chosen, reason)
            raise Problem(503, "Replay not confirmed",
                          f"{done} of {len(chosen)} letters were replayed; RabbitMQ did not confirm "
                          "the next one, so it and the rest stay in the dead-letter queue. Try again "
                          "shortly.", headers={"Retry-After": UNAVAILABLE_RETRY_AFTER}) from None
    _audit(request, action, done, chosen, reason)
    return done, len((ids or set()) - found)


def _audit(request: web.Request, action: str, done: int, chosen: Sequence[DeliveredMessage],
           reason: str | None) -> None:
    log.info(f"dead letters {'replayed' if action == 'replay' else 'purged'}", extra={
        "user": request[USER], "count": done, "group": reason,
        "submission_ids": [m.header.properties.message_id for m in chosen[:done]][:100]})


async def healthz(request: web.Request) -> web.Response:
    """`GET /healthz` (no password): up, and whether RabbitMQ is reachable."""
    connected = request.app[BROKER].connected
    return web.json_response({"status": "ok", "broker": "connected" if connected else "unreachable"})


def _int(text: str | None) -> int:
    return int(text) if text and text.isdigit() and len(text) < 9 else 0
