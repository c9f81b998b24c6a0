"""The HTTP handlers: the submission endpoint and the probes."""

from __future__ import annotations

from aiohttp import web

from leadline.errors import BrokerUnavailable, PublishNotConfirmed
from leadline.schemas import FieldError
from leadline.tracing import traceparent_of
from proxy import bodies, responses
from proxy.cors import UNREADABLE, Cors, request_origin
from proxy.ids import submission_id, traceparent
from proxy.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from proxy.ratelimit import client_address, retry_after
from proxy.state import CORS, FORMS, LIMITER, METRICS, PUBLISHER, REQUEST_LOG, SERVER_SPAN, SETTINGS, TRACING

# How long a client should wait before retrying while the broker is away: the
# reconnect loop's backoff reaches its longest step (5 s) by then.
UNAVAILABLE_RETRY_AFTER = "5"


class Refusal(Exception):
    """A submission answered with an error status; the reason feeds the metrics."""

    def __init__(self, status: int, reason: str, message: str, *,
                 headers: dict[str, str] | None = None, errors: list[FieldError] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message
        self.headers = headers or {}
        self.errors = errors or []


def form_name(request: web.Request) -> str:
    """The form a request posts to: `/api/forms/{form}`, or a form's own plain route."""
    return request.match_info.get("form") or request.path.rsplit("/", 1)[-1]


async def submit(request: web.Request) -> web.Response:
    """`POST /api/forms/{form}`: the HTTP table in docs/architecture.md, top to bottom."""
    app = request.app
    headers = request.headers
    name = form_name(request)
    # Read before any refusal so that every request's log line carries them.
    sid = submission_id(headers.get("Idempotency-Key"))
    # Tracing on: the SERVER span continues the browser's trace (or starts one), and
    # the trace id logged is the span's. Off: the browser's traceparent, or a new one.
    # (Only asked when tracing is on: a missing key costs an exception on every request.)
    span = request.get(SERVER_SPAN) if app[TRACING].enabled else None
    trace = (traceparent_of(span) if span is not None else None) or traceparent(headers.get("traceparent"))
    log_fields = request[REQUEST_LOG] = {"form": name, "trace_id": trace[3:35]}
    if sid is not None:
        log_fields["id"] = sid
    origin_header = headers.get("Origin")
    origin = request_origin(origin_header, headers.get("Referer"))
    is_form = request.content_type == bodies.FORM
    answer_headers: dict[str, str] = {}
    try:
        form = app[FORMS].get(name)
        if form is None:
            raise Refusal(404, "not_found", f"there is no form named {name!r}")
        if not app[CORS].allows(origin):
            raise Refusal(403, "forbidden", "this origin may not post to this form")
        answer_headers = Cors.response_headers(origin_header)
        settings = app[SETTINGS]
        limiter = app[LIMITER]
        if limiter is not None:
            client = client_address(request.remote, headers.get("X-Forwarded-For"),
                                    settings.trusted_proxies)
            wait = limiter.take(client)
            if wait:
                raise Refusal(429, "rate_limited", "too many submissions, try again later",
                              headers={"Retry-After": retry_after(wait)})
        if sid is None:
            raise Refusal(400, "bad_key", "Idempotency-Key must be a UUID or 8-128 characters "
                          "of letters, digits and _ . : -")
        answer_headers["Idempotency-Key"] = sid
        if not is_form and request.content_type != bodies.JSON:
            raise Refusal(415, "unsupported_type", "send application/json or "
                          "application/x-www-form-urlencoded")
        try:
            body = await bodies.read_capped(request.content, request.content_length,
                                            settings.max_body_bytes)
            data = bodies.decode_form(body, form) if is_form else bodies.decode_json(body)
        except bodies.BodyError as exc:
            reason = {413: "too_large", 408: "too_slow"}.get(exc.status, "malformed")
            raise Refusal(exc.status, reason, exc.message) from None
        if bodies.honeypot_filled(data):
            log_fields["reason"] = "honeypot"
            app[METRICS].refuse("honeypot")
            return _accepted(request, sid, origin, answer_headers, is_form)
        errors = form.problems(data)
        if errors:
            raise Refusal(422, "invalid", "some fields need another look", errors=errors)
        if not isinstance(data, dict):  # a schema may allow more; a lead is fields
            raise Refusal(422, "invalid", "some fields need another look",
                          errors=[FieldError("", "the submission must be a JSON object of fields", "type")])
        publisher = app[PUBLISHER]
        if not publisher.ready:
            raise Refusal(503, "unavailable", "the queue is unreachable, try again shortly",
                          headers={"Retry-After": UNAVAILABLE_RETRY_AFTER})
        try:
            await publisher.publish(form, data, submission_id=sid, traceparent=trace, parent=span)
        except BrokerUnavailable:
            raise Refusal(503, "unavailable", "the queue is unreachable, try again shortly",
                          headers={"Retry-After": UNAVAILABLE_RETRY_AFTER}) from None
        except PublishNotConfirmed:
            raise Refusal(503, "not_confirmed", "the queue did not confirm, try again shortly",
                          headers={"Retry-After": UNAVAILABLE_RETRY_AFTER}) from None
        app[METRICS].accept(name)
        return _accepted(request, sid, origin, answer_headers, is_form)
    except Refusal as refusal:
        log_fields["reason"] = refusal.reason
        app[METRICS].refuse(refusal.reason)
        return _refused(request, refusal, {**answer_headers, **refusal.headers}, sid, is_form)


def _accepted(request: web.Request, sid: str, origin: str | None, headers: dict[str, str],
              is_form: bool) -> web.Response:
    if not is_form:
        return responses.queued(sid, headers)
    if origin is not None and origin != UNREADABLE:
        # Only reached for an allowlisted origin (403 otherwise): never an open redirect.
        path = request.app[SETTINGS].thanks_path.replace("{form}", form_name(request))
        return responses.see_other(origin + path, headers)
    if _wants_html(request):
        return responses.page(202, "We have your message and will get back to you soon.",
                              headers=headers, title="Thank you")
    return responses.queued(sid, headers)


def _refused(request: web.Request, refusal: Refusal, headers: dict[str, str], sid: str | None,
             is_form: bool) -> web.Response:
    if is_form and _wants_html(request):
        return responses.page(refusal.status, refusal.message, errors=refusal.errors,
                              back=_back_link(request), headers=headers)
    if refusal.status == 422:
        return responses.invalid(refusal.errors, headers)
    return responses.refused(refusal.status, refusal.message, headers, submission_id=sid)


def _wants_html(request: web.Request) -> bool:
    return "text/html" in request.headers.get("Accept", "")


def _back_link(request: web.Request) -> str | None:
    """The page the form was on, when it is on an allowed origin."""
    referer = request.headers.get("Referer")
    if referer and request.app[CORS].allows(request_origin(None, referer)):
        return referer
    return None


async def preflight(request: web.Request) -> web.Response:
    """`OPTIONS /api/forms/{form}`: the CORS preflight."""
    request[REQUEST_LOG] = {"form": form_name(request)}
    origin_header = request.headers.get("Origin")
    if not request.app[CORS].allows(request_origin(origin_header, None)):
        request.app[METRICS].refuse("forbidden")
        return responses.refused(403, "this origin may not post to this form")
    return web.Response(status=204, headers=Cors.preflight_headers(origin_header))


async def healthz(request: web.Request) -> web.Response:
    return responses.json_answer(200, {"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Ready: connected to a node that takes publishes; the body names the node."""
    publisher = request.app[PUBLISHER]
    if not publisher.ready:
        return responses.refused(503, "not connected to RabbitMQ",
                                 {"Retry-After": UNAVAILABLE_RETRY_AFTER})
    if publisher.blocked:
        return responses.json_answer(503, {
            "status": "blocked",
            "message": "RabbitMQ is blocking publishers (a memory or disk alarm): "
                       "submissions are answered 503 until it clears",
            "node": publisher.broker.node}, {"Retry-After": UNAVAILABLE_RETRY_AFTER})
    return responses.json_answer(200, {"status": "ready", "node": publisher.broker.node})


async def metrics(request: web.Request) -> web.Response:
    return web.Response(body=request.app[METRICS].render(),
                        headers={"Content-Type": METRICS_CONTENT_TYPE})
