"""Typed keys for what the app and each request carry."""

from __future__ import annotations

from aiohttp import web
from opentelemetry.trace import Span

from leadline.schemas import FormSchema
from leadline.tracing import Tracing
from proxy.cors import Cors
from proxy.metrics import Metrics
from proxy.publisher import Publisher
from proxy.ratelimit import RateLimiter
from proxy.readiness import Slot
from proxy.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
FORMS = web.AppKey("forms", dict[str, FormSchema])
CORS = web.AppKey("cors", Cors)
LIMITER: web.AppKey[RateLimiter | None] = web.AppKey("limiter")
METRICS = web.AppKey("metrics", Metrics)
PUBLISHER = web.AppKey("publisher", Publisher)
READINESS = web.AppKey("readiness", Slot)  # this process's, among the proxy's processes
TRACING = web.AppKey("tracing", Tracing)

# What the handler learned about a request (form, submission id, trace id),
# for the one log line the edge middleware writes.
REQUEST_LOG = web.RequestKey("request_log", dict[str, str])
# The request's SERVER span, set only while tracing is on (see proxy.edge).
SERVER_SPAN = web.RequestKey("server_span", Span)
