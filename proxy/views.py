"""The HTTP handlers: the submission endpoint and the probes."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from aiohttp import web

from leadline.errors import BrokerUnavailable, PublishNotConfirmed
from leadline.schemas import FieldError
from leadline.tracing import traceparent_of
from proxy import bodies, responses, stamp, texts
from proxy.cors import UNREADABLE, Cors, request_origin
from proxy.ids import submission_id, traceparent
from proxy.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from proxy.ratelimit import client_address, retry_after
from proxy.state import (
    CORS,
    FORMS,
    LIMITER,
    METRICS,
    PUBLISHER,
    READINESS,
    REQUEST_LOG,
    SERVER_SPAN,
    SETTINGS,
    TRACING,
)

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
        verdict = ""
        if settings.spam_stamp != "off":
            verdict = _check_stamp(request, name, sid, log_fields)
        publisher = app[PUBLISHER]
        if not publisher.ready:
            raise Refusal(503, "unavailable", "the queue is unreachable, try again shortly",
                          headers={"Retry-After": UNAVAILABLE_RETRY_AFTER})
        try:
            await publisher.publish(form, data, submission_id=sid, traceparent=trace, parent=span,
                                    stamp=verdict)
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


STAMP_REFUSED = "a valid stamp (X-Leadline-Stamp, a proof of work the form's page makes) is required"


def _check_stamp(request: web.Request, form: str, sid: str, log_fields: dict[str, str]) -> str:
    """The stamp's verdict, counted and logged; with SPAM_STAMP=require, a 422 unless valid."""
    settings = request.app[SETTINGS]
    check = stamp.verify(request.headers.get(stamp.HEADER), form, sid, bits=settings.spam_stamp_bits,
                         max_age=settings.spam_stamp_max_age, now=time.time())
    request.app[METRICS].stamp(check.verdict)
    log_fields["stamp"] = check.reason or check.verdict
    if check.verdict != stamp.VALID and settings.spam_stamp == "require":
        raise Refusal(422, "stamp", "some fields need another look",
                      errors=[FieldError("", STAMP_REFUSED, "stamp")])
    return check.verdict


def thanks_location(template: str, form: str, lang: str | None) -> str:
    """THANKS_PATH for this form and the posting page's language (C3).

    With a language: `{lang}` filled in, or `<lang>/` appended to a path ending in `/`.
    Without one: as before languages, and a `{lang}/` segment left out (the page in
    the site's own language lives there)."""
    path = template.replace("{form}", form)
    if lang is None:
        return path.replace("{lang}/", "").replace("{lang}", texts.FALLBACK)
    if "{lang}" in path:
        return path.replace("{lang}", lang)
    return path + f"{lang}/" if path.endswith("/") else path


def _query_lang(request: web.Request) -> str | None:
    """`?lang=` as one of en, de, zh (anything else: en); None when the query has none."""
    value = request.query.get("lang")
    return None if value is None else texts.lang_of(value)


def _accepted(request: web.Request, sid: str, origin: str | None, headers: dict[str, str],
              is_form: bool) -> web.Response:
    if not is_form:
        return responses.queued(sid, headers)
    if origin is not None and origin != UNREADABLE:
        # Only reached for an allowlisted origin (403 otherwise): never an open redirect.
        path = thanks_location(request.app[SETTINGS].thanks_path, form_name(request), _query_lang(request))
        return responses.see_other(origin + path, headers)
    if _wants_html(request):
        lang = _query_lang(request) or texts.FALLBACK
        return responses.page(202, texts.page_text(lang, "title.202"), texts.page_text(lang, "message.202"),
                              lang=texts.HTML_LANG[lang], headers=headers)
    return responses.queued(sid, headers)


def _refused(request: web.Request, refusal: Refusal, headers: dict[str, str], sid: str | None,
             is_form: bool) -> web.Response:
    if is_form and _wants_html(request):
        return _refusal_page(request, refusal, headers)
    if refusal.status == 422:
        return responses.invalid(refusal.errors, headers)
    return responses.refused(refusal.status, refusal.message, headers, submission_id=sid)


def _refusal_page(request: web.Request, refusal: Refusal, headers: dict[str, str]) -> web.Response:
    """The refusal as a page in the posting page's language, field by field for a 422."""
    lang = _query_lang(request) or texts.FALLBACK
    key = "stamp" if refusal.reason == "stamp" else str(refusal.status)
    form = request.app[FORMS].get(form_name(request))
    items = [] if key == "stamp" else _items(lang, refusal.errors, form.properties if form else {})
    return responses.page(refusal.status, texts.page_text(lang, f"title.{key}"),
                          texts.page_text(lang, f"message.{key}"), items=items, back=_back_link(request),
                          back_text=texts.page_text(lang, "back"), lang=texts.HTML_LANG[lang],
                          headers=headers)


def _items(lang: str, errors: Sequence[FieldError], properties: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(label, problem) per error; English keeps the 422's own words (the schema's, where it has them)."""
    items = []
    for error in errors:
        prop = properties.get(error.field, {}) if error.field else {}
        label = (texts.field_label(lang, error.field, prop) if error.field
                 else texts.page_text(lang, "form"))
        problem = error.message if lang == "en" else texts.field_phrase(lang, error.code, prop)
        items.append((label, problem))
    return items


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
    """Ready: every process of this proxy connected to a node that takes publishes; the body names
    this process's node."""
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
    readiness = request.app[READINESS]
    connected = readiness.connected()
    if connected < readiness.processes:
        # Another process of this proxy would answer its share of submissions 503.
        return responses.json_answer(503, {
            "status": "connecting",
            "message": f"{connected} of {readiness.processes} proxy processes connected to RabbitMQ",
            "node": publisher.broker.node}, {"Retry-After": UNAVAILABLE_RETRY_AFTER})
    return responses.json_answer(200, {"status": "ready", "node": publisher.broker.node})


async def metrics(request: web.Request) -> web.Response:
    return web.Response(body=request.app[METRICS].render(),
                        headers={"Content-Type": METRICS_CONTENT_TYPE})
