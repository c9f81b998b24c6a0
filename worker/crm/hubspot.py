"""HubSpot: contacts upserted by e-mail, up to 100 in one call.

    POST /crm/v3/objects/contacts/batch/upsert
    {"inputs": [{"idProperty": "email", "id": <email>, "properties": {…},
                 "objectWriteTraceId": <submission id>}]}

Exactly one contact per person, whatever is repeated: an upsert keyed on the
e-mail writes the same contact however often it runs, so a redelivery or a
write whose answer was lost only writes the same values again. Two
submissions from one person are one contact; `key()` is the e-mail, so the
worker never puts them into one call (HubSpot refuses duplicate ids in a
batch) nor into two calls at once, and the later submission's fields win.
The submission id goes into the contact's `leadline_submission_id` property
(`crm setup` creates it) and into `objectWriteTraceId`, which HubSpot echoes
per result: that is how results, which come in no particular order, are
matched to leads.

What HubSpot's answers mean (its documentation: error bodies carry `category`
and `message`; 429 carries `policyName`): one invalid input fails the whole
batch with a 400, so the batch is split to find it (the inputs the message
names first, else halves) and only that lead is refused; a 409-style
CONFLICT "Existing ID: n" is resolved by updating contact n, never retried
as is; 401 and 403 (token, scopes) pause the worker; 429 waits
(TEN_SECONDLY_ROLLING) or pauses for the day (DAILY).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from leadline.config import Rate
from worker.crm.base import (
    REASON_CONFIG,
    REASON_CREDENTIALS,
    REASON_QUOTA,
    Finding,
    Lead,
    Outcome,
    Verdict,
    call_failed,
    done,
    json_field,
    outage,
    rate_limited,
    refused,
    temporary,
)
from worker.crm.http import Answer, CallFailed, HttpClient, header_int, retry_after_seconds
from worker.crm.mapping import FormMapping
from worker.crm.ratelimit import WindowLimiter

DEFAULT_API_URL = "https://api.hubapi.com"
MAX_BATCH = 100
# The Free/Starter private-app limit: the lowest documented plan.
DEFAULT_RATE = Rate(100, 10.0)
SUBMISSION_PROPERTY = "leadline_submission_id"
UPSERT = "/crm/v3/objects/contacts/batch/upsert"
PROPERTIES = "/crm/v3/properties/contacts"
_EXISTING_ID = re.compile(r"Existing ID:\s*(\d+)")
_MISSING_PROPERTY = re.compile(r'Property "?([A-Za-z0-9_]+)"? does not exist')


def email_of(lead: Lead, properties: Mapping[str, Any]) -> str:
    value = properties.get("email", lead.fields.get("email", ""))
    return str(value).strip().lower()


def classify_call(status: int, body: Any, text: str, headers: Mapping[str, str]) -> Outcome | None:
    """What a whole answer means for every lead in the call; None: read it input by input.

    A 400 is handled by the caller (it may be one lead's data); pure.
    """
    message = str(json_field(body, "message") or text)
    category = str(json_field(body, "category") or "")
    if status in {200, 201, 207}:
        return None
    if status == 401:
        return outage(REASON_CREDENTIALS, status, category or "HTTP401", message or "token refused")
    if status == 403:
        # MISSING_SCOPES, or a token without access to the portal
        return outage(REASON_CREDENTIALS, status, category or "HTTP403", message)
    if status == 429:
        policy = str(json_field(body, "policyName") or "")
        if policy.upper() == "DAILY":
            return outage(REASON_QUOTA, status, "RATE_LIMIT", message)
        wait = retry_after_seconds(headers.get("Retry-After"))
        if wait is None:
            interval = header_int(headers, "X-HubSpot-RateLimit-Interval-Milliseconds")
            wait = interval / 1000 if interval else None
        return rate_limited(status, message, wait)
    if status >= 500 or status in {408, 425}:
        return call_failed(status, category or f"HTTP{status}", message)
    if status == 400:
        missing = _MISSING_PROPERTY.search(message)
        if missing:
            # a mapped property the portal lacks: every lead would fail alike
            return outage(REASON_CONFIG, status, "VALIDATION_ERROR",
                          f"{message} (create it, or change the mapping; `crm check` says which)")
        return None
    # 404 on our fixed endpoints is a wrong HUBSPOT_API_URL, not a lead's fault
    return outage(REASON_CONFIG, status, category or f"HTTP{status}", message)


def classify_input_error(error: Mapping[str, Any]) -> Outcome:
    """One input's error inside a 207 answer; pure."""
    category = str(error.get("category") or "")
    message = str(error.get("message") or "")
    if category == "CONFLICT" and _EXISTING_ID.search(message):
        # resolved by updating the existing contact, see HubSpotConnector._resolve
        return Outcome(Verdict.TEMPORARY, status=409, error_class="CONFLICT", error=message)
    if category in {"VALIDATION_ERROR", "INVALID_EMAIL", "PROPERTY_DOESNT_EXIST"}:
        return refused(400, category, message)
    return temporary(None, category or "HubSpotError", message)


def existing_id(message: str) -> str | None:
    match = _EXISTING_ID.search(message)
    return match.group(1) if match else None


def blamed(message: str, emails: Sequence[str]) -> set[int]:
    """Which inputs a whole-batch 400 names (by e-mail), so they can be refused without bisecting."""
    lowered = message.lower()
    return {i for i, email in enumerate(emails) if email and email in lowered}


class HubSpotConnector:
    name = "hubspot"
    max_batch = MAX_BATCH

    def __init__(self, api_url: str, token: str, http: HttpClient,
                 mappings: Mapping[str, FormMapping]) -> None:
        self.api_url = api_url.rstrip("/")
        self.http = http
        self.mappings = mappings
        self._auth = {"Authorization": f"Bearer {token}"}

    def key(self, lead: Lead) -> str:
        return str(lead.fields.get("email", "")).strip().lower() or lead.submission_id

    def properties(self, lead: Lead) -> dict[str, Any]:
        return self.mappings.get(lead.form, FormMapping()).apply(lead)

    async def write(self, leads: Sequence[Lead]) -> list[Outcome]:
        return await self._upsert(list(leads), [self.properties(lead) for lead in leads])

    async def _call(self, method: str, path: str, body: Any = None,
                    params: Mapping[str, str] | None = None) -> Answer:
        answer = await self.http.request(method, self.api_url + path, json=body, params=params,
                                         headers=self._auth)
        self.http.limiter.observe(header_int(answer.headers, "X-HubSpot-RateLimit-Remaining"), None)
        return answer

    async def _upsert(self, leads: list[Lead], props: list[dict[str, Any]]) -> list[Outcome]:
        emails = [email_of(lead, p) for lead, p in zip(leads, props, strict=True)]
        outcomes: list[Outcome | None] = [None] * len(leads)
        sendable = []
        for i, email in enumerate(emails):
            if "@" not in email:
                outcomes[i] = refused(None, "NoEmail", "HubSpot contacts are keyed on the e-mail; "
                                      "this lead has none")
            else:
                sendable.append(i)
        if sendable:
            for i, outcome in zip(sendable, await self._send([leads[i] for i in sendable],
                                                             [props[i] for i in sendable],
                                                             [emails[i] for i in sendable]), strict=True):
                outcomes[i] = outcome
        return [o if o is not None else temporary(None, "HubSpotError", "no answer for this lead")
                for o in outcomes]

    async def _send(self, leads: list[Lead], props: list[dict[str, Any]],
                    emails: list[str]) -> list[Outcome]:
        inputs = [{"idProperty": "email", "id": email, "properties": p,
                   "objectWriteTraceId": lead.submission_id}
                  for lead, p, email in zip(leads, props, emails, strict=True)]
        try:
            answer = await self._call("POST", UPSERT, {"inputs": inputs})
        except CallFailed as exc:
            return [call_failed(None, exc.error_class, exc.error)] * len(leads)
        body = answer.json()
        whole = classify_call(answer.status, body, answer.text(), answer.headers)
        if whole is not None:
            return [whole] * len(leads)
        if answer.status == 400:
            return await self._split(leads, props, emails, body, answer)
        return await self._read_results(leads, props, emails, body)

    async def _split(self, leads: list[Lead], props: list[dict[str, Any]], emails: list[str],
                     body: Any, answer: Answer) -> list[Outcome]:
        """One bad input failed the whole batch: refuse it alone, write the rest."""
        message = str(json_field(body, "message") or answer.text())
        details = " ".join(str(e.get("message", "")) + " " + str(e.get("in", ""))
                           for e in (json_field(body, "errors") or []) if isinstance(e, Mapping))
        category = str(json_field(body, "category") or "VALIDATION_ERROR")
        if len(leads) == 1:
            return [refused(400, category, message)]
        named = blamed(f"{message} {details}", emails)
        if named and len(named) < len(leads):
            groups = [sorted(named), [i for i in range(len(leads)) if i not in named]]
        else:
            half = len(leads) // 2
            groups = [list(range(half)), list(range(half, len(leads)))]
        out: list[Outcome | None] = [None] * len(leads)
        for group in groups:
            results = await self._send([leads[i] for i in group], [props[i] for i in group],
                                       [emails[i] for i in group])
            for i, outcome in zip(group, results, strict=True):
                out[i] = outcome
        return [o for o in out if o is not None]

    async def _read_results(self, leads: list[Lead], props: list[dict[str, Any]], emails: list[str],
                            body: Any) -> list[Outcome]:
        by_trace = {lead.submission_id: i for i, lead in enumerate(leads)}
        by_email = {email: i for i, email in enumerate(emails)}
        outcomes: list[Outcome | None] = [None] * len(leads)
        for result in json_field(body, "results") or []:
            if not isinstance(result, Mapping):
                continue
            index = by_trace.get(str(result.get("objectWriteTraceId", "")))
            if index is None:
                index = by_email.get(str(json_field(result, "properties", "email") or "").lower())
            if index is not None:
                outcomes[index] = done(str(result.get("id", "")), 200)
        for error in json_field(body, "errors") or []:
            if not isinstance(error, Mapping):
                continue
            for index in self._error_indexes(error, by_trace, by_email):
                outcome = classify_input_error(error)
                contact = existing_id(outcome.error) if outcome.status == 409 else None
                if contact is not None:
                    outcome = await self._resolve(contact, props[index])
                outcomes[index] = outcome
        return [o if o is not None else temporary(None, "HubSpotError",
                                                  "HubSpot's answer did not mention this lead")
                for o in outcomes]

    @staticmethod
    def _error_indexes(error: Mapping[str, Any], by_trace: Mapping[str, int],
                       by_email: Mapping[str, int]) -> list[int]:
        context = error.get("context")
        found: list[int] = []
        if isinstance(context, Mapping):
            for values in context.values():
                for value in values if isinstance(values, list) else [values]:
                    index = by_trace.get(str(value), by_email.get(str(value).lower()))
                    if index is not None and index not in found:
                        found.append(index)
        return found

    async def _resolve(self, contact_id: str, properties: dict[str, Any]) -> Outcome:
        """A conflict names the contact that holds the e-mail: update that one."""
        try:
            answer = await self._call("PATCH", f"/crm/v3/objects/contacts/{contact_id}",
                                      {"properties": properties})
        except CallFailed as exc:
            return call_failed(None, exc.error_class, exc.error)
        if answer.ok:
            return done(contact_id, answer.status)
        body = answer.json()
        whole = classify_call(answer.status, body, answer.text(), answer.headers)
        if whole is not None:
            return whole
        return refused(answer.status, str(json_field(body, "category") or f"HTTP{answer.status}"),
                       str(json_field(body, "message") or answer.text()))

    async def probe(self) -> Outcome:
        try:
            answer = await self._call("GET", "/crm/v3/objects/contacts", params={"limit": "1"})
        except CallFailed as exc:
            return call_failed(None, exc.error_class, exc.error)
        if answer.ok:
            return done(status=answer.status)
        return classify_call(answer.status, answer.json(), answer.text(), answer.headers) or refused(
            answer.status, f"HTTP{answer.status}", answer.text())

    async def _property_names(self) -> tuple[set[str] | None, Finding]:
        try:
            answer = await self._call("GET", PROPERTIES)
        except CallFailed as exc:
            return None, Finding(False, f"HubSpot is unreachable at {self.api_url}: {exc} (HUBSPOT_API_URL)")
        body = answer.json()
        if answer.status == 401:
            return None, Finding(False, "HubSpot refuses the token: create a private app and set "
                                 "HUBSPOT_TOKEN to its access token")
        if answer.status == 403:
            return None, Finding(False, "the token lacks scopes: give the private app "
                                 "crm.objects.contacts.read/write and crm.schemas.contacts.read/write "
                                 f"({json_field(body, 'message') or answer.text()})")
        if not answer.ok:
            return None, Finding(False, f"reading the contact properties failed: HTTP {answer.status} "
                                 f"{answer.text()}")
        names = {str(p.get("name")) for p in json_field(body, "results") or [] if isinstance(p, Mapping)}
        return names, Finding(True, f"the token is accepted; the portal has {len(names)} contact properties")

    async def check(self) -> list[Finding]:
        names, first = await self._property_names()
        findings = [first]
        if names is None:
            return findings
        for form, mapping in sorted(self.mappings.items()):
            targets = set(mapping.targets)
            if "email" not in targets:
                findings.append(Finding(False, f"form {form!r}: nothing is mapped to the contact's email, "
                                        "on which HubSpot upserts"))
            for target in sorted(targets):
                if target in names:
                    continue
                hint = ("run `python -m worker crm setup` to create it" if target == SUBMISSION_PROPERTY
                        else f"create it in HubSpot or change schemas/{form}.crm.json")
                findings.append(Finding(False, f"form {form!r}: property {target!r} does not exist: {hint}"))
        if all(f.ok for f in findings):
            findings.append(Finding(True, "every mapped property exists"))
        return findings

    async def setup(self) -> list[Finding]:
        names, first = await self._property_names()
        if names is None:
            return [first]
        if SUBMISSION_PROPERTY in names:
            return [Finding(True, f"property {SUBMISSION_PROPERTY!r} exists already")]
        definition = {"name": SUBMISSION_PROPERTY, "label": "Leadline submission id", "type": "string",
                      "fieldType": "text", "groupName": "contactinformation",
                      "description": "The id of this contact's latest web-form submission (Leadline)"}
        try:
            answer = await self._call("POST", PROPERTIES, definition)
        except CallFailed as exc:
            return [Finding(False, f"creating {SUBMISSION_PROPERTY!r} failed: {exc}")]
        if answer.ok or answer.status == 409:
            return [Finding(True, f"created the contact property {SUBMISSION_PROPERTY!r}")]
        return [Finding(False, f"creating {SUBMISSION_PROPERTY!r} failed: HTTP {answer.status} "
                        f"{answer.text()}")]

    @property
    def limiter(self) -> WindowLimiter:
        return self.http.limiter

    async def close(self) -> None:
        await self.http.close()
