"""`GET /openapi.json`: the proxy as an OpenAPI 3.1 document, built once at
start from the loaded form schemas, so a tool (schemathesis, a client
generator) sees exactly what this deployment accepts and answers.

One operation per form, `POST /api/forms/<form>`: its JSON body is the form's
schema (plus the honeypot, which a bot fills and people leave out), its
form-encoded body the same fields as an HTML form sends them (every value a
string, read the way `proxy.bodies` reads it), and every answer of the HTTP
table with its body and headers. The probes and this document are described
too. `document()` is pure: the tests read it without a server.

A `format` the proxy asserts less strictly than the standard (jsonschema's
email check asks only for an "@", which the lead schema's pattern already
demands) or not at all is kept as the annotation `x-format`: a tool must not
expect the proxy to refuse what it accepts.
"""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import orjson
from aiohttp import web
from jsonschema import FormatChecker

from leadline.schemas import CODES, HONEYPOT_FIELD, FormSchema
from proxy import bodies
from proxy.cors import ALLOW_HEADERS, ALLOW_METHODS
from proxy.ids import _IDEMPOTENCY_KEY  # the one definition of a well-formed key
from proxy.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from proxy.settings import Settings

OPENAPI_VERSION = "3.1.0"
API_VERSION = "1.0.0"
HTML = "text/html"
# decode_form strips the value and lower-cases it; these words are "true"
# (bodies._TRUE_WORDS), these "false". Python's strip() also takes \x1c-\x1f.
_SPACE = r"[\s\x1c-\x1f]*"
_TRUE = r"[Tt][Rr][Uu][Ee]|[Oo][Nn]|[Yy][Ee][Ss]|1"
_FALSE = r"[Ff][Aa][Ll][Ss][Ee]|[Oo][Ff][Ff]|[Nn][Oo]|0|"

JSONDoc = dict[str, Any]

# What the proxy's validator (leadline.schemas, FormatChecker) holds to the standard.
_LOOSE_FORMATS = frozenset({"email", "idn-email"})
STRICT_FORMATS = frozenset(FormatChecker().checkers) - _LOOSE_FORMATS


def _as_asserted(prop: Mapping[str, Any]) -> JSONDoc:
    """A property with `format` as the proxy asserts it (see the module doc)."""
    out = dict(prop)
    if "format" in out and out["format"] not in STRICT_FORMATS:
        out["x-format"] = out.pop("format")
    return out


def _ref(kind: str, name: str) -> JSONDoc:
    return {"$ref": f"#/components/{kind}/{name}"}


def _json_body(form: FormSchema) -> JSONDoc:
    """The form's schema as the JSON request body; the honeypot may be there, empty."""
    schema = copy.deepcopy(dict(form.schema))
    for key in ("$schema", "$id"):
        schema.pop(key, None)
    schema["properties"] = {name: _as_asserted(prop) for name, prop in schema.get("properties", {}).items()}
    schema["properties"][HONEYPOT_FIELD] = {"enum": [None, ""], "description": "The honeypot: people leave "
                                            "it out or empty (a filled one: see Honeypot)."}
    return schema


def _body(form_schema: str, honeypot: str) -> JSONDoc:
    """A submission either is valid for its form, or fills the honeypot: then any
    object is answered 202 as if queued, and nothing is published."""
    return {"anyOf": [_ref("schemas", form_schema), _ref("schemas", honeypot)]}


def _form_field(prop: Mapping[str, Any], required: bool) -> JSONDoc:
    """One field as an HTML form sends it: a string."""
    kind = prop.get("type")
    described = {k: prop[k] for k in ("title", "description") if k in prop}
    if kind == "boolean":
        must_tick = prop.get("const") is True
        words = _TRUE if must_tick else f"{_TRUE}|{_FALSE}"
        unticked = "" if must_tick else "; false, off, no, 0 or empty when not"
        return {**described, "type": "string", "pattern": f"^{_SPACE}(?:{words}){_SPACE}$",
                "description": f"A checkbox: true, on, yes or 1 (any case) when ticked{unticked}"}
    if kind in ("integer", "number"):
        number = r"[-+]?\d+" if kind == "integer" else r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
        return {**described, "type": "string", "pattern": f"^{_SPACE}{number}{_SPACE}$"}
    field = {k: v for k, v in _as_asserted(prop).items() if k == "x-format" or not k.startswith("x-")}
    # An optional input left empty means "not given" (bodies.decode_form).
    return field if required else {"anyOf": [field, {"const": ""}]}


def _form_body(form: FormSchema) -> JSONDoc:
    required = list(form.schema.get("required", []))
    properties = {name: _form_field(prop, name in required) for name, prop in form.properties.items()}
    properties[HONEYPOT_FIELD] = {"const": "", "description": "The honeypot, empty (a filled one: see "
                                                             "Honeypot.form)."}
    schema: JSONDoc = {"type": "object", "properties": properties, "required": required}
    if form.schema.get("additionalProperties") is False:
        # Inputs the form does not have are refused, unless left empty.
        schema["additionalProperties"] = {"type": "string", "maxLength": 0}
    return schema


def _answer(description: str, schema: str | None = None, *, headers: Mapping[str, bool] | None = None,
            html: bool = False) -> JSONDoc:
    """A response: JSON body `schema`, the named headers (name -> always there?), an HTML page too."""
    answer: JSONDoc = {"description": description}
    if schema is not None:
        content: JSONDoc = {bodies.JSON: {"schema": _ref("schemas", schema)}}
        if html:
            content[HTML] = {"schema": {"type": "string"}}
        answer["content"] = content
    if headers:
        answer["headers"] = {name: {**_ref("headers", name), **({"required": True} if always else {})}
                             for name, always in headers.items()}
    return answer


def _submit(form: FormSchema, settings: Settings) -> JSONDoc:
    title = str(form.schema.get("title") or form.name)
    limit = settings.max_body_bytes
    key = {"Idempotency-Key": True}
    maybe_key = {"Idempotency-Key": False}
    return {
        "operationId": f"submit_{form.name}",
        "summary": f"Send the {form.name!r} form: {title}",
        "description": (
            "Validated against the form's schema, published to the broker, and answered 202 "
            "only once the broker confirmed it. Send the same Idempotency-Key again to retry "
            "safely: the submission id travels to the CRM, which writes it once."),
        "tags": ["forms"],
        "parameters": [_ref("parameters", "IdempotencyKey"), _ref("parameters", "Traceparent"),
                       _ref("parameters", "Stamp"), _ref("parameters", "Lang")],
        "requestBody": {"required": True, "content": {
            bodies.JSON: {"schema": _body(form.name, "Honeypot")},
            bodies.FORM: {"schema": _body(f"{form.name}.form", "Honeypot.form")},
        }},
        "responses": {
            "202": _answer("Queued: the broker confirmed it (or the honeypot was filled). A form-encoded "
                           "post with no origin to return to, asking for HTML, gets a page.",
                           "Queued", headers=key, html=True),
            "303": {"description": "Queued, from a plain HTML form: to the thank-you page "
                                   f"({settings.thanks_path}) on the posting origin, which is allowlisted; "
                                   "with `lang`, the page in that language.",
                    "headers": {"Location": {"required": True, "schema": {"type": "string"}},
                                **{n: {**_ref("headers", n), "required": True} for n in key}}},
            "400": _answer("The body is not JSON (or not a form-encoded UTF-8 body), or the "
                           "Idempotency-Key is malformed.", "Error", headers=maybe_key, html=True),
            "403": _answer("The Origin (or Referer) is not allowed to post.", "Error", html=True),
            "404": _answer("No form of this name is loaded (the page was built against another "
                           "schema folder).", "Error", html=True),
            "408": _answer("The body was still arriving after "
                           f"{bodies.BODY_TIMEOUT:g} s.", "Error", headers=key, html=True),
            "413": _answer(f"The body is larger than {limit} bytes (MAX_BODY_BYTES).", "Error",
                           headers=key, html=True),
            "415": _answer("Neither application/json nor application/x-www-form-urlencoded.", "Error",
                           headers=key, html=True),
            "422": _answer("Not valid against the form's schema: every problem, field by field. With "
                           "SPAM_STAMP=require" + (" (as here)" if settings.spam_stamp == "require" else "")
                           + ", a valid submission without a valid X-Leadline-Stamp gets one error "
                           '{"field": "", "code": "stamp"}: make a fresh stamp and send it again.',
                           "Invalid", headers=key, html=True),
            "429": _answer("Too many submissions from this client (RATE_LIMIT).", "Error",
                           headers={"Retry-After": True}, html=True),
            "503": _answer("The broker is unreachable, blocked, or did not confirm within "
                           "PUBLISH_TIMEOUT: nothing was accepted, send it again later.", "Error",
                           headers={"Retry-After": True, "Idempotency-Key": True}, html=True),
        },
    }


def _preflight(form: FormSchema) -> JSONDoc:
    cors = {name: {"schema": {"type": "string"}, "required": True} for name in (
        "Access-Control-Allow-Methods", "Access-Control-Allow-Headers", "Access-Control-Max-Age", "Allow")}
    return {
        "operationId": f"preflight_{form.name}",
        "summary": "The CORS preflight a browser sends before posting from another origin",
        "tags": ["forms"],
        "responses": {
            "204": {"description": f"Allowed: {ALLOW_METHODS}, with the headers {ALLOW_HEADERS}.",
                    "headers": cors},
            "403": _answer("The Origin is not allowed to post.", "Error"),
        },
    }


def _probe(summary: str, answers: JSONDoc) -> JSONDoc:
    return {"get": {"summary": summary, "tags": ["operations"], "responses": answers}}


SCHEMAS: JSONDoc = {
    "Queued": {"type": "object", "required": ["status", "id"], "properties": {
        "status": {"const": "queued"},
        "id": {"type": "string", "description": "The submission id: the Idempotency-Key, or a new one."}}},
    "Invalid": {"type": "object", "required": ["status", "errors"], "properties": {
        "status": {"const": "invalid"},
        "errors": {"type": "array", "items": {"type": "object", "required": ["field", "code", "message"],
                                              "properties": {
            "field": {"type": "string", "description": "The property; empty for the whole submission."},
            "code": {"enum": list(CODES), "description": "A stable name of the rule (after the JSON "
                     "Schema keyword), so a page can say it in its own language."},
            "message": {"type": "string", "description": "The problem in plain English."}}}}}},
    "Error": {"type": "object", "required": ["status", "message"], "properties": {
        "status": {"type": "string", "description": "A short word to branch on, e.g. rate_limited."},
        "message": {"type": "string"},
        "id": {"type": "string", "description": "The submission id, when the request had a usable one."}}},
    "Honeypot": {
        "type": "object", "required": [HONEYPOT_FIELD],
        "properties": {HONEYPOT_FIELD: {"not": {"enum": [None, ""]}}},
        "description": "A bot's submission: it filled the field people never see. Answered 202 "
                       "as if queued, whatever else it holds; nothing is published."},
    "Honeypot.form": {
        "type": "object", "required": [HONEYPOT_FIELD],
        "properties": {HONEYPOT_FIELD: {"type": "string", "minLength": 1}},
        "description": "A bot's form-encoded submission (see Honeypot)."},
    "Status": {"type": "object", "required": ["status"], "properties": {"status": {"type": "string"}}},
}
HEADERS: JSONDoc = {
    "Idempotency-Key": {"description": "The submission id this answer is about.",
                        "schema": {"type": "string"}},
    "Retry-After": {"description": "Seconds to wait before sending it again.",
                    "schema": {"type": "string", "pattern": r"^\d+$"}},
}
PARAMETERS: JSONDoc = {
    "IdempotencyKey": {
        "name": "Idempotency-Key", "in": "header", "required": False,
        "description": "The submission id, chosen by the client (a UUID, say) so that a retry is "
                       "recognised end to end; without one the proxy makes one up.",
        "schema": {"type": "string", "pattern": f"^{_IDEMPOTENCY_KEY.pattern}$"}},
    "Traceparent": {
        "name": "traceparent", "in": "header", "required": False,
        "description": "W3C trace context (00-<trace id>-<span id>-<flags>), carried to the CRM call. "
                       "A missing or malformed one is replaced, never refused.",
        "schema": {"type": "string"}},
    "Stamp": {
        "name": "X-Leadline-Stamp", "in": "header", "required": False,
        "description": "A proof of work the form's page makes after the thank-you: "
                       "`1:<bits>:<ts>:<nonce>`, valid when SHA-256 of `1:<bits>:<ts>:<form>:"
                       "<Idempotency-Key>:<nonce>` starts with <bits> zero bits (at least SPAM_STAMP_BITS), "
                       "ts no older than SPAM_STAMP_MAX_AGE and at most 600 s ahead. SPAM_STAMP=flag: the "
                       "verdict (valid, missing, invalid) travels with the lead; require: 422 with code "
                       "`stamp` unless valid; off: not looked at.",
        "schema": {"type": "string"}},
    "Lang": {
        "name": "lang", "in": "query", "required": False,
        "description": "The posting page's language, for the pages a form post without JavaScript "
                       "gets (the error page, the 202 page, the thank-you page redirected to): en, de "
                       "or zh; any other value is English.",
        "schema": {"type": "string"}},
}


def document(forms: Mapping[str, FormSchema], settings: Settings) -> JSONDoc:
    """The whole OpenAPI document for these forms and settings."""
    paths: JSONDoc = {}
    schemas: JSONDoc = copy.deepcopy(SCHEMAS)
    for name in sorted(forms):
        form = forms[name]
        paths[f"/api/forms/{name}"] = {"post": _submit(form, settings), "options": _preflight(form)}
        schemas[name] = _json_body(form)
        schemas[f"{name}.form"] = _form_body(form)
    status = {bodies.JSON: {"schema": _ref("schemas", "Status")}}
    paths["/healthz"] = _probe("Liveness: the process answers", {
        "200": {"description": "Alive.", "content": status}})
    paths["/readyz"] = _probe("Readiness: every process of the proxy connected to the broker", {
        "200": {"description": "Connected.", "content": status},
        "503": _answer("Not connected to RabbitMQ, blocked by a resource alarm, or another of the "
                       "proxy's processes not connected yet.", "Error", headers={"Retry-After": True})})
    paths["/metrics"] = _probe("Prometheus metrics", {
        "200": {"description": "Prometheus text format.",
                "content": {METRICS_CONTENT_TYPE.split(";")[0]: {"schema": {"type": "string"}}}}})
    paths["/openapi.json"] = _probe("This document", {
        "200": {"description": "OpenAPI 3.1.", "content": {bodies.JSON: {"schema": {"type": "object"}}}}})
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": "Leadline edge proxy", "version": API_VERSION,
                 "description": "Lead submissions from static sites: validated, then queued with a "
                                "broker confirm before any 202."},
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "tags": [{"name": "forms", "description": "One operation per form schema."},
                 {"name": "operations", "description": "Probes and metrics."}],
        "paths": paths,
        "components": {"schemas": schemas, "headers": HEADERS, "parameters": PARAMETERS},
    }


def handler(forms: dict[str, FormSchema], settings: Settings
            ) -> Callable[[web.Request], Awaitable[web.Response]]:
    """`GET /openapi.json`, serialized once: the schemas do not change while the proxy runs."""
    body = orjson.dumps(document(forms, settings))

    async def openapi(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type=bodies.JSON)

    return openapi
