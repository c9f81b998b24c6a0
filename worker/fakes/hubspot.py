"""A fake of HubSpot's CRM v3 contacts and properties API, for tests and demos.

`create_app(config, seed=)` builds it; `app[STATE]` is the live state.
Endpoints: `POST /crm/v3/objects/contacts/batch/upsert`; `POST /crm/v3/objects/
contacts`; `GET` a page of them; `PATCH` and `GET /crm/v3/objects/contacts/
{id}` (or `{value}?idProperty=email`); `GET`/`POST /crm/v3/properties/contacts`
and `GET /crm/v3/properties/contacts/{name}`.

Documented (HubSpot's API reference, changelog and issue threads; sources in
the project's research notes):
- `Authorization: Bearer <private-app token>`; error bodies
  `{status, message, correlationId, category, errors[{message, in, code}]}`.
- `POST /crm/v3/objects/contacts/batch/upsert` with `inputs[{idProperty, id,
  properties, objectWriteTraceId}]`; each result carries `new`.
- A second create of an e-mail is 409 `Contact already exists. Existing ID: <id>`
  (the id only inside the message text).
- Rate headers `X-HubSpot-RateLimit-{Interval-Milliseconds,Max,Remaining,
  Daily,Daily-Remaining}`; 429 `{"errorType":"RATE_LIMIT","policyName":
  "TEN_SECONDLY_ROLLING"}`; no Retry-After. Lowest private-app plan: 100 / 10 s.
- Missing scopes are 403 `MISSING_SCOPES` with `requiredGranularScopes`.

Assumed (the documentation is silent; the stricter choice):
- At most 100 inputs per batch write, and at least 1 (reads are capped at 100).
- One bad input fails the whole batch with 400 and writes nothing; every
  input's errors are listed, each with a `code` (INVALID_EMAIL,
  PROPERTY_DOESNT_EXIST, READ_ONLY_VALUE, INVALID_VALUE, DUPLICATE_ID,
  INVALID_ID_PROPERTY, INVALID_INPUT, TOO_MANY_INPUTS).
- All inputs of one batch use the same `idProperty`; `email` or a property
  with `hasUniqueValue`. Unique values and e-mails match case-insensitively.
- When `idProperty` is `email`, an `email` property must equal the id.
- Results come back in an order that is not the input order.
- `conflict_emails`: an input for such an address is answered in a 207
  Multi-Status body (`errors[{status, category: CONFLICT, message, context:
  {id: [email]}}]`, `numErrors`) while the other inputs are written; the same
  207 shape answers an input that would give a second contact an e-mail or a
  unique value another contact has.
- The fake's own properties `hs_object_id`, `createdate`, `lastmodifieddate`
  exist on every contact and are read-only.
- A daily allocation that is spent answers 429 with `policyName` DAILY.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import orjson
from aiohttp import web

from leadline.config import Rate
from worker.fakes.common import (
    INVALID,
    FakeState,
    Handler,
    Knobs,
    Refusal,
    count,
    email_domain,
    is_email,
    iso_now,
    json_response,
    new_app,
    read_json,
    string_set,
)

BATCH_LIMIT = 100
LOWEST_PLAN_RATE = Rate(100, 10.0)  # private apps on Free / Starter
LIST_LIMIT = 100
SYSTEM_PROPERTIES = ("hs_object_id", "createdate", "lastmodifieddate")
READ = "crm.objects.contacts.read"
WRITE = "crm.objects.contacts.write"
SCHEMA_READ = "crm.schemas.contacts.read"
SCHEMA_WRITE = "crm.schemas.contacts.write"
DEFAULT_SCOPES = frozenset({READ, WRITE, SCHEMA_READ, SCHEMA_WRITE})
TYPES = {"string": {"text", "textarea", "phonenumber", "html", "file"}, "number": {"number"},
         "date": {"date"}, "datetime": {"date"}, "bool": {"booleancheckbox"},
         "enumeration": {"select", "radio", "checkbox", "booleancheckbox"},
         "phone_number": {"phonenumber"}}
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,99}$")


@dataclass(frozen=True)
class PropertyDef:
    name: str
    label: str
    type: str = "string"
    field_type: str = "text"
    group_name: str = "contactinformation"
    has_unique_value: bool = False

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "label": self.label, "type": self.type, "fieldType": self.field_type,
                "groupName": self.group_name, "hasUniqueValue": self.has_unique_value}

    @classmethod
    def from_json(cls, data: Any) -> PropertyDef:
        """From HubSpot's camelCase body; a ValueError names what is wrong."""
        if isinstance(data, PropertyDef):
            return data
        if not isinstance(data, Mapping):
            raise ValueError(f"a property definition is an object, got {data!r}")
        missing = [k for k in ("name", "label", "type", "fieldType", "groupName") if not data.get(k)]
        if missing:
            raise ValueError(f"a property definition needs {', '.join(missing)}")
        name, kind, field_type = data["name"], data["type"], data["fieldType"]
        if not isinstance(name, str) or not _NAME.match(name):
            raise ValueError(f"property name {name!r} must be lowercase letters, digits and _")
        if kind not in TYPES:
            raise ValueError(f"property type {kind!r} is not one of {', '.join(sorted(TYPES))}")
        if field_type not in TYPES[kind]:
            raise ValueError(f"fieldType {field_type!r} does not fit type {kind!r}")
        unique = data.get("hasUniqueValue", False)
        if not isinstance(unique, bool):
            raise ValueError("hasUniqueValue must be true or false")
        return cls(name, str(data["label"]), kind, field_type, str(data["groupName"]), unique)


def default_properties() -> dict[str, PropertyDef]:
    """The contact properties of a fresh portal that a web form touches; no
    `leadline_submission_id` (a setup step must create it)."""
    defs = [PropertyDef("email", "Email"), PropertyDef("firstname", "First Name"),
            PropertyDef("lastname", "Last Name"), PropertyDef("company", "Company Name"),
            PropertyDef("message", "Message", field_type="textarea"),
            PropertyDef("phone", "Phone Number", field_type="phonenumber"),
            PropertyDef("website", "Website URL"),
            PropertyDef("lifecyclestage", "Lifecycle Stage", "enumeration", "radio")]
    return {d.name: d for d in defs}


def _properties(name: str, value: Any) -> dict[str, PropertyDef]:
    items = value.values() if isinstance(value, Mapping) else value
    if isinstance(value, Mapping) and not all(isinstance(k, str) for k in value):
        raise ValueError(f"{name} is keyed by property name")
    try:
        defs = [PropertyDef.from_json(item) for item in items]
    except TypeError:
        raise ValueError(f"{name} must be a list or an object of property definitions") from None
    by_name = {d.name: d for d in defs}
    if isinstance(value, Mapping) and set(value) != set(by_name):
        raise ValueError(f"{name}: every key must be its definition's name")
    if "email" not in by_name:
        raise ValueError(f"{name} must keep the email property")
    clash = set(by_name) & set(SYSTEM_PROPERTIES)
    if clash:
        raise ValueError(f"{name}: {', '.join(sorted(clash))} belong to HubSpot")
    return by_name


@dataclass(frozen=True)
class HubSpotConfig(Knobs):
    rate_limit: Rate | None = LOWEST_PLAN_RATE
    daily_limit: int = 250_000
    scopes: frozenset[str] = DEFAULT_SCOPES
    properties: Mapping[str, PropertyDef] = field(default_factory=default_properties)
    conflict_emails: frozenset[str] = frozenset()


@dataclass
class Contact:
    id: str
    properties: dict[str, str]
    created_at: str
    updated_at: str

    def as_json(self, only: set[str] | None = None) -> dict[str, Any]:
        props = self.properties if only is None else {
            k: v for k, v in self.properties.items() if k in only or k in SYSTEM_PROPERTIES}
        return {"id": self.id, "properties": dict(props), "createdAt": self.created_at,
                "updatedAt": self.updated_at, "archived": False}


class Problem(Exception):
    """One reason an input or a request is refused, in HubSpot's `errors[]` shape."""

    def __init__(self, code: str, message: str, where: str) -> None:
        super().__init__(message)
        self.code, self.message, self.where = code, message, where

    def as_json(self) -> dict[str, str]:
        return {"message": self.message, "in": self.where, "code": self.code}


class HubSpotState(FakeState[HubSpotConfig]):
    fail_statuses = (502, 503)
    parsers = {"daily_limit": count, "scopes": string_set, "properties": _properties,
               "conflict_emails": string_set}
    contacts: dict[str, Contact]
    index: dict[str, dict[str, str]]  # property -> lowercased value -> contact id
    next_id: int

    def clear_records(self) -> None:
        self.contacts = {}
        self.index = {}
        self.next_id = 1001

    def seed_records(self) -> None:
        # The unique properties may have changed with the config: index them afresh.
        self.index = {prop: {} for prop in self.unique_properties()}
        for contact in self.contacts.values():
            for prop, by_value in self.index.items():
                if contact.properties.get(prop):
                    by_value[contact.properties[prop].lower()] = contact.id
        for email in sorted(self.config.conflict_emails):
            if email.lower() not in self.index.get("email", {}):
                self._insert({"email": email, "firstname": "Existing", "lastname": "Contact"})

    def records_json(self) -> Any:
        return {"contacts": [c.as_json() for c in self.contacts.values()],
                "properties": [d.as_json() for d in self.config.properties.values()]}

    def stored(self) -> dict[str, int]:
        return {"contacts": len(self.contacts)}

    def daily_limit(self) -> int | None:
        return self.config.daily_limit

    # --- the vendor's answers ---

    def error(self, status: int, category: str, message: str, **extra: Any) -> web.Response:
        return json_response({"status": "error", "message": message, "correlationId": self.new_uuid(),
                              "category": category, **extra}, status)

    def authorized(self, request: web.Request) -> bool:
        return request.headers.get("Authorization", "") == f"Bearer {self.config.token}"

    def unauthorized(self) -> web.Response:
        return self.error(401, "INVALID_AUTHENTICATION",
                          "Authentication credentials not found. This API supports OAuth 2.0 "
                          "authentication and you can find more details at "
                          "https://developers.hubspot.com/docs/methods/auth/oauth-overview")

    def refused(self, refusal: Refusal, now: float) -> web.Response:
        daily = refusal is Refusal.DAILY
        return json_response({
            "status": "error",
            "message": "You have reached your daily limit." if daily
            else "You have reached your ten_secondly_rolling limit.",
            "errorType": "RATE_LIMIT", "correlationId": self.new_uuid(),
            "policyName": "DAILY" if daily else "TEN_SECONDLY_ROLLING"}, 429)

    def unavailable(self, status: int) -> web.Response:
        return json_response({"status": "error", "message": "internal error",
                              "correlationId": self.new_uuid(), "category": "INTERNAL_ERROR"}, status)

    def http_error(self, exc: web.HTTPException) -> web.Response:
        if exc.status == 404:
            return self.error(404, "OBJECT_NOT_FOUND", "resource not found")
        return self.error(exc.status, "VALIDATION_ERROR", exc.reason)

    def limit_headers(self, now: float) -> dict[str, str]:
        headers = {"X-HubSpot-RateLimit-Daily": str(self.config.daily_limit),
                   "X-HubSpot-RateLimit-Daily-Remaining": str(self.daily_remaining())}
        limit = self.config.rate_limit
        if limit is not None:
            headers.update({
                "X-HubSpot-RateLimit-Interval-Milliseconds": str(round(limit.per_seconds * 1000)),
                "X-HubSpot-RateLimit-Max": str(limit.count),
                "X-HubSpot-RateLimit-Remaining": str(self.window_remaining(now))})
        return headers

    def records_in(self, handler: Handler, body: Any) -> int:
        if handler is batch_upsert:
            inputs = body.get("inputs") if isinstance(body, dict) else None
            return len(inputs) if isinstance(inputs, list) else 0
        return 1

    def missing_scope(self, scope: str) -> web.Response | None:
        if scope in self.config.scopes:
            return None
        return self.error(
            403, "MISSING_SCOPES",
            "This app hasn't been granted all required scopes to make this call. "
            "Read more about required scopes here: https://developers.hubspot.com/scopes.",
            errors=[{"message": "One or more of the following scopes are required.",
                     "context": {"requiredGranularScopes": [scope]}}])

    def invalid(self, problems: list[Problem]) -> web.Response:
        values = [p for p in problems if p.code in {"INVALID_EMAIL", "PROPERTY_DOESNT_EXIST",
                                                     "READ_ONLY_VALUE", "INVALID_VALUE"}]
        if values and len(values) == len(problems):
            details = orjson.dumps([{"isValid": False, "message": p.message, "error": p.code,
                                     "name": p.where} for p in values]).decode()
            message = f"Property values were not valid: {details}"
        else:
            message = problems[0].message
        return self.error(400, "VALIDATION_ERROR", message, errors=[p.as_json() for p in problems])

    # --- the records ---

    def unique_properties(self) -> set[str]:
        return {"email"} | {n for n, d in self.config.properties.items() if d.has_unique_value}

    def find(self, prop: str, value: str) -> Contact | None:
        found = self.index.get(prop, {}).get(value.lower())
        return None if found is None else self.contacts[found]

    def clean(self, props: Any, where: str = "properties") -> tuple[dict[str, str], list[Problem]]:
        """A property map as HubSpot stores it (strings), and what is wrong with it."""
        if not isinstance(props, dict):
            return {}, [Problem("INVALID_INPUT", f"{where} must be an object", where)]
        values: dict[str, str] = {}
        problems: list[Problem] = []
        for name, value in props.items():
            if name in SYSTEM_PROPERTIES:
                problems.append(Problem("READ_ONLY_VALUE", f'Property "{name}" is read-only', name))
            elif name not in self.config.properties:
                problems.append(Problem("PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist', name))
            elif isinstance(value, bool):
                values[name] = "true" if value else "false"
            elif value is None or isinstance(value, str | int | float):
                values[name] = "" if value is None else str(value)
            else:
                problems.append(Problem("INVALID_VALUE", f'Property "{name}" must be a string', name))
        email = values.get("email", "")
        if email:
            problems.extend(self.email_problems(email, "email"))
        return values, problems

    def email_problems(self, email: str, where: str) -> list[Problem]:
        if not is_email(email) or email_domain(email) == self.config.reject_domain.lower():
            return [Problem("INVALID_EMAIL", f"Email address {email} is invalid", where)]
        return []

    def taken(self, values: Mapping[str, str], own_id: str | None) -> Contact | None:
        """Another contact that already has one of these e-mail / unique values."""
        for prop in self.unique_properties():
            value = values.get(prop, "")
            other = self.find(prop, value) if value else None
            if other is not None and other.id != own_id:
                return other
        return None

    def _insert(self, values: Mapping[str, str]) -> Contact:
        contact_id = str(self.next_id)
        self.next_id += 1
        now = iso_now()
        contact = Contact(contact_id, {}, now, now)
        self.contacts[contact_id] = contact
        self._write(contact, {**values, "hs_object_id": contact_id, "createdate": now})
        return contact

    def _write(self, contact: Contact, values: Mapping[str, str]) -> None:
        for prop in self.unique_properties() & set(values):
            old = contact.properties.get(prop, "")
            if old:
                self.index.get(prop, {}).pop(old.lower(), None)
            if values[prop]:
                self.index.setdefault(prop, {})[values[prop].lower()] = contact.id
        contact.updated_at = iso_now()
        contact.properties.update({**values, "lastmodifieddate": contact.updated_at})

    def create(self, values: Mapping[str, str]) -> Contact:
        self.stats.count(self.stats.created, "contacts")
        return self._insert(values)

    def update(self, contact: Contact, values: Mapping[str, str]) -> None:
        self.stats.count(self.stats.updated, "contacts")
        self._write(contact, values)

    def conflict_message(self, contact: Contact) -> str:
        return f"Contact already exists. Existing ID: {contact.id}"


STATE = web.AppKey("fake_hubspot", HubSpotState)


# --- batch upsert ---

@dataclass
class _Input:
    id: str
    values: dict[str, str]
    trace: str | None


def _read_inputs(state: HubSpotState, body: Any) -> tuple[str, list[_Input], list[Problem]]:
    """The batch's idProperty and inputs, with everything wrong with them."""
    if not isinstance(body, dict) or not isinstance(body.get("inputs"), list):
        return "", [], [Problem("INVALID_INPUT", 'the body must be {"inputs": [...]}', "inputs")]
    raw = body["inputs"]
    if not 1 <= len(raw) <= BATCH_LIMIT:
        return "", [], [Problem("TOO_MANY_INPUTS" if raw else "INVALID_INPUT",
                                f"A batch has 1 to {BATCH_LIMIT} inputs, got {len(raw)}", "inputs")]
    problems: list[Problem] = []
    inputs: list[_Input] = []
    id_props: set[str] = set()
    for n, item in enumerate(raw):
        where = f"inputs[{n}]"
        if not isinstance(item, dict) or not isinstance(item.get("id"), str) or not item["id"]:
            problems.append(Problem("INVALID_INPUT", f"{where} needs a non-empty string id", f"{where}.id"))
            continue
        id_prop = item.get("idProperty")
        trace = item.get("objectWriteTraceId")
        if not isinstance(id_prop, str) or id_prop not in state.unique_properties():
            problems.append(Problem("INVALID_ID_PROPERTY",
                                    f"idProperty {id_prop!r} is neither email nor a property with unique "
                                    "values", f"{where}.idProperty"))
            continue
        if trace is not None and not isinstance(trace, str):
            problems.append(Problem("INVALID_INPUT", "objectWriteTraceId must be a string",
                                    f"{where}.objectWriteTraceId"))
        id_props.add(id_prop)
        values, wrong = state.clean(item.get("properties", {}), f"{where}.properties")
        problems.extend(wrong)
        if id_prop == "email":
            problems.extend(state.email_problems(item["id"], "id"))
            if values.get("email") and values["email"].lower() != item["id"].lower():
                problems.append(Problem("INVALID_INPUT", f"{where}: the email property differs from the id",
                                        "email"))
        inputs.append(_Input(item["id"], {**values, id_prop: item["id"]}, trace))
    if len(id_props) > 1:
        problems.append(Problem("INVALID_ID_PROPERTY", "all inputs of a batch use one idProperty",
                                "idProperty"))
    seen: dict[str, int] = {}
    for one in inputs:
        seen[one.id.lower()] = seen.get(one.id.lower(), 0) + 1
    duplicates = [i for i, n in seen.items() if n > 1]
    if duplicates:
        problems.append(Problem("DUPLICATE_ID",
                                f"Duplicate IDs found in batch input: [{', '.join(duplicates)}]", "id"))
    return (id_props.pop() if len(id_props) == 1 else ""), inputs, problems


async def batch_upsert(request: web.Request) -> web.Response:
    state = request.app[STATE]
    if (refused := state.missing_scope(WRITE)) is not None:
        return refused
    started = iso_now()
    body = await read_json(request)
    id_prop, inputs, problems = _read_inputs(state, body)
    if problems:
        return state.invalid(problems)
    results: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    conflicts = {e.lower() for e in state.config.conflict_emails}
    for one in inputs:
        existing = state.find(id_prop, one.id)
        blocker = state.taken(one.values, existing.id if existing else None)
        if id_prop == "email" and one.id.lower() in conflicts and existing is not None:
            blocker = existing
        if blocker is not None:
            errors.append({"status": "error", "category": "CONFLICT",
                           "message": state.conflict_message(blocker), "context": {"id": [one.id]}})
            continue
        if existing is None:
            contact, new = state.create(one.values), True
        else:
            state.update(existing, one.values)
            contact, new = existing, False
        result = {**contact.as_json(), "new": new}
        if one.trace is not None:
            result["objectWriteTraceId"] = one.trace
        results.append(result)
    state.data_rng.shuffle(results)
    answer: dict[str, Any] = {"status": "COMPLETE", "results": results, "startedAt": started,
                              "completedAt": iso_now()}
    if errors:
        return json_response({**answer, "errors": errors, "numErrors": len(errors)}, 207)
    return json_response(answer)


# --- single contacts ---

async def create_contact(request: web.Request) -> web.Response:
    state = request.app[STATE]
    if (refused := state.missing_scope(WRITE)) is not None:
        return refused
    body = await read_json(request)
    values, problems = state.clean(body.get("properties") if isinstance(body, dict) else INVALID)
    if problems:
        return state.invalid(problems)
    blocker = state.taken(values, None)
    if blocker is not None:
        return state.error(409, "CONFLICT", state.conflict_message(blocker))
    return json_response(state.create(values).as_json(), 201)


def _lookup(state: HubSpotState, request: web.Request) -> Contact | web.Response | None:
    """The contact the path names: by id, or by `?idProperty=` (email or a unique property)."""
    key = request.match_info["contact_id"]
    id_prop = request.query.get("idProperty")
    if id_prop is None or id_prop == "hs_object_id":
        return state.contacts.get(key)
    if id_prop not in state.unique_properties():
        return state.invalid([Problem("INVALID_ID_PROPERTY",
                                      f"idProperty {id_prop!r} is neither email nor a property with unique "
                                      "values", "idProperty")])
    return state.find(id_prop, key)


async def update_contact(request: web.Request) -> web.Response:
    state = request.app[STATE]
    if (refused := state.missing_scope(WRITE)) is not None:
        return refused
    found = _lookup(state, request)
    if isinstance(found, web.Response):
        return found
    if found is None:
        return state.error(404, "OBJECT_NOT_FOUND", "resource not found")
    body = await read_json(request)
    values, problems = state.clean(body.get("properties") if isinstance(body, dict) else INVALID)
    if problems:
        return state.invalid(problems)
    blocker = state.taken(values, found.id)
    if blocker is not None:
        return state.error(409, "CONFLICT", state.conflict_message(blocker))
    state.update(found, values)
    return json_response(found.as_json())


async def get_contact(request: web.Request) -> web.Response:
    state = request.app[STATE]
    if (refused := state.missing_scope(READ)) is not None:
        return refused
    found = _lookup(state, request)
    if isinstance(found, web.Response):
        return found
    if found is None:
        return state.error(404, "OBJECT_NOT_FOUND", "resource not found")
    return json_response(found.as_json(_wanted(request)))


def _wanted(request: web.Request) -> set[str]:
    """`?properties=a,b`; HubSpot's default set without it."""
    asked = {p for p in request.query.get("properties", "").split(",") if p}
    return asked or {"email", "firstname", "lastname"}


async def list_contacts(request: web.Request) -> web.Response:
    state = request.app[STATE]
    if (refused := state.missing_scope(READ)) is not None:
        return refused
    try:
        limit = int(request.query.get("limit", "10"))
        after = int(request.query.get("after", "0"))
    except ValueError:
        limit = after = -1
    if not 1 <= limit <= LIST_LIMIT or after < 0:
        return state.invalid([Problem("INVALID_INPUT", f"limit is 1 to {LIST_LIMIT}; after is a cursor",
                                      "limit")])
    page = [c for c in state.contacts.values() if int(c.id) > after]
    wanted = _wanted(request)
    answer: dict[str, Any] = {"results": [c.as_json(wanted) for c in page[:limit]]}
    if len(page) > limit:
        answer["paging"] = {"next": {"after": page[limit - 1].id}}
    return json_response(answer)


# --- properties ---

async def list_properties(request: web.Request) -> web.Response:
    state = request.app[STATE]
    if (refused := state.missing_scope(SCHEMA_READ)) is not None:
        return refused
    return json_response({"results": [d.as_json() for d in state.config.properties.values()]})


async def get_property(request: web.Request) -> web.Response:
    state = request.app[STATE]
    if (refused := state.missing_scope(SCHEMA_READ)) is not None:
        return refused
    name = request.match_info["name"]
    found = state.config.properties.get(name)
    if found is None:
        return state.error(404, "OBJECT_NOT_FOUND",
                           f"Unable to find property {name} for object type contacts")
    return json_response(found.as_json())


async def create_property(request: web.Request) -> web.Response:
    state = request.app[STATE]
    if (refused := state.missing_scope(SCHEMA_WRITE)) is not None:
        return refused
    body = await read_json(request)
    try:
        definition = PropertyDef.from_json(body)
    except ValueError as exc:
        return state.invalid([Problem("INVALID_INPUT", str(exc), "body")])
    if definition.name in state.config.properties or definition.name in SYSTEM_PROPERTIES:
        return state.error(409, "CONFLICT", f"A property named '{definition.name}' already exists.")
    state.config = replace(state.config, properties={**state.config.properties, definition.name: definition})
    return json_response(definition.as_json(), 201)


def create_app(config: HubSpotConfig | None = None, *, seed: int | None = None) -> web.Application:
    state = HubSpotState(config or HubSpotConfig(), seed=seed)
    state.writes = frozenset({batch_upsert, create_contact, update_contact})
    app = new_app(STATE, state)
    contacts = "/crm/v3/objects/contacts"
    app.router.add_post(f"{contacts}/batch/upsert", batch_upsert)
    app.router.add_post(contacts, create_contact)
    app.router.add_get(contacts, list_contacts)
    app.router.add_patch(f"{contacts}/{{contact_id}}", update_contact)
    app.router.add_get(f"{contacts}/{{contact_id}}", get_contact)
    app.router.add_get("/crm/v3/properties/contacts", list_properties)
    app.router.add_post("/crm/v3/properties/contacts", create_property)
    app.router.add_get("/crm/v3/properties/contacts/{name}", get_property)
    return app
