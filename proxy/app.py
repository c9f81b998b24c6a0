"""The app factory: the routes, the middleware and the resources the app owns."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping

from aiohttp import web

from leadline.schemas import FormSchema, load_schemas
from leadline.topology import Topology
from leadline.tracing import Tracing
from proxy import openapi, views
from proxy.cors import Cors
from proxy.edge import edge, traced_edge
from proxy.metrics import Metrics, multiprocess_dir
from proxy.publisher import Publisher
from proxy.ratelimit import RateLimiter
from proxy.readiness import Slot, single_process
from proxy.settings import Settings
from proxy.state import CORS, FORMS, LIMITER, METRICS, PUBLISHER, READINESS, SETTINGS, TRACING


def create_app(settings: Settings, *, forms: Mapping[str, FormSchema] | None = None,
               readiness: Slot | None = None) -> web.Application:
    """The proxy; it connects to the broker on start-up and reconnects on its own.

    `readiness` is this process's slot among the proxy's processes (`proxy.readiness`);
    a proxy of one process has a table of its own.
    """
    # Tracing off: the plain middleware, so a request pays nothing for tracing.
    middleware = traced_edge if settings.tracing.enabled else edge
    app = web.Application(middlewares=[middleware], client_max_size=settings.max_body_bytes)
    metrics = Metrics()
    tracing = Tracing(settings.tracing, scope="leadline.proxy")
    app[SETTINGS] = settings
    app[FORMS] = dict(forms or load_schemas())
    app[CORS] = Cors(settings.allowed_origins)
    app[LIMITER] = RateLimiter(settings.rate_limit) if settings.rate_limit else None
    app[METRICS] = metrics
    app[TRACING] = tracing
    app[READINESS] = readiness = readiness or single_process()
    app[PUBLISHER] = Publisher(settings.amqp_url, Topology(prefix=settings.queue_prefix), metrics,
                               timeout=settings.publish_timeout, tracing=tracing,
                               on_state=readiness.set)
    # A plain route per known form: aiohttp finds those in a dict, not by a regex per
    # request; the template route answers the unknown forms (404).
    for name in app[FORMS]:
        app.router.add_post(f"/api/forms/{name}", views.submit)
    app.router.add_post("/api/forms/{form}", views.submit)
    app.router.add_route("OPTIONS", "/api/forms/{form}", views.preflight)
    app.router.add_get("/healthz", views.healthz)
    app.router.add_get("/readyz", views.readyz)
    app.router.add_get("/metrics", views.metrics)
    app.router.add_get("/openapi.json", openapi.handler(app[FORMS], settings))
    app.cleanup_ctx.append(_tracing)
    app.cleanup_ctx.append(_broker)
    app.cleanup_ctx.append(_shared_metrics)
    return app


async def _tracing(app: web.Application) -> AsyncIterator[None]:
    """The exporter starts in the process that serves (after any fork) and flushes on the way out."""
    tracing = app[TRACING].start()
    yield
    await tracing.shutdown()


async def _shared_metrics(app: web.Application) -> AsyncIterator[None]:
    """Sharing metrics with other workers: this one's live gauges kept fresh each second."""
    async def refresh() -> None:
        while True:
            app[METRICS].refresh()
            await asyncio.sleep(1.0)

    task = asyncio.create_task(refresh()) if multiprocess_dir() is not None else None
    yield
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _broker(app: web.Application) -> AsyncIterator[None]:
    """Start the broker's connection loop without waiting for it: /readyz tells when."""
    publisher = app[PUBLISHER]
    await publisher.start()
    yield
    await publisher.stop()
