"""The one middleware: security headers, the per-request log line, and the
last line of defence that turns any error into a JSON answer.

With tracing on, `traced_edge` takes its place: the same, inside a SERVER span
whose parent is the browser's `traceparent` (the app picks one of the two when
it is built, so with tracing off a request pays nothing for it). Probes and
scrapes get no span: they would bury the submissions in the tracing backend.
"""

from __future__ import annotations

import logging
import time

from aiohttp import web
from aiohttp.typedefs import Handler

from leadline import tracing
from proxy import responses
from proxy.state import METRICS, REQUEST_LOG, SERVER_SPAN, TRACING

log = logging.getLogger("leadline.proxy.access")
errors_log = logging.getLogger("leadline.proxy")

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
# Probes and scrapes run every few seconds; their lines are noise at INFO.
QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


@web.middleware
async def edge(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    try:
        response = await handler(request)
    except web.HTTPException as exc:  # the router's 404 and 405
        extra = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        response = responses.refused(exc.status, exc.reason, extra)
    except Exception:
        # A bug, never the client's fault: answer in the API's shape and say so in the log.
        errors_log.exception("unhandled error", extra={"path": request.path})
        request.app[METRICS].refuse("internal")
        response = responses.refused(500, "internal error")
    response.headers.update(SECURITY_HEADERS)
    level = logging.DEBUG if request.path in QUIET_PATHS else logging.INFO
    if log.isEnabledFor(level):
        fields = request.get(REQUEST_LOG) or {}
        log.log(level, "request", extra={
            "method": request.method, "path": request.path, "status": response.status,
            "duration_ms": round((time.perf_counter() - started) * 1000, 2), **fields,
        })
    return response


# Log fields the handler collects that are safe span attributes (ids and names, no personal data).
SPAN_FIELDS = (("form", "leadline.form"), ("id", "leadline.submission_id"), ("reason", "leadline.refused"))


@web.middleware
async def traced_edge(request: web.Request, handler: Handler) -> web.StreamResponse:
    path = request.path
    if path in QUIET_PATHS:
        return await edge(request, handler)
    resource = request.match_info.route.resource
    url = request.url
    version = request.version
    span = request.app[TRACING].server_span(
        request.method, route=resource.canonical if resource is not None else None, path=path,
        traceparent=request.headers.get("traceparent"), scheme=url.scheme, server_address=url.host,
        server_port=url.port, protocol_version=f"{version.major}.{version.minor}")
    request[SERVER_SPAN] = span
    try:
        response = await edge(request, handler)  # it answers every Exception itself
    except BaseException as exc:  # cancelled: the client went away mid-request
        _describe(request, span)
        tracing.fail(span, type(exc).__name__)
        span.end()
        raise
    _describe(request, span)
    tracing.finish_server(span, response.status)
    return response


def _describe(request: web.Request, span: tracing.Span) -> None:
    fields = request.get(REQUEST_LOG)
    if fields and span.is_recording():
        for field, attribute in SPAN_FIELDS:
            value = fields.get(field)
            if value is not None:
                span.set_attribute(attribute, value)
