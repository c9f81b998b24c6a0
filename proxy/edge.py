"""The one middleware: security headers, the per-request log line, and the
last line of defence that turns any error into a JSON answer."""

from __future__ import annotations

import logging
import time

from aiohttp import web
from aiohttp.typedefs import Handler

from proxy import responses
from proxy.state import METRICS, REQUEST_LOG

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
