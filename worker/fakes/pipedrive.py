"""A fake of Pipedrive's API for persons (v2), leads, notes, deal fields and
users (v1), for tests and demos.

`create_app(config, seed=)` builds it; `app[STATE]` is the live state.
Endpoints: `GET /api/v2/persons/search`, `POST /api/v2/persons`, `GET
/api/v2/persons/<id>`, `POST`/`GET /api/v1/leads`, `POST`/`GET /api/v1/notes`,
`GET`/`POST /api/v1/dealFields`, `GET /api/v1/users/me`.

Documented (Pipedrive's developer docs and changelog; sources in the
project's research notes):
- `x-api-token: <token>` header or `?api_token=`; 401 "unauthorized access".
- Error bodies `{success: false, error, error_info, data: null,
  additional_data: null}`; plan caps are 403 with a `code` such as
  `feature_capping_..._limit`.
- Per token a rolling window (lowest plan: 20 requests / 2 s) with
  `x-ratelimit-limit`, `x-ratelimit-remaining`, `x-ratelimit-reset` and
  `x-daily-requests-left` on answers; over it, 429.
- No upsert and no dedup: the same person posted twice is two persons.
  Integrations look e-mails up with `GET /api/v2/persons/search?term=&
  fields=email&exact_match=true` (exact match is case-insensitive).
- A lead needs a title and a person_id or organization_id; its custom
  fields are the deal fields, keyed by 40-hex keys.
- v2 checks its input strictly.

Assumed (the documentation is silent; the stricter choice):
- No Retry-After on 429: `x-ratelimit-reset` says when to come back.
- A spent daily budget answers 429 "Daily request limit reached".
- The search index lags behind writes by `search_lag_ms`; reading a person
  by id and listing leads by person never lag.
- Organizations do not exist in this fake: any `organization_id` is unknown.
- An unknown key in a v2 person or a v1 lead body is a 400, as is an e-mail
  that is not an address or is in `reject_domain`.
- The lead cap answers "Couldn't add the lead. Leads limit reached." with
  `code: feature_capping_leads_limit`.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from aiohttp import web

from leadline.config import Rate
from worker.fakes.common import (
    FakeState,
    Knobs,
    Refusal,
    count,
    email_domain,
    is_email,
    json_response,
    new_app,
    non_negative,
    optional_count,
    read_json,
    text,
)

LIST_LIMIT = 500
LOWEST_PLAN_RATE = Rate(20, 2.0)  # api_token, per 2-second window
USER_ID = 1
PERSON_KEYS = {"name", "owner_id", "org_id", "emails", "phones", "visible_to", "label_ids",
               "marketing_status", "add_time", "custom_fields"}
LEAD_KEYS = {"title", "owner_id", "label_ids", "person_id", "organization_id", "value",
             "expected_close_date", "visible_to", "was_seen", "origin_id", "channel", "channel_id"}
NOTE_TARGETS = ("lead_id", "person_id", "deal_id", "org_id")
SEARCH_FIELDS = {"name", "email", "phone", "notes", "custom_fields"}
MARKETING_STATUSES = {"no_consent", "unsubscribed", "subscribed", "archived"}
FIELD_TYPES = {"varchar", "varchar_auto", "text", "double", "monetary", "date", "set", "enum", "user",
               "org", "people", "phone", "time", "timerange", "daterange", "address"}
_CUSTOM_KEY = re.compile(r"^[0-9a-f]{40}$")


@dataclass(frozen=True)
class DealField:
    id: int
    key: str
    name: str
    field_type: str
    edit_flag: bool = True  # custom; the built-in fields are not

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "key": self.key, "name": self.name, "field_type": self.field_type,
                "edit_flag": self.edit_flag}


def default_deal_fields() -> dict[str, DealField]:
    """Built-in deal fields; a fresh account has no custom ones."""
    built_in = [("title", "Title", "varchar"), ("value", "Value", "monetary"),
                ("person_id", "Contact person", "people"), ("org_id", "Organization", "org"),
                ("add_time", "Deal created", "date"), ("expected_close_date", "Expected close date", "date")]
    return {key: DealField(n, key, name, kind, edit_flag=False)
            for n, (key, name, kind) in enumerate(built_in, start=1)}


def _deal_fields(name: str, value: Any) -> dict[str, DealField]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{name} is an object of key -> field")
    fields: dict[str, DealField] = {}
    for key, item in value.items():
        if isinstance(item, DealField):
            fields[key] = item
            continue
        if not isinstance(item, Mapping) or item.get("field_type") not in FIELD_TYPES \
                or not isinstance(item.get("name"), str) or not isinstance(item.get("id", 0), int):
            raise ValueError(f"{name}[{key!r}] needs a name and a field_type of "
                             f"{', '.join(sorted(FIELD_TYPES))}")
        fields[key] = DealField(item.get("id", 1000 + len(fields)), key, item["name"], item["field_type"],
                                bool(item.get("edit_flag", _CUSTOM_KEY.match(key) is not None)))
        if fields[key].key != key:
            raise ValueError(f"{name}[{key!r}] must be keyed by its key")
    return fields


@dataclass(frozen=True)
class PipedriveConfig(Knobs):
    rate_limit: Rate | None = LOWEST_PLAN_RATE
    daily_limit: int = 10_000
    lead_limit: int | None = None
    search_lag_ms: float = 0.0
    company_domain: str = "leadline-test"
    deal_fields: Mapping[str, DealField] = field(default_factory=default_deal_fields)


@dataclass
class Person:
    id: int
    name: str
    emails: list[dict[str, Any]]
    phones: list[dict[str, Any]]
    extra: dict[str, Any]
    add_time: str
    searchable_at: float  # time.monotonic() from which search finds it

    def as_json(self) -> dict[str, Any]:
        first, _, last = self.name.partition(" ")
        return {"id": self.id, "name": self.name, "first_name": first, "last_name": last or None,
                "owner_id": USER_ID, "org_id": None, "add_time": self.add_time, "update_time": self.add_time,
                "emails": self.emails, "phones": self.phones, "is_deleted": False, "visible_to": 3,
                "label_ids": [], "picture_id": None, "custom_fields": {}, **self.extra}

    def search_item(self) -> dict[str, Any]:
        return {"id": self.id, "type": "person", "name": self.name,
                "phones": [p["value"] for p in self.phones], "emails": [e["value"] for e in self.emails],
                "visible_to": 3, "owner": {"id": USER_ID}, "organization": None, "custom_fields": [],
                "notes": [], "update_time": self.add_time}


def _v2_time() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _v1_time() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())


class Invalid(Exception):
    """A refused write in Pipedrive's words: 400 unless said otherwise."""

    def __init__(self, message: str, status: int = 400, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.extra = status, extra

    def response(self) -> web.Response:
        return error(self.status, str(self), **self.extra)


class PipedriveState(FakeState[PipedriveConfig]):
    fail_statuses = (502, 503)
    parsers = {"daily_limit": count, "lead_limit": optional_count, "search_lag_ms": non_negative,
               "company_domain": text, "deal_fields": _deal_fields}
    persons: dict[int, Person]
    by_email: dict[str, list[int]]  # lowercased address -> person ids, for exact e-mail search
    leads: dict[str, dict[str, Any]]
    notes: dict[int, dict[str, Any]]
    next_person: int
    next_note: int

    def clear_records(self) -> None:
        self.persons, self.leads, self.notes, self.by_email = {}, {}, {}, {}
        self.next_person = self.next_note = 1

    def records_json(self) -> Any:
        return {"persons": [p.as_json() for p in self.persons.values()], "leads": list(self.leads.values()),
                "notes": list(self.notes.values()),
                "deal_fields": [f.as_json() for f in self.config.deal_fields.values()]}

    def stored(self) -> dict[str, int]:
        return {"persons": len(self.persons), "leads": len(self.leads), "notes": len(self.notes)}

    def daily_limit(self) -> int | None:
        return self.config.daily_limit

    # --- the vendor's answers ---

    def authorized(self, request: web.Request) -> bool:
        given = request.headers.get("x-api-token") or request.query.get("api_token")
        return given == self.config.token

    def unauthorized(self) -> web.Response:
        return error(401, "unauthorized access")

    def refused(self, refusal: Refusal, now: float) -> web.Response:
        return error(429, "Daily request limit reached" if refusal is Refusal.DAILY else "Request over limit")

    def unavailable(self, status: int) -> web.Response:
        return error(status, "Service unavailable")

    def http_error(self, exc: web.HTTPException) -> web.Response:
        return error(exc.status, "Unknown method ." if exc.status == 404 else exc.reason)

    def limit_headers(self, now: float) -> dict[str, str]:
        headers = {"x-daily-requests-left": str(self.daily_remaining())}
        limit = self.config.rate_limit
        if limit is not None:
            headers.update({"x-ratelimit-limit": str(limit.count),
                            "x-ratelimit-remaining": str(self.window_remaining(now)),
                            "x-ratelimit-reset": str(math.ceil(self.window_frees_in(now)))})
        return headers

    # --- the records ---

    def is_person(self, value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and value in self.persons

    def emails(self, value: Any) -> list[dict[str, Any]]:
        if value is None:
            return []
        if not isinstance(value, list):
            raise Invalid("Validation failed: emails: Expected array")
        emails: list[dict[str, Any]] = []
        for n, item in enumerate(value):
            if not isinstance(item, dict) or not isinstance(item.get("value"), str) \
                    or set(item) - {"value", "primary", "label"}:
                raise Invalid(f"Validation failed: emails[{n}]: Expected object with value, primary, label")
            address = item["value"]
            if not is_email(address) or email_domain(address) == self.config.reject_domain.lower():
                raise Invalid(f"Validation failed: emails[{n}].value: {address} is not a valid email address")
            emails.append({"value": address, "primary": bool(item.get("primary", n == 0)),
                           "label": str(item.get("label", "work"))})
        return emails

    def add_person(self, body: Any) -> Person:
        if not isinstance(body, dict):
            raise Invalid("Validation failed: body: Expected object")
        unknown = sorted(set(body) - PERSON_KEYS)
        if unknown:
            raise Invalid(f"Validation failed: Parameter '{unknown[0]}' is not allowed for this request")
        name = body.get("name")
        if not isinstance(name, str) or not name.strip():
            raise Invalid("Validation failed: name: Required")
        status = body.get("marketing_status")
        if status is not None and status not in MARKETING_STATUSES:
            raise Invalid(f"Validation failed: marketing_status: must be one of {sorted(MARKETING_STATUSES)}")
        emails = self.emails(body.get("emails"))
        phones = body.get("phones") or []
        if not isinstance(phones, list) or not all(isinstance(p, dict) and isinstance(p.get("value"), str)
                                                   for p in phones):
            raise Invalid("Validation failed: phones: Expected array of objects with value")
        person = Person(self.next_person, name.strip(), emails, phones,
                        {"marketing_status": status} if status else {}, _v2_time(),
                        time.monotonic() + self.config.search_lag_ms / 1000)
        self.persons[person.id] = person
        for address in {e["value"].lower() for e in emails}:
            self.by_email.setdefault(address, []).append(person.id)
        self.next_person += 1
        self.stats.count(self.stats.created, "persons")
        return person

    def add_lead(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise Invalid("The body must be an object")
        custom = {k for k in body if _CUSTOM_KEY.match(k)}
        unknown = sorted(set(body) - LEAD_KEYS - custom)
        if unknown:
            raise Invalid(f"Unknown parameter: {unknown[0]}")
        fields = self.config.deal_fields
        strangers = sorted(k for k in custom if k not in fields or not fields[k].edit_flag)
        if strangers:
            raise Invalid(f"Custom field {strangers[0]} does not exist")
        title = body.get("title")
        if not isinstance(title, str) or not title.strip():
            raise Invalid("Title is required")
        person_id, org_id = body.get("person_id"), body.get("organization_id")
        if person_id is None and org_id is None:
            raise Invalid("A lead must be linked to a person or an organization")
        if person_id is not None and not self.is_person(person_id):
            raise Invalid(f"Person with id {person_id} not found")
        if org_id is not None:
            raise Invalid(f"Organization with id {org_id} not found")
        for key in custom:
            value = body[key]
            kind = fields[key].field_type
            takes = (int, float) if kind in {"double", "monetary"} else (str, int, float)
            if value is not None and (isinstance(value, bool) or not isinstance(value, takes)):
                raise Invalid(f"Custom field {key} ({kind}) does not take {value!r}")
        cap = self.config.lead_limit
        if cap is not None and len(self.leads) >= cap:
            raise Invalid("Couldn't add the lead. Leads limit reached.", 403,
                          code="feature_capping_leads_limit")
        now = _v2_time()
        lead = {"id": self.new_uuid(), "title": title, "owner_id": body.get("owner_id", USER_ID),
                "creator_id": USER_ID, "label_ids": body.get("label_ids", []), "person_id": person_id,
                "organization_id": None, "source_name": "API", "origin": "API", "channel": None,
                "is_archived": False, "was_seen": False, "value": body.get("value"),
                "expected_close_date": body.get("expected_close_date"), "next_activity_id": None,
                "add_time": now, "update_time": now, "visible_to": "3",
                **{key: body[key] for key in sorted(custom)}}
        self.leads[lead["id"]] = lead
        self.stats.count(self.stats.created, "leads")
        return lead

    def add_note(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise Invalid("The body must be an object")
        content = body.get("content")
        if not isinstance(content, str) or not content.strip():
            raise Invalid("Content is required")
        targets = {k: body[k] for k in NOTE_TARGETS if body.get(k) is not None}
        if not targets:
            raise Invalid("A note must be attached to a lead, deal, person or organization")
        lead_id, person_id = targets.get("lead_id"), targets.get("person_id")
        if lead_id is not None and (not isinstance(lead_id, str) or lead_id not in self.leads):
            raise Invalid(f"Lead with id {lead_id} not found")
        if person_id is not None and not self.is_person(person_id):
            raise Invalid(f"Person with id {person_id} not found")
        for kind in ("deal_id", "org_id"):
            if kind in targets:
                raise Invalid(f"{kind} {targets[kind]} not found")
        now = _v1_time()
        note: dict[str, Any] = {
                "id": self.next_note, "content": content, "lead_id": lead_id, "person_id": person_id,
                "deal_id": None, "org_id": None, "user_id": USER_ID, "add_time": now, "update_time": now,
                "active_flag": True, "pinned_to_lead_flag": False, "pinned_to_person_flag": False}
        self.notes[self.next_note] = note
        self.next_note += 1
        self.stats.count(self.stats.created, "notes")
        return note


STATE = web.AppKey("fake_pipedrive", PipedriveState)


def error(status: int, message: str, **extra: Any) -> web.Response:
    return json_response({"success": False, "error": message, "errorCode": status,
                          "error_info": "Please check developers.pipedrive.com", "data": None,
                          "additional_data": None, **extra}, status)


def ok(data: Any, status: int = 200, additional: Any = None) -> web.Response:
    body: dict[str, Any] = {"success": True, "data": data}
    if additional is not None:
        body["additional_data"] = additional
    return json_response(body, status)


def _page(request: web.Request, items: list[Any]) -> web.Response:
    """v1 offset pagination: `start`, `limit` (at most 500)."""
    try:
        start = int(request.query.get("start", "0"))
        limit = int(request.query.get("limit", "100"))
    except ValueError:
        return error(400, "start and limit are whole numbers")
    if start < 0 or not 1 <= limit <= LIST_LIMIT:
        return error(400, f"start is at least 0; limit is 1 to {LIST_LIMIT}")
    page = items[start:start + limit]
    return ok(page, additional={"pagination": {"start": start, "limit": limit,
                                               "more_items_in_collection": start + limit < len(items)}})


def _int_param(request: web.Request, name: str) -> int | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        raise Invalid(f"Validation failed: {name}: Expected number") from None


async def add_person(request: web.Request) -> web.Response:
    state = request.app[STATE]
    try:
        return ok(state.add_person(await read_json(request)).as_json())
    except Invalid as exc:
        return exc.response()


async def get_person(request: web.Request) -> web.Response:
    state = request.app[STATE]
    try:
        person_id = int(request.match_info["person_id"])
    except ValueError:
        return error(400, "Validation failed: id: Expected number")
    person = state.persons.get(person_id)
    return error(404, "Person not found") if person is None else ok(person.as_json())


async def search_persons(request: web.Request) -> web.Response:
    state = request.app[STATE]
    term = request.query.get("term", "")
    exact = request.query.get("exact_match", "false").lower() == "true"
    fields = set(request.query.get("fields", ",".join(sorted(SEARCH_FIELDS))).split(","))
    if len(term) < (1 if exact else 2):
        return error(400, "Validation failed: term: must be at least 2 characters (1 with exact_match)")
    if not fields <= SEARCH_FIELDS:
        return error(400, f"Validation failed: fields: must be of {', '.join(sorted(SEARCH_FIELDS))}")
    try:
        limit = int(request.query.get("limit", "100"))
        start = int(request.query.get("cursor", "0"))  # this fake's cursors are offsets
    except ValueError:
        limit = start = -1
    if not 1 <= limit <= LIST_LIMIT or start < 0:
        return error(400, f"Validation failed: limit is 1 to {LIST_LIMIT}; cursor comes from next_cursor")
    wanted = term.lower()
    now = time.monotonic()

    def hit(value: str) -> bool:
        return value.lower() == wanted if exact else wanted in value.lower()

    candidates: Any = state.persons.values()
    if exact and fields == {"email"}:  # the connector's lookup: no need to scan everyone
        candidates = [state.persons[i] for i in state.by_email.get(wanted, [])]
    items = []
    for person in candidates:
        if person.searchable_at > now:
            continue  # not in the search index yet
        values = ([person.name] if "name" in fields else []) \
            + ([e["value"] for e in person.emails] if "email" in fields else []) \
            + ([p["value"] for p in person.phones] if "phone" in fields else [])
        if any(hit(v) for v in values):
            items.append({"result_score": 1 if exact else 0.5, "item": person.search_item()})
    more = start + limit < len(items)
    return ok({"items": items[start:start + limit]},
              additional={"next_cursor": str(start + limit)} if more else {})


async def add_lead(request: web.Request) -> web.Response:
    state = request.app[STATE]
    try:
        lead = state.add_lead(await read_json(request))
    except Invalid as exc:
        return exc.response()
    return ok(lead, 201)


async def list_leads(request: web.Request) -> web.Response:
    state = request.app[STATE]
    try:
        person_id = _int_param(request, "person_id")
    except Invalid as exc:
        return exc.response()
    leads = [lead for lead in state.leads.values() if person_id is None or lead["person_id"] == person_id]
    return _page(request, leads)


async def add_note(request: web.Request) -> web.Response:
    state = request.app[STATE]
    try:
        return ok(state.add_note(await read_json(request)), 201)
    except Invalid as exc:
        return exc.response()


async def list_notes(request: web.Request) -> web.Response:
    state = request.app[STATE]
    lead_id = request.query.get("lead_id")
    try:
        person_id = _int_param(request, "person_id")
    except Invalid as exc:
        return exc.response()
    notes = [n for n in state.notes.values() if (lead_id is None or n["lead_id"] == lead_id)
             and (person_id is None or n["person_id"] == person_id)]
    return _page(request, notes)


async def list_deal_fields(request: web.Request) -> web.Response:
    state = request.app[STATE]
    return _page(request, [f.as_json() for f in state.config.deal_fields.values()])


async def add_deal_field(request: web.Request) -> web.Response:
    state = request.app[STATE]
    body = await read_json(request)
    if not isinstance(body, dict) or not isinstance(body.get("name"), str) or not body["name"].strip():
        return error(400, "Field name is required")
    if body.get("field_type") not in FIELD_TYPES:
        return error(400, f"field_type must be one of {', '.join(sorted(FIELD_TYPES))}")
    fields = state.config.deal_fields
    made = DealField(max((f.id for f in fields.values()), default=0) + 1,
                     f"{state.data_rng.getrandbits(160):040x}", body["name"].strip(), body["field_type"])
    state.config = replace(state.config, deal_fields={**fields, made.key: made})
    return ok(made.as_json(), 201)


async def me(request: web.Request) -> web.Response:
    state = request.app[STATE]
    domain = state.config.company_domain
    return ok({"id": USER_ID, "name": "Leadline Fake", "email": f"owner@{domain}.test", "company_id": 1,
               "company_name": "Leadline Test", "company_domain": domain, "active_flag": True})


def create_app(config: PipedriveConfig | None = None, *, seed: int | None = None) -> web.Application:
    state = PipedriveState(config or PipedriveConfig(), seed=seed)
    state.writes = frozenset({add_person, add_lead, add_note})
    app = new_app(STATE, state)
    app.router.add_get("/api/v2/persons/search", search_persons)
    app.router.add_post("/api/v2/persons", add_person)
    app.router.add_get("/api/v2/persons/{person_id}", get_person)
    app.router.add_post("/api/v1/leads", add_lead)
    app.router.add_get("/api/v1/leads", list_leads)
    app.router.add_post("/api/v1/notes", add_note)
    app.router.add_get("/api/v1/notes", list_notes)
    app.router.add_get("/api/v1/dealFields", list_deal_fields)
    app.router.add_post("/api/v1/dealFields", add_deal_field)
    app.router.add_get("/api/v1/users/me", me)
    return app
