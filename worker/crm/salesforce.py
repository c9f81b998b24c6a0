"""Salesforce: a Lead upserted on an external-id field that holds the submission id.

    PATCH /services/data/<v>/sobjects/Lead/<field>/<submission id>      one lead
    PATCH /services/data/<v>/composite/sobjects/Lead/<field>             up to 200, allOrNone false

Exactly one record per submission: the external-id field
(`Leadline_Submission_Id__c`, External ID + Unique) is the upsert key, so a
redelivery, or a retry after an answer was lost, finds the record the first
write created and updates it with the same values: it never creates a second
one. With the field set Unique, Salesforce itself refuses a second record
with the same id, whoever writes it.

What Salesforce's answers mean (its documentation: error bodies are arrays of
`{errorCode, message, fields}`; it sends no 429: a 403
`REQUEST_LIMIT_EXCEEDED` is the daily allocation, or, when it names a
Concurrent… limit, too many requests at once, which waits a second): per-record errors in a
composite answer are that lead's own (`REQUIRED_FIELD_MISSING`, a validation
rule…), except those that say the org is set up otherwise than the mapping
(`INVALID_FIELD`…), which every lead would meet: those pause the worker.
401 `INVALID_SESSION_ID` refreshes the token once when a refresh token is
configured, else pauses; 403 `REQUEST_LIMIT_EXCEEDED` (the daily allocation)
pauses, and the worker stops on its own shortly before the allocation runs
out (`Sforce-Limit-Info`); 300 / `DUPLICATE_EXTERNAL_ID` (a non-unique
external id matching several records) is resolved by a lookup: the oldest
matching Lead is updated.
"""

from __future__ import annotations

import asyncio
import re
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from leadline.config import Rate
from worker.crm.base import (
    REASON_CONFIG,
    REASON_CREDENTIALS,
    REASON_QUOTA,
    Finding,
    Lead,
    Outcome,
    call_failed,
    done,
    json_field,
    outage,
    rate_limited,
    refused,
    temporary,
)
from worker.crm.http import Answer, CallFailed, HttpClient
from worker.crm.mapping import FormMapping
from worker.crm.ratelimit import WindowLimiter

DEFAULT_API_VERSION = "v61.0"
DEFAULT_EXTERNAL_ID_FIELD = "Leadline_Submission_Id__c"
DEFAULT_LOGIN_URL = "https://login.salesforce.com"
MAX_BATCH = 200
# The smallest documented daily allocation (Developer Edition): 15,000 calls
# in 24 hours. Salesforce has no per-second limit to respect.
DEFAULT_RATE = Rate(15_000, 86_400.0)
# Stop writing while this share of the daily allocation is left (others in the org need it too).
DAILY_RESERVE_SHARE = 0.01
DAILY_RESERVE_MIN = 10

# Per-record codes that say the org differs from the mapping: every lead would fail alike.
CONFIG_CODES = frozenset({
    "INVALID_FIELD", "INVALID_TYPE", "INVALID_FIELD_FOR_INSERT_UPDATE", "INSUFFICIENT_ACCESS_OR_READONLY",
    "INSUFFICIENT_ACCESS_ON_CROSS_REFERENCE_ENTITY", "NOT_FOUND", "INVALID_OPERATION_WITH_EXPIRED_PASSWORD",
})
# Per-record codes worth another try later.
TEMPORARY_CODES = frozenset({
    "UNABLE_TO_LOCK_ROW", "SERVER_UNAVAILABLE", "REQUEST_RUNNING_TOO_LONG",
    "ALL_OR_NONE_OPERATION_ROLLED_BACK", "UNKNOWN_EXCEPTION",
})
# Per-record codes that refuse this lead's data.
PERMANENT_CODES = frozenset({
    "REQUIRED_FIELD_MISSING", "FIELD_CUSTOM_VALIDATION_EXCEPTION", "INVALID_EMAIL_ADDRESS", "STRING_TOO_LONG",
    "FIELD_INTEGRITY_EXCEPTION", "DUPLICATES_DETECTED", "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
    "MALFORMED_ID", "JSON_PARSER_ERROR", "NUMBER_OUTSIDE_VALID_RANGE",
})
# How long to wait when Salesforce says too many of our requests run at once.
CONCURRENCY_WAIT = 1.0
_USAGE = re.compile(r"api-usage=(\d+)/(\d+)")


def first_error(body: Any) -> tuple[str, str, list[str]]:
    """(errorCode, message, fields) of Salesforce's error array (or of one result's errors)."""
    errors = body if isinstance(body, list) else (body.get("errors") if isinstance(body, Mapping) else None)
    if isinstance(errors, list) and errors and isinstance(errors[0], Mapping):
        e = errors[0]
        code = str(e.get("errorCode") or e.get("statusCode") or "")
        fields = e.get("fields")
        return code, str(e.get("message") or ""), [str(f) for f in fields] if isinstance(fields, list) else []
    return "", "", []


def classify_record_error(code: str, message: str, fields: Sequence[str] = ()) -> Outcome:
    """One record's error code; pure. DUPLICATE_EXTERNAL_ID is the caller's to resolve."""
    text = f"{message} (fields: {', '.join(fields)})" if fields else message
    if code == "REQUEST_LIMIT_EXCEEDED":
        return outage(REASON_QUOTA, 403, code, text)
    if code in CONFIG_CODES:
        return outage(REASON_CONFIG, 400, code, text)
    if code in PERMANENT_CODES:
        return refused(400, code, text)
    # TEMPORARY_CODES and anything unknown: the tiers end in the DLQ with the story if it stays
    return temporary(None, code or "SalesforceError", text)


def classify_call(status: int, body: Any, text: str) -> Outcome | None:
    """A whole answer's meaning for every lead in the call; None: read it record by record. Pure."""
    code, message, _ = first_error(body)
    message = message or text
    if status in {200, 201, 204, 300}:
        return None
    if status == 401:
        return outage(REASON_CREDENTIALS, status, code or "INVALID_SESSION_ID", message)
    if status == 403:
        if code == "REQUEST_LIMIT_EXCEEDED" and "concurrent" in message.lower():
            # too many long requests at once (ConcurrentPerOrgLongTxn…): wait, not a day
            return rate_limited(status, message, CONCURRENCY_WAIT)
        if code == "REQUEST_LIMIT_EXCEEDED":
            return outage(REASON_QUOTA, status, code, message)
        return outage(REASON_CREDENTIALS, status, code or "HTTP403", message)
    if status == 404:
        # the external-id field, the object or the API version is not there
        return outage(REASON_CONFIG, status, code or "NOT_FOUND", message)
    if status >= 500 or status in {408, 425, 429}:
        return call_failed(status, code or f"HTTP{status}", message)
    return None  # a 400: one record's data, read by the caller


def usage(headers: Mapping[str, str]) -> tuple[int, int] | None:
    """`Sforce-Limit-Info: api-usage=used/max`."""
    match = _USAGE.search(headers.get("Sforce-Limit-Info", ""))
    return (int(match.group(1)), int(match.group(2))) if match else None


def daily_reserve(allocation: int) -> int:
    return max(DAILY_RESERVE_MIN, int(allocation * DAILY_RESERVE_SHARE))


@dataclass(frozen=True, slots=True)
class OAuthRefresh:
    """What `POST /services/oauth2/token` needs for a new access token."""

    login_url: str
    client_id: str
    client_secret: str
    refresh_token: str


class SalesforceConnector:
    name = "salesforce"
    max_batch = MAX_BATCH

    def __init__(self, instance_url: str, token: str, http: HttpClient, mappings: Mapping[str, FormMapping],
                 *, api_version: str = DEFAULT_API_VERSION,
                 external_id_field: str = DEFAULT_EXTERNAL_ID_FIELD,
                 refresh: OAuthRefresh | None = None) -> None:
        self.instance_url = instance_url.rstrip("/")
        self.http = http
        self.mappings = mappings
        self.api_version = api_version
        self.field = external_id_field
        self._token = token
        self._refresh = refresh
        self._refresh_lock = asyncio.Lock()
        self.quota_left: int | None = None
        self.quota_low = False

    @property
    def base(self) -> str:
        return f"{self.instance_url}/services/data/{self.api_version}"

    def key(self, lead: Lead) -> str:
        return lead.submission_id

    def record(self, lead: Lead) -> dict[str, Any]:
        fields = self.mappings.get(lead.form, FormMapping()).apply(lead)
        fields.pop(self.field, None)  # the key lives in the URL or beside the attributes
        return fields

    # -- calls ---------------------------------------------------------------

    async def _call(self, method: str, url: str, body: Any = None) -> Answer:
        """One request; a refused session is refreshed once when a refresh token is configured."""
        token = self._token
        answer = await self._send(method, url, body, token)
        if answer.status == 401 and self._refresh is not None and await self._renew(token):
            answer = await self._send(method, url, body, self._token)
        return answer

    async def _send(self, method: str, url: str, body: Any, token: str) -> Answer:
        answer = await self.http.request(method, url, json=body, headers={"Authorization": f"Bearer {token}"})
        seen = usage(answer.headers)
        if seen is not None:
            used, allocation = seen
            self.quota_left = allocation - used
            self.quota_low = self.quota_left <= daily_reserve(allocation)
        return answer

    async def _renew(self, refused_token: str) -> bool:
        """A new access token from the refresh token; True when there is one to try."""
        assert self._refresh is not None
        async with self._refresh_lock:
            if self._token != refused_token:
                return True  # another call renewed it meanwhile
            r = self._refresh
            form = urllib.parse.urlencode({
                "grant_type": "refresh_token", "client_id": r.client_id,
                "client_secret": r.client_secret, "refresh_token": r.refresh_token})
            try:
                answer = await self.http.request(
                    "POST", f"{r.login_url.rstrip('/')}/services/oauth2/token", data=form.encode(),
                    headers={"Content-Type": "application/x-www-form-urlencoded"})
            except CallFailed:
                return False
            body = answer.json()
            token = body.get("access_token") if isinstance(body, Mapping) else None
            if not answer.ok or not isinstance(token, str) or not token:
                return False
            self._token = token
            instance = body.get("instance_url")
            if isinstance(instance, str) and instance.startswith("http"):
                self.instance_url = instance.rstrip("/")
            return True

    # -- writing -------------------------------------------------------------

    async def write(self, leads: Sequence[Lead]) -> list[Outcome]:
        if self.quota_low:
            left = self.quota_left if self.quota_left is not None else 0
            reserve = outage(REASON_QUOTA, None, "DailyApiRequests",
                             f"{left} calls of the daily allocation are left: kept for the rest of the org")
            return [reserve] * len(leads)
        if len(leads) == 1:
            return [await self._upsert_one(leads[0])]
        return await self._upsert_many(list(leads))

    async def _upsert_one(self, lead: Lead) -> Outcome:
        url = f"{self.base}/sobjects/Lead/{self.field}/{urllib.parse.quote(lead.submission_id, safe='')}"
        try:
            answer = await self._call("PATCH", url, self.record(lead))
        except CallFailed as exc:
            return call_failed(None, exc.error_class, exc.error)
        body = answer.json()
        whole = classify_call(answer.status, body, answer.text())
        if whole is not None:
            return whole
        if answer.status == 300:
            return await self._resolve(lead)
        if answer.ok:
            record_id = body.get("id", "") if isinstance(body, Mapping) else ""
            return done(str(record_id), answer.status)
        code, message, fields = first_error(body)
        if code == "DUPLICATE_EXTERNAL_ID":
            return await self._resolve(lead)
        return classify_record_error(code or f"HTTP{answer.status}", message or answer.text(), fields)

    async def _upsert_many(self, leads: list[Lead]) -> list[Outcome]:
        records = [{"attributes": {"type": "Lead"}, self.field: lead.submission_id, **self.record(lead)}
                   for lead in leads]
        try:
            answer = await self._call("PATCH", f"{self.base}/composite/sobjects/Lead/{self.field}",
                                      {"allOrNone": False, "records": records})
        except CallFailed as exc:
            return [call_failed(None, exc.error_class, exc.error)] * len(leads)
        body = answer.json()
        whole = classify_call(answer.status, body, answer.text())
        if whole is not None:
            return [whole] * len(leads)
        if not answer.ok or not isinstance(body, list) or len(body) != len(leads):
            code, message, fields = first_error(body)
            outcome = classify_record_error(code or f"HTTP{answer.status}", message or answer.text(), fields)
            return [outcome] * len(leads)
        outcomes: list[Outcome] = []
        for lead, result in zip(leads, body, strict=True):
            if isinstance(result, Mapping) and result.get("success") is True:
                outcomes.append(done(str(result.get("id", "")), 201 if result.get("created") else 200))
                continue
            code, message, fields = first_error(result)
            if code == "DUPLICATE_EXTERNAL_ID":
                outcomes.append(await self._resolve(lead))
            else:
                outcomes.append(classify_record_error(code, message, fields))
        return outcomes

    async def _resolve(self, lead: Lead) -> Outcome:
        """Several Leads carry this submission id (a non-unique field): update the oldest."""
        sid = lead.submission_id.replace("\\", "\\\\").replace("'", "\\'")
        # SOQL, not SQL: the field name is checked at start, the value escaped as SOQL demands.
        query = f"SELECT Id FROM Lead WHERE {self.field} = '{sid}' ORDER BY CreatedDate"  # noqa: S608
        try:
            found = await self._call("GET", f"{self.base}/query?q={urllib.parse.quote(query)}")
            records = json_field(found.json(), "records") if found.ok else None
            if not isinstance(records, list) or not records or not isinstance(records[0], Mapping):
                return temporary(found.status, "DUPLICATE_EXTERNAL_ID",
                                 "several Leads match the submission id and the lookup found none")
            record_id = str(records[0].get("Id"))
            answer = await self._call("PATCH", f"{self.base}/sobjects/Lead/{record_id}", self.record(lead))
        except CallFailed as exc:
            return call_failed(None, exc.error_class, exc.error)
        if answer.ok:
            return done(record_id, answer.status)
        whole = classify_call(answer.status, answer.json(), answer.text())
        if whole is not None:
            return whole
        code, message, fields = first_error(answer.json())
        return classify_record_error(code or f"HTTP{answer.status}", message or answer.text(), fields)

    # -- health and set-up ---------------------------------------------------

    async def probe(self) -> Outcome:
        """`GET limits`: the session works, and how much of the daily allocation is left."""
        try:
            answer = await self._call("GET", f"{self.base}/limits")
        except CallFailed as exc:
            return call_failed(None, exc.error_class, exc.error)
        body = answer.json()
        if answer.ok:
            daily = body.get("DailyApiRequests") if isinstance(body, Mapping) else None
            if isinstance(daily, Mapping) and isinstance(daily.get("Remaining"), int) \
                    and isinstance(daily.get("Max"), int):
                self.quota_left = daily["Remaining"]
                self.quota_low = self.quota_left <= daily_reserve(daily["Max"])
            if self.quota_low:
                return outage(REASON_QUOTA, answer.status, "DailyApiRequests",
                              f"{self.quota_left} calls of the daily allocation are left")
            return done(status=answer.status)
        return classify_call(answer.status, body, answer.text()) or refused(
            answer.status, f"HTTP{answer.status}", answer.text())

    async def check(self) -> list[Finding]:
        try:
            answer = await self._call("GET", f"{self.base}/sobjects/Lead/describe")
        except CallFailed as exc:
            return [Finding(False, f"Salesforce is unreachable at {self.instance_url}: {exc} "
                            "(SALESFORCE_INSTANCE_URL)")]
        if answer.status == 401:
            return [Finding(False, "Salesforce refuses the session: set SALESFORCE_TOKEN to a fresh access "
                            "token, or SALESFORCE_REFRESH_TOKEN with SALESFORCE_CLIENT_ID/_SECRET")]
        if answer.status == 404:
            return [Finding(False, f"no Lead object under API {self.api_version} "
                            "(SALESFORCE_API_VERSION, SALESFORCE_INSTANCE_URL)")]
        body = answer.json()
        if not answer.ok or not isinstance(body, Mapping):
            return [Finding(False, f"describing Lead failed: HTTP {answer.status} {answer.text()}")]
        fields = {str(f.get("name")): f for f in body.get("fields") or [] if isinstance(f, Mapping)}
        findings = [Finding(True, f"the session is accepted; Lead has {len(fields)} fields")]
        ext = fields.get(self.field)
        if ext is None:
            findings.append(Finding(False, f"the field {self.field} does not exist on Lead: " + _CREATE_FIELD
                                    .format(field=self.field)))
        else:
            if not ext.get("externalId"):
                findings.append(Finding(False, f"{self.field} is not marked External ID: edit the field and "
                                        "tick External ID and Unique"))
            if not ext.get("unique"):
                findings.append(Finding(False, f"{self.field} is not Unique: tick Unique, so that Salesforce "
                                        "itself refuses a second Lead with one submission id"))
        for form, mapping in sorted(self.mappings.items()):
            for target in sorted(mapping.targets):
                info = fields.get(target)
                if info is None:
                    findings.append(Finding(False, f"form {form!r}: field {target!r} does not exist on Lead: "
                                            f"create it or change schemas/{form}.crm.json"))
                elif not info.get("createable") or not info.get("updateable"):
                    findings.append(Finding(False, f"form {form!r}: field {target!r} is not writable "
                                            "for this user (field-level security)"))
            for required in ("LastName", "Company"):
                if required not in mapping.targets:
                    findings.append(Finding(False, f"form {form!r}: nothing is mapped to {required}, which "
                                            "Salesforce requires on a Lead"))
        if all(f.ok for f in findings):
            findings.append(Finding(True, f"{self.field} is an External ID + Unique; "
                                    "every mapped field exists"))
        return findings

    async def setup(self) -> list[Finding]:
        findings = [f for f in await self.check() if not f.ok]
        if not findings:
            return [Finding(True, "nothing to set up")]
        # Fields are metadata: the REST API cannot create them; say how instead.
        return findings

    @property
    def limiter(self) -> WindowLimiter:
        return self.http.limiter

    async def close(self) -> None:
        await self.http.close()


_CREATE_FIELD = ("Setup -> Object Manager -> Lead -> Fields & Relationships -> New -> Text (36), "
                 "name {field}, tick Unique and External ID")
