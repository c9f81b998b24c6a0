"""What every CRM connector speaks: a lead in, one outcome per lead out.

A connector writes a *batch* of leads (one call where the vendor has a batch
endpoint) and never raises for a failed call: every way a call can end is an
`Outcome` per lead, decided by the vendor module's pure classification
functions. The worker acts on outcomes: it acks, retries through the tiers,
dead-letters, or pauses when the CRM itself is the problem.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from worker.crm.ratelimit import WindowLimiter

BODY_SNIPPET_CHARS = 300


@dataclass(frozen=True, slots=True)
class Lead:
    """One submission on its way to the CRM; the submission id makes its write idempotent."""

    submission_id: str
    form: str
    fields: Mapping[str, Any]
    received_at: str = ""
    traceparent: str | None = None
    schema_id: str = ""
    attempt: int = 1  # this attempt, counting from 1
    # The broker handed this lead out before, or an earlier attempt failed: a
    # write may already have reached the CRM without our hearing the answer.
    redelivered: bool = False
    # What earlier attempts learned (a vendor's record ids), carried in the
    # retry copy's headers so that a retry continues instead of starting over.
    progress: Mapping[str, str] = field(default_factory=dict)
    # The proxy's verdict on the page's spam stamp (valid, missing, invalid);
    # None when it was not checked (SPAM_STAMP=off, or a proxy from before stamps).
    stamp: str | None = None

    @property
    def may_exist(self) -> bool:
        """Could an earlier try have written this lead already?"""
        return self.redelivered or self.attempt > 1 or bool(self.progress)


class Verdict(enum.Enum):
    DONE = "done"
    TEMPORARY = "temporary"  # this lead failed now; try it later (spends an attempt)
    PERMANENT = "permanent"  # the CRM refused this lead's data: dead-letter it now
    # The call as a whole failed (5xx, timeout, connection): the CRM's fault
    # or this lead's? The worker decides from the CRM's health.
    CALL_FAILED = "call_failed"
    RATE_LIMITED = "rate_limited"  # 429: send again after the wait, no attempt spent
    OUTAGE = "outage"  # not this lead's fault (credentials, quota, configuration): pause


# Why the worker pauses; the label of `leadline_crm_paused`.
REASON_DOWN = "down"  # unreachable, 5xx, timeouts
REASON_FAILING = "failing"  # answers probes, but every write fails
REASON_CREDENTIALS = "credentials"  # token refused or lacking permissions
REASON_QUOTA = "quota"  # daily allocation or plan cap used up
REASON_RATE_LIMITED = "rate_limited"  # asked to wait longer than we hold leads
REASON_CONFIG = "config"  # a mapped field or the external id is missing in the CRM
PAUSE_REASONS = (REASON_DOWN, REASON_FAILING, REASON_CREDENTIALS, REASON_QUOTA,
                 REASON_RATE_LIMITED, REASON_CONFIG)


@dataclass(frozen=True, slots=True)
class Outcome:
    verdict: Verdict
    status: int | None = None  # the HTTP status, when there was an answer
    error_class: str = ""  # "HTTP422", "TimeoutError", a vendor code such as "REQUIRED_FIELD_MISSING"
    error: str = ""  # the vendor's own words, for the dead letter's story
    reason: str = ""  # for OUTAGE (and RATE_LIMITED): one of PAUSE_REASONS
    retry_after: float | None = None  # seconds the vendor asked us to wait
    record_id: str = ""  # the CRM's id of the record written, for the log line
    progress: Mapping[str, str] = field(default_factory=dict)

    @property
    def summary(self) -> str:
        head = f"HTTP {self.status}" if self.status is not None else self.error_class
        if self.status is not None and self.error_class and not self.error_class.startswith("HTTP"):
            head += f" {self.error_class}"
        return f"{head}: {self.error}" if self.error else head

    @property
    def answered(self) -> bool:
        """The CRM answered this lead on its merits: it is up."""
        return self.verdict in {Verdict.DONE, Verdict.PERMANENT, Verdict.TEMPORARY}


def done(record_id: str = "", status: int | None = None) -> Outcome:
    return Outcome(Verdict.DONE, status=status, record_id=record_id)


def outage(reason: str, status: int | None, error_class: str, error: str,
           retry_after: float | None = None) -> Outcome:
    return Outcome(Verdict.OUTAGE, status=status, error_class=error_class, error=error[:BODY_SNIPPET_CHARS],
                   reason=reason, retry_after=retry_after)


def call_failed(status: int | None, error_class: str, error: str) -> Outcome:
    return Outcome(Verdict.CALL_FAILED, status=status, error_class=error_class,
                   error=error[:BODY_SNIPPET_CHARS])


def rate_limited(status: int, error: str, retry_after: float | None) -> Outcome:
    return Outcome(Verdict.RATE_LIMITED, status=status, error_class=f"HTTP{status}",
                   error=error[:BODY_SNIPPET_CHARS], reason=REASON_RATE_LIMITED, retry_after=retry_after)


def refused(status: int | None, error_class: str, error: str) -> Outcome:
    return Outcome(Verdict.PERMANENT, status=status, error_class=error_class,
                   error=error[:BODY_SNIPPET_CHARS])


def temporary(status: int | None, error_class: str, error: str,
              progress: Mapping[str, str] | None = None) -> Outcome:
    return Outcome(Verdict.TEMPORARY, status=status, error_class=error_class,
                   error=error[:BODY_SNIPPET_CHARS], progress=dict(progress or {}))


@dataclass(frozen=True, slots=True)
class Finding:
    """One line of `crm check` / `crm setup`: fine, or what to fix."""

    ok: bool
    text: str


class Connector(Protocol):
    """A CRM: batches of leads in, one outcome per lead out (same order)."""

    name: str
    max_batch: int  # the vendor's largest batch (1: no batch endpoint)

    @property
    def limiter(self) -> WindowLimiter:
        """The rate limiter every call of this connector goes through."""
        ...

    def key(self, lead: Lead) -> str:
        """Leads with one key write one record: never in one call, never two calls at once."""
        ...

    async def write(self, leads: Sequence[Lead]) -> list[Outcome]: ...

    async def probe(self) -> Outcome:
        """A cheap authenticated call: DONE when the CRM answers as it should."""
        ...

    async def check(self) -> list[Finding]:
        """Token, every mapped field, the external id: what `crm check` prints."""
        ...

    async def setup(self) -> list[Finding]:
        """Create what is missing where the vendor's API allows it (`crm setup`)."""
        ...

    async def close(self) -> None: ...


def same_outcome(leads: Sequence[Lead], outcome: Outcome) -> list[Outcome]:
    return [outcome] * len(leads)


def snippet(text: str) -> str:
    return " ".join(text.split())[:BODY_SNIPPET_CHARS]


def json_field(data: object, *names: str) -> Any:
    """`data[names[0]][names[1]]…`, or None wherever the shape is not as expected."""
    for name in names:
        if not isinstance(data, Mapping):
            return None
        data = data.get(name)
    return data
