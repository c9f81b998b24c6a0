"""The generic webhook CRM: POST each lead as JSON with `Idempotency-Key` = the submission id.

Exactly-once rests on the endpoint honouring the key (our fake does; a real
CRM would not, which is why the vendor connectors exist). A webhook has no
batch endpoint we could rely on: one lead per call.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import orjson

from worker.crm.base import (
    REASON_CREDENTIALS,
    Finding,
    Lead,
    Outcome,
    Verdict,
    call_failed,
    done,
    outage,
    rate_limited,
    refused,
)
from worker.crm.http import Answer, CallFailed, HttpClient, retry_after_seconds
from worker.crm.mapping import FormMapping
from worker.crm.ratelimit import WindowLimiter


def classify(status: int, text: str, retry_after: str | None = None) -> Outcome:
    """A webhook's answer to one lead; the table in the tests is the specification."""
    if 200 <= status < 300:
        return done(status=status)
    if status == 429:
        return rate_limited(status, text, retry_after_seconds(retry_after))
    if status in {401, 403}:
        return outage(REASON_CREDENTIALS, status, f"HTTP{status}", text or "credentials refused")
    if status in {408, 425} or status >= 500:
        return call_failed(status, f"HTTP{status}", text)
    # Other 4xx (and the odd 1xx/3xx a webhook should never send): retrying changes nothing.
    return refused(status, f"HTTP{status}", text)


def payload(lead: Lead, mapping: FormMapping) -> bytes:
    return orjson.dumps({"id": lead.submission_id, "form": lead.form,
                         "received_at": lead.received_at, "lead": mapping.apply(lead)})


class WebhookConnector:
    name = "webhook"
    max_batch = 1

    def __init__(self, url: str, http: HttpClient, mappings: Mapping[str, FormMapping]) -> None:
        self.url = url
        self.http = http
        self.mappings = mappings

    def key(self, lead: Lead) -> str:
        return lead.submission_id

    async def write(self, leads: Sequence[Lead]) -> list[Outcome]:
        return [await self._send(lead) for lead in leads]

    async def _send(self, lead: Lead) -> Outcome:
        headers = {"Idempotency-Key": lead.submission_id, "Content-Type": "application/json"}
        if lead.traceparent:
            headers["traceparent"] = lead.traceparent
        mapping = self.mappings.get(lead.form, FormMapping())
        try:
            answer = await self.http.request("POST", self.url, data=payload(lead, mapping), headers=headers)
        except CallFailed as exc:
            return call_failed(None, exc.error_class, exc.error)
        return classify(answer.status, "" if answer.ok else answer.text(), answer.headers.get("Retry-After"))

    async def probe(self) -> Outcome:
        """HEAD on the endpoint: any answer but 5xx, 429, 401 or 403 says it is there."""
        try:
            answer = await self.http.request("HEAD", self.url)
        except CallFailed as exc:
            return call_failed(None, exc.error_class, exc.error)
        return probe_outcome(answer)

    async def check(self) -> list[Finding]:
        outcome = await self.probe()
        if outcome.verdict is Verdict.DONE:
            return [Finding(True, f"the webhook at {self.url} answers")]
        return [Finding(False, f"the webhook at {self.url} does not answer as it should: {outcome.summary} "
                        "(CRM_URL)")]

    async def setup(self) -> list[Finding]:
        return [Finding(True, "a webhook needs no set-up")]

    @property
    def limiter(self) -> WindowLimiter:
        return self.http.limiter

    async def close(self) -> None:
        await self.http.close()


def probe_outcome(answer: Answer) -> Outcome:
    outcome = classify(answer.status, answer.text(), answer.headers.get("Retry-After"))
    # A POST-only endpoint answers HEAD with 404 or 405: it is there all the same.
    return done(status=answer.status) if outcome.verdict is Verdict.PERMANENT else outcome
