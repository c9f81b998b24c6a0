"""Pipedrive: a person (found by e-mail, else created), a lead for the submission, its message as a note.

Pipedrive has no upsert and no batch endpoint, and nothing in it refuses a
duplicate, so this connector proves its own exactly-once:

1. The lead carries the submission id in a lead custom field ("Leadline
   submission id"; `crm setup` creates it; the connector finds its key by
   name, or `PIPEDRIVE_SUBMISSION_FIELD` names it).
2. Before creating a lead for a person who existed already, the connector
   lists that person's leads (`GET /api/v1/leads?person_id=`: read from the
   database, not from the lagging search index) and looks for the submission
   id: the case where Pipedrive stored the lead and the answer was lost ends
   here, in an update of nothing. A person created by this very attempt has
   no leads yet, so a first write costs no lookup.
3. What an attempt learned (the person's id, the lead's id) travels in the
   retry copy's headers (`Lead.progress`), so a retry continues where the
   last attempt stopped instead of searching again: the search index can lag
   behind a person created seconds ago, which is how integrations that
   search-then-create end up with two persons.
4. The note is written once: after a retry it is looked for on the lead first.
5. The worker never works on two leads of one person at once (`key()` is the
   e-mail), so two submissions of one person cannot both create that person.

What is left: a person created in an attempt whose answer was lost, retried
while the search index still lags (a retry waits RETRY_DELAYS, 30 s by
default): that makes a second person (never a second lead), which
Pipedrive's "merge duplicates" resolves. And one submission delivered to two
workers at the same moment (the broker redelivers only after a worker died,
so only if the proxy published it twice, both inside the same instant).

Answers (Pipedrive's documentation): 401 pauses (token); 403 with a
`feature_capping_*` code is the plan's cap (quota) and pauses; 429 waits for
`x-ratelimit-reset`; `x-ratelimit-remaining` slows the worker before a 429.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import replace
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
)
from worker.crm.http import Answer, CallFailed, HttpClient, header_int, retry_after_seconds
from worker.crm.mapping import FormMapping
from worker.crm.ratelimit import WindowLimiter

MAX_BATCH = 1
# api_token requests per 2-second window on the lowest plan.
DEFAULT_RATE = Rate(20, 2.0)
SUBMISSION_FIELD_NAME = "Leadline submission id"
DAILY_RESERVE = 50
P_PERSON = "pipedrive_person"
P_LEAD = "pipedrive_lead"


def classify(status: int, body: Any, text: str, headers: Mapping[str, str]) -> Outcome | None:
    """A Pipedrive answer; None when it succeeded. Pure."""
    if 200 <= status < 300:
        return None
    message = str(json_field(body, "error") or text)
    info = json_field(body, "error_info")
    if info:
        message = f"{message} ({info})"
    code = str(json_field(body, "code") or "")
    if status == 401:
        return outage(REASON_CREDENTIALS, status, "HTTP401", message or "token refused")
    if status == 403:
        if code.startswith("feature_capping"):
            return outage(REASON_QUOTA, status, code, message)
        return outage(REASON_CREDENTIALS, status, code or "HTTP403", message)
    if status == 429:
        wait = retry_after_seconds(headers.get("Retry-After"))
        if wait is None:
            reset = header_int(headers, "x-ratelimit-reset")
            wait = float(reset) if reset is not None else None
        return rate_limited(status, message, wait)
    if status >= 500 or status in {408, 425}:
        return call_failed(status, f"HTTP{status}", message)
    return refused(status, code or f"HTTP{status}", message)


def find_lead(leads: Any, field_key: str, submission_id: str) -> str | None:
    """The id of the lead carrying `submission_id` in the custom field, if any. Pure."""
    for lead in leads if isinstance(leads, list) else []:
        if isinstance(lead, Mapping) and str(lead.get(field_key, "")) == submission_id:
            return str(lead.get("id"))
    return None


def oldest_person(items: Any) -> str | None:
    """The lowest id among search results (the first person made for this e-mail). Pure."""
    ids = [json_field(item, "item", "id") for item in items if isinstance(item, Mapping)] \
        if isinstance(items, list) else []
    numbers = sorted(int(i) for i in ids if isinstance(i, int) or (isinstance(i, str) and i.isdigit()))
    return str(numbers[0]) if numbers else None


class _Stop(Exception):
    """A step of the write ended the attempt with this outcome."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome.summary)
        self.outcome = outcome


class PipedriveConnector:
    name = "pipedrive"
    max_batch = MAX_BATCH

    def __init__(self, api_url: str, token: str, http: HttpClient, mappings: Mapping[str, FormMapping],
                 *, submission_field: str = "") -> None:
        self.api_url = api_url.rstrip("/")
        self.http = http
        self.mappings = mappings
        self._auth = {"x-api-token": token}
        self._field_key = submission_field
        self._field_lock = asyncio.Lock()

    def key(self, lead: Lead) -> str:
        return str(lead.fields.get("email", "")).strip().lower() or lead.submission_id

    async def _call(self, method: str, path: str, body: Any = None,
                    params: Mapping[str, str] | None = None) -> tuple[Answer, Any]:
        try:
            answer = await self.http.request(method, self.api_url + path, json=body, params=params,
                                             headers=self._auth)
        except CallFailed as exc:
            raise _Stop(call_failed(None, exc.error_class, exc.error)) from None
        self.http.limiter.observe(header_int(answer.headers, "x-ratelimit-remaining"),
                                  _float(header_int(answer.headers, "x-ratelimit-reset")))
        data = answer.json()
        problem = classify(answer.status, data, answer.text(), answer.headers)
        if problem is not None:
            raise _Stop(problem)
        left = header_int(answer.headers, "x-daily-requests-left")
        if left is not None and left <= DAILY_RESERVE:
            self.http.limiter.hold(3600.0, "quota")
        return answer, json_field(data, "data")

    async def submission_field(self) -> str:
        """The custom field's key, looked up by name once."""
        if self._field_key:
            return self._field_key
        async with self._field_lock:
            if not self._field_key:
                _, fields = await self._call("GET", "/api/v1/dealFields")
                for item in fields if isinstance(fields, list) else []:
                    if isinstance(item, Mapping) and item.get("name") == SUBMISSION_FIELD_NAME:
                        self._field_key = str(item.get("key"))
                if not self._field_key:
                    raise _Stop(outage(REASON_CONFIG, None, "NoSubmissionField",
                                       f"the lead field {SUBMISSION_FIELD_NAME!r} does not exist: run "
                                       "`python -m worker crm setup` (or set PIPEDRIVE_SUBMISSION_FIELD)"))
        return self._field_key

    async def write(self, leads: Sequence[Lead]) -> list[Outcome]:
        return [await self._write_one(lead) for lead in leads]

    async def _write_one(self, lead: Lead) -> Outcome:
        progress: dict[str, str] = dict(lead.progress)
        try:
            return await self._steps(lead, progress)
        except _Stop as stop:
            # A retry continues from what this attempt created (see the module's point 3).
            if progress and stop.outcome.verdict in {Verdict.TEMPORARY, Verdict.CALL_FAILED}:
                return replace(stop.outcome, progress=progress)
            return stop.outcome

    async def _steps(self, lead: Lead, progress: dict[str, str]) -> Outcome:
        mapped = self.mappings.get(lead.form, FormMapping()).apply(lead)
        person_fields = {k.split(".", 1)[1]: v for k, v in mapped.items() if k.startswith("person.")}
        lead_fields = {k.split(".", 1)[1]: v for k, v in mapped.items() if k.startswith("lead.")}
        note = mapped.get("note.content")
        email = str(person_fields.pop("email", "")).strip()
        field_key = await self.submission_field()

        person_id, existed = progress.get(P_PERSON), True
        if person_id is None:
            person_id, existed = await self._person(email, person_fields)
            progress[P_PERSON] = person_id
        lead_id = progress.get(P_LEAD)
        found_before = lead_id is not None
        if lead_id is None and (existed or lead.may_exist):
            _, leads = await self._call("GET", "/api/v1/leads",
                                        params={"person_id": person_id, "limit": "500"})
            lead_id = find_lead(leads, field_key, lead.submission_id)
            found_before = lead_id is not None
        if lead_id is None:
            body = {"title": str(lead_fields.pop("title", "") or "Web lead"), "person_id": int(person_id),
                    **lead_fields, field_key: lead.submission_id}
            _, created = await self._call("POST", "/api/v1/leads", body)
            lead_id = str(json_field(created, "id") or "")
            progress[P_LEAD] = lead_id
        if note:
            await self._note(lead_id, str(note), look_first=found_before or lead.may_exist)
        return done(lead_id, 201)

    async def _person(self, email: str, fields: dict[str, Any]) -> tuple[str, bool]:
        """The person with this e-mail (oldest first), or a new one: (id, existed before)."""
        if email:
            _, found = await self._call("GET", "/api/v2/persons/search", params={
                "term": email, "fields": "email", "exact_match": "true"})
            person = oldest_person(json_field(found, "items"))
            if person is not None:
                return person, True
        body: dict[str, Any] = {"name": str(fields.pop("name", "") or email or "Web visitor"), **fields}
        if email:
            body["emails"] = [{"value": email, "primary": True, "label": "work"}]
        _, created = await self._call("POST", "/api/v2/persons", body)
        return str(json_field(created, "id")), False

    async def _note(self, lead_id: str, content: str, *, look_first: bool) -> None:
        if look_first:
            _, notes = await self._call("GET", "/api/v1/notes", params={"lead_id": lead_id})
            if any(isinstance(n, Mapping) and n.get("content") == content for n in notes or []):
                return
        await self._call("POST", "/api/v1/notes", {"content": content, "lead_id": lead_id})

    async def probe(self) -> Outcome:
        try:
            await self._call("GET", "/api/v1/users/me")
        except _Stop as stop:
            return stop.outcome
        return done(status=200)

    async def check(self) -> list[Finding]:
        try:
            _, me = await self._call("GET", "/api/v1/users/me")
        except _Stop as stop:
            return [Finding(False, f"Pipedrive does not accept the token: {stop.outcome.summary} "
                            "(PIPEDRIVE_TOKEN, PIPEDRIVE_API_URL)")]
        company = json_field(me, "company_domain") or "?"
        findings = [Finding(True, f"the token is accepted (company {company})")]
        try:
            key = await self.submission_field()
            findings.append(Finding(True, f"the lead field {SUBMISSION_FIELD_NAME!r} exists (key {key})"))
        except _Stop as stop:
            findings.append(Finding(False, stop.outcome.error))
        for form, mapping in sorted(self.mappings.items()):
            if "person.email" not in mapping.targets:
                findings.append(Finding(False, f"form {form!r}: nothing is mapped to person.email, by which "
                                        "a returning person is found"))
        return findings

    async def setup(self) -> list[Finding]:
        try:
            key = await self.submission_field()
            return [Finding(True, f"the lead field {SUBMISSION_FIELD_NAME!r} exists (key {key})")]
        except _Stop as stop:
            if stop.outcome.reason != REASON_CONFIG:
                return [Finding(False, stop.outcome.summary)]
        try:
            _, field = await self._call("POST", "/api/v1/dealFields",
                                        {"name": SUBMISSION_FIELD_NAME, "field_type": "varchar"})
        except _Stop as stop:
            return [Finding(False, f"creating the field failed: {stop.outcome.summary}")]
        self._field_key = str(json_field(field, "key"))
        return [Finding(True, f"created the lead field {SUBMISSION_FIELD_NAME!r} (key {self._field_key})")]

    @property
    def limiter(self) -> WindowLimiter:
        return self.http.limiter

    async def close(self) -> None:
        await self.http.close()


def _float(value: int | None) -> float | None:
    return float(value) if value is not None else None
