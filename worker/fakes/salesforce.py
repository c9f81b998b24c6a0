"""A fake of Salesforce's REST API for Leads, for tests and demos.

`create_app(config, seed=)` builds it; `app[STATE]` is the live state.
Endpoints under `/services/data/<api_version>/`: `PATCH sobjects/Lead/<field>/
<value>`, `PATCH composite/sobjects/Lead/<field>`, `PATCH`/`GET sobjects/Lead/
<Id>`, `GET sobjects/Lead/describe`, `GET limits`, `GET query?q=`; and
`POST /services/oauth2/token`.

Documented (Salesforce's REST API guide and field reference; sources in the
project's research notes):
- `Authorization: Bearer <access token>`; 401 `INVALID_SESSION_ID`. Error
  bodies are JSON arrays of `{message, errorCode, fields}`.
- Upsert `PATCH sobjects/Lead/<external id field>/<value>`: no match creates
  (201), one match updates (200), several matches answer 300 with the
  matching records' URLs and change nothing. The external-id field must not
  be in the body. `?updateOnly=true` never creates.
- `PATCH composite/sobjects/Lead/<field>`: up to 200 records, each with
  `attributes.type`; 200 with one result per record in record order;
  `allOrNone` rolls everything back when one fails.
- Lead requires LastName and Company; Description is a 32k textarea.
- No 429 and no Retry-After, ever: the org's 24-hour allocation is the limit,
  `Sforce-Limit-Info: api-usage=<used>/<max>` on every answer, and 403
  `REQUEST_LIMIT_EXCEEDED` once it is spent.
- OAuth refresh-token flow at `POST /services/oauth2/token` (form body);
  `invalid_grant` for a bad refresh token, `invalid_client_id` /
  `invalid_client` for a bad client id / secret, `unsupported_grant_type`;
  `signature` is base64 HMAC-SHA256 of `id + issued_at` keyed by the secret.
- SOQL string comparisons are case-insensitive; field names too.

Assumed (the documentation is silent; the stricter choice):
- The same external id twice in one collection call: both records fail with
  `DUPLICATE_EXTERNAL_ID`; a record whose external id matches several
  records fails with `DUPLICATE_EXTERNAL_ID` too.
- External-id values match exactly (case-sensitive).
- A collection record without its external id fails with `MISSING_ARGUMENT`;
  a record without `attributes.type` (or another type) fails the whole call
  with 400 `INVALID_TYPE`.
- A wrong JSON type for a field is `INVALID_TYPE_ON_FIELD_IN_RECORD`; an empty
  string in a required field counts as missing.
- The org's validation rule refusing `reject_domain` answers
  `FIELD_CUSTOM_VALIDATION_EXCEPTION` with `fields: ["Email"]`.
- `rate_limit` (off by default) stands for the concurrent-request limit: over
  it, 403 `REQUEST_LIMIT_EXCEEDED` ("ConcurrentRequests ... Limit exceeded"),
  never 429. Token requests count against neither limit.
- The API version in the path must be exactly `api_version`, else 404.
- `query` understands one shape, `SELECT Id FROM Lead WHERE <field> =
  '<value>' [ORDER BY CreatedDate [ASC|DESC]]`; others are MALFORMED_QUERY,
  an unknown field in it INVALID_FIELD.
- Token requests need no bearer token and get no `Sforce-Limit-Info`; a 401
  carries none either (no org is known).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from aiohttp import web

from leadline.config import Rate
from worker.fakes.common import (
    FakeState,
    Handler,
    Knobs,
    Refusal,
    count,
    email_domain,
    is_email,
    json_response,
    new_app,
    read_json,
    string_set,
    text,
)

EXTERNAL_ID_FIELD = "Leadline_Submission_Id__c"
COLLECTION_LIMIT = 200
ID_PREFIX = "00Q"
EXTERNAL_ID_MODES = ("unique", "non-unique", "absent")
STATUS_DEFAULT = "Open - Not Contacted"
TEXT_TYPES = {"id", "string", "textarea", "email", "picklist", "phone", "url", "datetime", "reference"}
_VERSION = re.compile(r"^v\d+\.\d$")
_QUERY = re.compile(
    r"^\s*SELECT\s+Id\s+FROM\s+Lead\s+WHERE\s+(\w+)\s*=\s*'((?:[^'\\]|\\.)*)'"
    r"(?:\s+ORDER\s+BY\s+CreatedDate(?:\s+(ASC|DESC))?)?\s*$", re.IGNORECASE)
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", '"': '"', "'": "'", "\\": "\\"}
Snapshot = tuple[dict[str, dict[str, Any]], int, dict[str, int], dict[str, int]]
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


@dataclass(frozen=True)
class FieldDef:
    type: str
    length: int = 0
    nillable: bool = True
    external_id: bool = False
    unique: bool = False
    createable: bool = True
    updateable: bool = True
    defaulted_on_create: bool = False

    def as_json(self, name: str = "") -> dict[str, Any]:
        return {"name": name, "type": self.type, "length": self.length, "nillable": self.nillable,
                "externalId": self.external_id, "unique": self.unique, "createable": self.createable,
                "updateable": self.updateable, "defaultedOnCreate": self.defaulted_on_create}

    @classmethod
    def from_json(cls, data: Any) -> FieldDef:
        if isinstance(data, FieldDef):
            return data
        if not isinstance(data, Mapping) or not isinstance(data.get("type"), str):
            raise ValueError(f"a field definition is an object with a type, got {data!r}")
        names = {"type": "type", "length": "length", "nillable": "nillable", "externalId": "external_id",
                 "external_id": "external_id", "unique": "unique", "createable": "createable",
                 "updateable": "updateable", "defaultedOnCreate": "defaulted_on_create",
                 "defaulted_on_create": "defaulted_on_create", "name": ""}
        unknown = set(data) - set(names)
        if unknown:
            raise ValueError(f"unknown field attribute {sorted(unknown)[0]!r}")
        values = {names[k]: v for k, v in data.items() if names[k]}
        length = values.get("length", 0)
        if isinstance(length, bool) or not isinstance(length, int) or length < 0:
            raise ValueError("a field's length is a whole number")
        if not all(isinstance(v, bool) for k, v in values.items() if k not in {"type", "length"}):
            raise ValueError("a field's flags are true or false")
        return cls(**values)


def default_fields() -> dict[str, FieldDef]:
    """The Lead fields a web form touches, and the custom external id."""
    return {
        "Id": FieldDef("id", 18, nillable=False, createable=False, updateable=False),
        "FirstName": FieldDef("string", 40),
        "LastName": FieldDef("string", 80, nillable=False),
        "Company": FieldDef("string", 255, nillable=False),
        "Email": FieldDef("email", 80),
        "Description": FieldDef("textarea", 32000),
        "LeadSource": FieldDef("picklist", 255),
        "HasOptedOutOfEmail": FieldDef("boolean", nillable=False, defaulted_on_create=True),
        "Status": FieldDef("picklist", 255, nillable=False, defaulted_on_create=True),
        "CreatedDate": FieldDef("datetime", nillable=False, createable=False, updateable=False,
                                defaulted_on_create=True),
        "LastModifiedDate": FieldDef("datetime", nillable=False, createable=False, updateable=False,
                                     defaulted_on_create=True),
        EXTERNAL_ID_FIELD: FieldDef("string", 36, external_id=True, unique=True),
    }


def _fields(name: str, value: Any) -> dict[str, FieldDef]:
    if not isinstance(value, Mapping) or not all(isinstance(k, str) and k for k in value):
        raise ValueError(f"{name} is an object of field name -> definition")
    defs = {k: FieldDef.from_json(v) for k, v in value.items()}
    if "Id" not in defs:
        raise ValueError(f"{name} must keep Id")
    return defs


def _mode(name: str, value: Any) -> str:
    if value not in EXTERNAL_ID_MODES:
        raise ValueError(f"{name} is one of {', '.join(EXTERNAL_ID_MODES)}, got {value!r}")
    return str(value)


def _version(name: str, value: Any) -> str:
    if not isinstance(value, str) or not _VERSION.match(value):
        raise ValueError(f"{name} looks like v61.0, got {value!r}")
    return value


@dataclass(frozen=True)
class SalesforceConfig(Knobs):
    rate_limit: Rate | None = None
    api_version: str = "v61.0"
    daily_limit: int = 15_000
    client_id: str = "test-client-id"
    client_secret: str = "test-client-secret"  # noqa: S105 - the fake's own test credentials
    refresh_token: str = "test-refresh-token"  # noqa: S105
    fields: Mapping[str, FieldDef] = field(default_factory=default_fields)
    #: what the org did with Leadline_Submission_Id__c: External ID + Unique,
    #: External ID without Unique, or never created it
    external_id: str = "unique"
    #: external-id values that already sit on two Leads each (needs "non-unique")
    duplicate_external_ids: frozenset[str] = frozenset()

    def effective_fields(self) -> dict[str, FieldDef]:
        defs = dict(self.fields)
        if self.external_id == "absent":
            defs.pop(EXTERNAL_ID_FIELD, None)
        elif self.external_id == "non-unique" and EXTERNAL_ID_FIELD in defs:
            defs[EXTERNAL_ID_FIELD] = replace(defs[EXTERNAL_ID_FIELD], unique=False)
        return defs


@dataclass(frozen=True)
class Refused:
    """One Salesforce error: `{errorCode | statusCode, message, fields}`."""

    code: str
    message: str
    fields: tuple[str, ...] = ()

    def top(self) -> dict[str, Any]:
        return {"message": self.message, "errorCode": self.code, "fields": self.fields}

    def per_record(self) -> dict[str, Any]:
        return {"statusCode": self.code, "message": self.message, "fields": self.fields}


class Rejected(Exception):
    """A write Salesforce refuses, with every reason."""

    def __init__(self, *problems: Refused) -> None:
        super().__init__(problems[0].message)
        self.problems = problems


def _checksum(base: str) -> str:
    """The 3-character suffix that makes a 15-character id case-insensitively unique."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
    out = ""
    for chunk in range(3):
        bits = sum(1 << i for i, ch in enumerate(base[chunk * 5:chunk * 5 + 5]) if "A" <= ch <= "Z")
        out += alphabet[bits]
    return out


def record_id(serial: int) -> str:
    digits = ""
    for _ in range(7):
        serial, digit = divmod(serial, 62)
        digits = _BASE62[digit] + digits
    base = f"{ID_PREFIX}Fk000{digits}"
    return base + _checksum(base)


def _sf_time() -> str:
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}+0000"


class SalesforceState(FakeState[SalesforceConfig]):
    parsers = {"api_version": _version, "daily_limit": count, "client_id": text, "client_secret": text,
               "refresh_token": text, "fields": _fields, "external_id": _mode,
               "duplicate_external_ids": string_set}
    leads: dict[str, dict[str, Any]]
    serial: int
    index: dict[str, dict[Any, list[str]]]  # external-id / unique field -> value -> Ids

    def check(self, config: SalesforceConfig) -> None:
        if config.duplicate_external_ids:
            ext = config.effective_fields().get(EXTERNAL_ID_FIELD)
            if ext is None or not ext.external_id or ext.unique:
                raise ValueError("duplicate_external_ids needs external_id 'non-unique': "
                                 "a unique external id cannot sit on two records")

    def clear_records(self) -> None:
        self.leads = {}
        self.serial = 1
        self.index = {}

    def seed_records(self) -> None:
        self.reindex()  # the fields may have changed with the config
        for value in sorted(self.config.duplicate_external_ids):
            while len(self.matching(EXTERNAL_ID_FIELD, value)) < 2:
                self._insert({"LastName": "Seeded duplicate", "Company": "Seeded", EXTERNAL_ID_FIELD: value})

    def records_json(self) -> Any:
        return {"leads": list(self.leads.values())}

    def stored(self) -> dict[str, int]:
        return {"leads": len(self.leads)}

    def daily_limit(self) -> int | None:
        return self.config.daily_limit

    @property
    def fields(self) -> dict[str, FieldDef]:
        return self.config.effective_fields()

    # --- the vendor's answers ---

    def authorized(self, request: web.Request) -> bool:
        return request.headers.get("Authorization", "") == f"Bearer {self.config.token}"

    def unauthorized(self) -> web.Response:
        return json_response([{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}],
                             401)

    def refused(self, refusal: Refusal, now: float) -> web.Response:
        message = ("TotalRequests Limit exceeded." if refusal is Refusal.DAILY
                   else "ConcurrentRequests (Concurrent API Requests) Limit exceeded.")
        return json_response([{"message": message, "errorCode": "REQUEST_LIMIT_EXCEEDED"}], 403)

    def unavailable(self, status: int) -> web.Response:
        return json_response([{"message": "Server unavailable", "errorCode": "SERVER_UNAVAILABLE"}], status)

    def http_error(self, exc: web.HTTPException) -> web.Response:
        if exc.status == 404:
            return not_found()
        code = {405: "METHOD_NOT_ALLOWED", 413: "REQUEST_ENTITY_TOO_LARGE"}.get(exc.status, "INVALID_REQUEST")
        return json_response([{"message": exc.reason, "errorCode": code}], exc.status)

    def records_in(self, handler: Handler, body: Any) -> int:
        if handler is upsert_many:
            records = body.get("records") if isinstance(body, dict) else None
            return len(records) if isinstance(records, list) else 0
        return 1

    def limit_headers(self, now: float) -> dict[str, str]:
        return {"Sforce-Limit-Info": f"api-usage={self.daily_used}/{self.config.daily_limit}"}

    # --- the records ---

    def url(self, lead_id: str) -> str:
        return f"/services/data/{self.config.api_version}/sobjects/Lead/{lead_id}"

    def matching(self, name: str, value: Any) -> list[str]:
        """The Ids of the Leads whose `name` is exactly `value`."""
        by_value = self.index.get(name)
        if by_value is not None and isinstance(value, str | int | float | bool):
            return list(by_value.get(value, ()))
        return [i for i, lead in self.leads.items() if lead.get(name) == value]

    def reindex(self) -> None:
        self.index = {name: {} for name, spec in self.fields.items() if spec.external_id or spec.unique}
        for lead in self.leads.values():
            self._index(lead, add=True)

    def _index(self, lead: Mapping[str, Any], *, add: bool) -> None:
        for name, by_value in self.index.items():
            value = lead.get(name)
            if value is None or not isinstance(value, str | int | float | bool):
                continue
            if add:
                by_value.setdefault(value, []).append(lead["Id"])
            else:
                by_value[value].remove(lead["Id"])
                if not by_value[value]:
                    del by_value[value]

    def _insert(self, values: Mapping[str, Any]) -> str:
        lead_id = record_id(self.serial)
        self.serial += 1
        fields = self.fields
        lead: dict[str, Any] = dict.fromkeys(fields)
        defaults = {"HasOptedOutOfEmail": False, "Status": STATUS_DEFAULT}
        lead.update({name: value for name, value in defaults.items() if name in fields})
        lead.update(values)
        lead.update({"Id": lead_id, "CreatedDate": _sf_time(), "LastModifiedDate": _sf_time()})
        self.leads[lead_id] = lead
        self._index(lead, add=True)
        return lead_id

    def validate(self, body: Mapping[str, Any], *, creating: bool, own_id: str | None) -> list[Refused]:
        """What Salesforce would refuse about writing these fields (create or update)."""
        fields = self.fields
        problems: list[Refused] = []
        for name, value in body.items():
            if name == "attributes":
                continue
            spec = fields.get(name)
            if spec is None:
                problems.append(Refused("INVALID_FIELD", f"No such column '{name}' on sobject of type Lead"))
                continue
            if not (spec.createable if creating else spec.updateable):
                problems.append(Refused(
                    "INVALID_FIELD_FOR_INSERT_UPDATE",
                    f"Unable to {'create' if creating else 'update'} fields: {name}. Please check the "
                    "security settings of this field and verify that it is read/write for your profile "
                    "or permission set.", (name,)))
                continue
            problems.extend(self._value_problems(name, spec, value, own_id))
        missing = [name for name, spec in fields.items()
                   if not spec.nillable and spec.createable and not spec.defaulted_on_create
                   and spec.type != "boolean" and (creating or name in body) and body.get(name) in (None, "")]
        if missing:
            problems.insert(0, Refused("REQUIRED_FIELD_MISSING",
                                       f"Required fields are missing: [{', '.join(missing)}]",
                                       tuple(missing)))
        return problems

    def _value_problems(self, name: str, spec: FieldDef, value: Any, own_id: str | None) -> list[Refused]:
        if value is None or value == "":
            return []  # the required-field check judges emptiness
        if spec.type == "boolean":
            ok = isinstance(value, bool)
        else:
            ok = isinstance(value, str) if spec.type in TEXT_TYPES else not isinstance(value, dict | list)
        if not ok:
            return [Refused("INVALID_TYPE_ON_FIELD_IN_RECORD",
                            f"{name}: value not of required type: {value!r}", (name,))]
        if isinstance(value, str) and spec.length and len(value) > spec.length:
            return [Refused("STRING_TOO_LONG",
                            f"{name}: data value too large: {value[:20]}... (max length={spec.length})",
                            (name,))]
        if spec.type == "email" and not is_email(value):
            return [Refused("INVALID_EMAIL_ADDRESS", f"{name}: invalid email address: {value}", (name,))]
        if spec.type == "email" and email_domain(value) == self.config.reject_domain.lower():
            return [Refused("FIELD_CUSTOM_VALIDATION_EXCEPTION",
                            f"Leads from {self.config.reject_domain} are not accepted", (name,))]
        if spec.unique:
            others = [i for i in self.matching(name, value) if i != own_id]
            if others:
                return [Refused("DUPLICATE_VALUE",
                                f"duplicate value found: {name} duplicates value on record with id: "
                                f"{others[0]}", (name,))]
        return []

    def create(self, values: Mapping[str, Any]) -> str:
        self.stats.count(self.stats.created, "leads")
        return self._insert({k: v for k, v in values.items() if k != "attributes"})

    def update(self, lead_id: str, values: Mapping[str, Any]) -> None:
        self.stats.count(self.stats.updated, "leads")
        lead = self.leads[lead_id]
        self._index(lead, add=False)
        lead.update({k: v for k, v in values.items() if k != "attributes"})
        lead["LastModifiedDate"] = _sf_time()
        self._index(lead, add=True)

    def upsert(self, ext_field: str, value: Any, body: Mapping[str, Any]) -> tuple[str, bool]:
        """Create or update the record with this external id: (its Id, created).
        Raises Rejected, having changed nothing."""
        matches = self.matching(ext_field, value)
        if len(matches) > 1:
            raise Rejected(Refused("DUPLICATE_EXTERNAL_ID",
                                   f"{ext_field}: more than one record found for external id field: "
                                   f"[{', '.join(matches)}]", (ext_field,)))
        own = matches[0] if matches else None
        values = {**body, ext_field: value}
        problems = self.validate(values if own is None else body, creating=own is None, own_id=own)
        if problems:
            raise Rejected(*problems)
        if own is None:
            return self.create(values), True
        self.update(own, body)
        return own, False

    def snapshot(self) -> Snapshot:
        return ({i: dict(lead) for i, lead in self.leads.items()}, self.serial,
                dict(self.stats.created), dict(self.stats.updated))

    def restore(self, snapshot: Snapshot) -> None:
        self.leads, self.serial, self.stats.created, self.stats.updated = snapshot
        self.reindex()


STATE = web.AppKey("fake_salesforce", SalesforceState)


def not_found() -> web.Response:
    return json_response([{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}],
                         404)


def bad_request(*problems: Refused) -> web.Response:
    return json_response([p.top() for p in problems], 400)


def _wrong_version(state: SalesforceState, request: web.Request) -> bool:
    return request.match_info["version"] != state.config.api_version


def _external_field(state: SalesforceState, name: str) -> web.Response | None:
    spec = state.fields.get(name)
    if spec is None or not spec.external_id:
        return json_response([{"errorCode": "NOT_FOUND", "message": "Provided external ID field does not "
                               f"exist or is not accessible: {name}"}], 404)
    return None


async def _body_object(request: web.Request) -> dict[str, Any] | None:
    body = await read_json(request)
    return body if isinstance(body, dict) else None


_NOT_AN_OBJECT = Refused("JSON_PARSER_ERROR", "The request body must be a JSON object")


async def upsert_one(request: web.Request) -> web.Response:
    state = request.app[STATE]
    if _wrong_version(state, request):
        return not_found()
    ext, value = request.match_info["field"], request.match_info["value"]
    if (wrong := _external_field(state, ext)) is not None:
        return wrong
    body = await _body_object(request)
    if body is None:
        return bad_request(_NOT_AN_OBJECT)
    if ext in body:
        return bad_request(Refused("INVALID_FIELD", f"{ext} is the external ID field in the URL and cannot "
                                   "also be specified in the body", (ext,)))
    matches = state.matching(ext, value)
    if len(matches) > 1:
        return json_response([state.url(i) for i in matches], 300)
    if not matches and request.query.get("updateOnly", "").lower() == "true":
        return not_found()
    try:
        lead_id, created = state.upsert(ext, value, body)
    except Rejected as exc:
        return bad_request(*exc.problems)
    return json_response({"id": lead_id, "success": True, "errors": [], "created": created},
                         201 if created else 200)


async def upsert_many(request: web.Request) -> web.Response:
    state = request.app[STATE]
    if _wrong_version(state, request):
        return not_found()
    ext = request.match_info["field"]
    body = await _body_object(request)
    records = body.get("records") if body is not None else None
    if (wrong := _external_field(state, ext)) is not None:
        return wrong
    all_or_none = body.get("allOrNone", False) if body is not None else False
    if not isinstance(records, list) or not isinstance(all_or_none, bool):
        return bad_request(Refused("JSON_PARSER_ERROR",
                                   'The body is {"allOrNone": true|false, "records": [...]}'))
    if len(records) > COLLECTION_LIMIT:
        return bad_request(Refused("EXCEEDED_ID_LIMIT", f"record limit reached. cannot submit more than "
                                   f"{COLLECTION_LIMIT} records into this call"))
    if not all(isinstance(r, dict) and isinstance(r.get("attributes"), dict)
               and r["attributes"].get("type") == "Lead" for r in records):
        return bad_request(Refused("INVALID_TYPE", "Must send a concrete entity type: every record needs "
                                   '"attributes": {"type": "Lead"}'))
    values = [r.get(ext) for r in records]
    repeated = {v for v in values if isinstance(v, str) and v and values.count(v) > 1}
    snapshot = state.snapshot() if all_or_none else None
    results: list[dict[str, Any]] = []
    for record, value in zip(records, values, strict=True):
        fields = {k: v for k, v in record.items() if k not in {"attributes", ext}}
        try:
            if value is None or value == "":
                raise Rejected(Refused("MISSING_ARGUMENT", f"{ext} not specified", (ext,)))
            if not isinstance(value, str):
                raise Rejected(Refused("INVALID_TYPE_ON_FIELD_IN_RECORD",
                                       f"{ext}: value not of required type: {value!r}", (ext,)))
            if value in repeated:
                raise Rejected(Refused("DUPLICATE_EXTERNAL_ID", f"Duplicate external id specified: {value}",
                                       (ext,)))
            lead_id, created = state.upsert(ext, value, fields)
        except Rejected as exc:
            results.append({"success": False, "errors": [p.per_record() for p in exc.problems]})
            continue
        results.append({"id": lead_id, "success": True, "errors": [], "created": created})
    if snapshot is not None and not all(r["success"] for r in results):
        state.restore(snapshot)
        rolled_back = Refused("ALL_OR_NONE_OPERATION_ROLLED_BACK", "Record rolled back because not all "
                              "records were valid and the request was using AllOrNone header")
        results = [{"success": False, "errors": [rolled_back.per_record()]} if r["success"] else r
                   for r in results]
    return json_response(results)


async def update_by_id(request: web.Request) -> web.Response:
    state = request.app[STATE]
    if _wrong_version(state, request):
        return not_found()
    lead_id = request.match_info["lead_id"]
    if lead_id not in state.leads:
        return not_found()
    body = await _body_object(request)
    if body is None:
        return bad_request(_NOT_AN_OBJECT)
    problems = state.validate(body, creating=False, own_id=lead_id)
    if problems:
        return bad_request(*problems)
    state.update(lead_id, body)
    return web.Response(status=204)


async def get_by_id(request: web.Request) -> web.Response:
    state = request.app[STATE]
    lead = state.leads.get(request.match_info["lead_id"])
    if _wrong_version(state, request) or lead is None:
        return not_found()
    return json_response({"attributes": {"type": "Lead", "url": state.url(lead["Id"])}, **lead})


async def describe(request: web.Request) -> web.Response:
    state = request.app[STATE]
    if _wrong_version(state, request):
        return not_found()
    return json_response({"name": "Lead", "label": "Lead", "createable": True, "updateable": True,
                          "fields": [spec.as_json(name) for name, spec in state.fields.items()]})


async def limits(request: web.Request) -> web.Response:
    state = request.app[STATE]
    if _wrong_version(state, request):
        return not_found()
    return json_response({"DailyApiRequests": {"Max": state.config.daily_limit,
                                               "Remaining": state.daily_remaining()}})


def _soql_text(value: Any) -> str | None:
    """A stored value as SOQL's case-insensitive `=` on a string literal sees it."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).lower()


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), value)


async def query(request: web.Request) -> web.Response:
    state = request.app[STATE]
    if _wrong_version(state, request):
        return not_found()
    match = _QUERY.match(request.query.get("q", ""))
    if match is None:
        return bad_request(Refused("MALFORMED_QUERY", "This fake understands only SELECT Id FROM Lead "
                                   "WHERE <field> = '<value>' [ORDER BY CreatedDate [ASC|DESC]]"))
    by_lower = {name.lower(): name for name in state.fields}
    name = by_lower.get(match.group(1).lower())
    if name is None:
        return bad_request(Refused("INVALID_FIELD", f"No such column '{match.group(1)}' on entity 'Lead'. "
                                   "If you are attempting to use a custom field, be sure to append the '__c' "
                                   "after the custom field name."))
    wanted = _unescape(match.group(2)).lower()
    found = [lead for lead in state.leads.values() if _soql_text(lead.get(name)) == wanted]
    if (match.group(3) or "").upper() == "DESC":
        found.reverse()
    return json_response({"totalSize": len(found), "done": True, "records": [
        {"attributes": {"type": "Lead", "url": state.url(lead["Id"])}, "Id": lead["Id"]} for lead in found]})


async def token(request: web.Request) -> web.Response:
    state = request.app[STATE]
    form = await request.post()
    config = state.config

    def refuse(error: str, description: str) -> web.Response:
        return json_response({"error": error, "error_description": description}, 400)

    if form.get("grant_type") != "refresh_token":
        return refuse("unsupported_grant_type", "grant type not supported")
    if form.get("client_id") != config.client_id:
        return refuse("invalid_client_id", "client identifier invalid")
    if form.get("client_secret") != config.client_secret:
        return refuse("invalid_client", "invalid client credentials")
    if form.get("refresh_token") != config.refresh_token:
        return refuse("invalid_grant", "expired access/refresh token")
    access = f"00DFk0000000001!{state.data_rng.getrandbits(160):040x}"
    state.configure(token=access)
    origin = str(request.url.origin())
    identity = f"{origin}/id/00DFk0000000001AAA/005Fk0000000001AAA"
    issued = str(int(time.time() * 1000))
    signature = base64.b64encode(hmac.new(config.client_secret.encode(), (identity + issued).encode(),
                                          hashlib.sha256).digest()).decode()
    return json_response({"access_token": access, "instance_url": origin, "id": identity,
                          "token_type": "Bearer", "issued_at": issued, "signature": signature,
                          "scope": "api refresh_token"})


def create_app(config: SalesforceConfig | None = None, *, seed: int | None = None) -> web.Application:
    state = SalesforceState(config or SalesforceConfig(), seed=seed)
    state.writes = frozenset({upsert_one, upsert_many, update_by_id})
    state.public = frozenset({token})
    app = new_app(STATE, state)
    data = "/services/data/{version}"
    app.router.add_post("/services/oauth2/token", token)
    app.router.add_get(f"{data}/sobjects/Lead/describe", describe)
    app.router.add_patch(f"{data}/sobjects/Lead/{{field}}/{{value}}", upsert_one)
    app.router.add_patch(f"{data}/sobjects/Lead/{{lead_id}}", update_by_id)
    app.router.add_get(f"{data}/sobjects/Lead/{{lead_id}}", get_by_id)
    app.router.add_patch(f"{data}/composite/sobjects/Lead/{{field}}", upsert_many)
    app.router.add_get(f"{data}/limits", limits)
    app.router.add_get(f"{data}/query", query)
    return app
