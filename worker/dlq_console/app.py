"""The console's app: routes, the guard middleware, the broker connection it owns."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

import jinja2
from aiohttp import web
from aiohttp.typedefs import Handler

from leadline.broker import Broker
from worker.dlq_console import guard, views
from worker.dlq_console.settings import ConsoleSettings
from worker.dlq_console.state import BROKER, LOCK, SECRET, SETTINGS, TEMPLATES, USER

log = logging.getLogger("leadline.dlq.console")
HERE = Path(__file__).parent
OPEN_PATHS = frozenset({"/healthz"})  # the container's health check, without the password
STATIC = (HERE / "static" / "console.css").read_bytes()


def create_app(settings: ConsoleSettings) -> web.Application:
    app = web.Application(middlewares=[guarded], client_max_size=256 * 1024)
    app[SETTINGS] = settings
    app[BROKER] = Broker(settings.amqp_url, name="leadline-dlq-console")
    app[SECRET] = guard.new_secret()
    app[TEMPLATES] = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    app[LOCK] = asyncio.Lock()
    app.router.add_get("/", views.index)
    app.router.add_get("/letters/{id}", views.letter)
    app.router.add_post("/letters/{id}/reveal", views.reveal)
    app.router.add_post("/replay", views.replay)
    app.router.add_post("/purge", views.purge)
    app.router.add_get("/healthz", views.healthz)
    app.router.add_get("/static/console.css", stylesheet)
    app.cleanup_ctx.append(_broker)
    return app


async def _broker(app: web.Application) -> AsyncIterator[None]:
    await app[BROKER].start()
    yield
    await app[BROKER].stop()


async def stylesheet(request: web.Request) -> web.Response:
    return web.Response(body=STATIC, content_type="text/css",
                        headers={"Cache-Control": "private, max-age=300"})


@web.middleware
async def guarded(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Basic auth on everything but /healthz, CSRF and origin checks on every POST,
    the security headers on every answer, and a page (never a traceback) for every error."""
    started = time.perf_counter()
    try:
        response = await _guarded(request, handler)
    except views.Problem as problem:
        response = _problem(request, problem)
    except web.HTTPException as exc:  # the router's 404/405, the redirects after a change
        if exc.status < 400:
            response = web.Response(status=exc.status, headers=exc.headers)
        else:
            response = _problem(request, views.Problem(exc.status, exc.reason, "There is no such page here."))
    except Exception:
        log.exception("unhandled error", extra={"path": request.path})
        response = _problem(request, views.Problem(500, "Something went wrong",
                                                   "The console hit an error; its log says more."))
    for name, value in guard.SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if request.path not in OPEN_PATHS:
        log.info("request", extra={"method": request.method, "path": request.path, "status": response.status,
                                   "user": request.get(USER),
                                   "duration_ms": round((time.perf_counter() - started) * 1000, 1)})
    return response


async def _guarded(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path in OPEN_PATHS:
        return await handler(request)
    user = guard.basic_user(request.headers.get("Authorization"), request.app[SETTINGS].token)
    if user is None:
        return web.Response(status=401, text="The dead-letter console needs its password.\n",
                            headers={"WWW-Authenticate": guard.CHALLENGE})
    request[USER] = user
    if request.method not in {"GET", "HEAD"}:
        if not guard.same_origin(request.headers.get("Origin"), request.headers.get("Sec-Fetch-Site"),
                                 request.host):
            raise views.Problem(403, "Refused", "Changes are accepted from the console's own pages only.")
        form = await request.post()
        token = form.get(guard.CSRF_FIELD)
        if not guard.csrf_valid(request.app[SECRET], user, token if isinstance(token, str) else None,
                                time.time()):
            raise views.Problem(403, "Refused: the form has no valid CSRF token",
                                "Reload the page and try again (a form stays valid for 12 hours and "
                                "until the console restarts).")
    return await handler(request)


def _problem(request: web.Request, problem: views.Problem) -> web.Response:
    if USER not in request:  # before authentication: no page that would carry a CSRF token
        return web.Response(status=problem.status, text=f"{problem.title}\n", headers=problem.headers)
    response = views.render(request, "problem.html", status=problem.status, problem=problem)
    response.headers.update(problem.headers)
    return response
