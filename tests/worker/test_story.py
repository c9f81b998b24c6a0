"""Reading leads and writing their failure story: pure functions over headers."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
from pamqp.commands import Basic

from leadline.message import (
    H_ATTEMPTS,
    H_CRM_STATUS,
    H_DEAD_AT,
    H_FAILURE_KIND,
    H_FIRST_FAILURE_AT,
    H_FORM,
    H_LAST_FAILURE_AT,
    H_TRACEPARENT,
    lead_properties,
)
from leadline.schemas import load_schemas
from worker import story
from worker.crm.base import Lead
from worker.dlq import describe, replay_headers
from worker.intake import Poison, read_lead

FORMS = load_schemas()
GOOD = {"name": "Ada", "email": "ada@example.com", "consent": True}
TP = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def test_valid_lead_is_read_with_its_trace() -> None:
    lead = read_lead(orjson.dumps(GOOD), {H_FORM: "lead", H_TRACEPARENT: TP}, "sid-1", FORMS)
    assert lead == Lead("sid-1", "lead", GOOD, "", TP)


def test_poison_is_named_without_quoting_the_visitors_values() -> None:
    cases = {
        "NotJson": (b"{nope", {H_FORM: "lead"}, "sid"),
        "UnknownForm": (orjson.dumps(GOOD), {H_FORM: "survey"}, "sid"),
        "NoSubmissionId": (orjson.dumps(GOOD), {H_FORM: "lead"}, None),
        "InvalidLead": (orjson.dumps({**GOOD, "email": "secret-not-an-address"}), {H_FORM: "lead"}, "sid"),
    }
    for error_class, (body, headers, sid) in cases.items():
        found = read_lead(body, headers, sid, FORMS)
        assert isinstance(found, Poison)
        assert found.error_class == error_class
        assert "secret" not in found.reason
    listed = read_lead(b"[1]", {H_FORM: "lead"}, "sid", FORMS)
    assert isinstance(listed, Poison)
    assert listed.error_class == "InvalidLead"


def test_failure_story_keeps_first_failure_and_drops_broker_death_headers() -> None:
    first = story.failure_headers({H_ATTEMPTS: 0, "x-death": [{"reason": "expired"}]}, attempts=1,
                                  kind="temporary", error_class="HTTP503", error="x" * 900,
                                  crm_status=503, now="T1", dead=False)
    assert "x-death" not in first
    assert (first[H_ATTEMPTS], first[H_FIRST_FAILURE_AT], first[H_CRM_STATUS]) == (1, "T1", 503)
    assert len(first["x-leadline-error"]) == story.ERROR_MAX_CHARS
    assert H_DEAD_AT not in first
    last = story.failure_headers(first, attempts=2, kind="temporary", error_class="TimeoutError",
                                 error="late", crm_status=None, now="T2", dead=True)
    assert (last[H_FIRST_FAILURE_AT], last[H_LAST_FAILURE_AT], last[H_DEAD_AT]) == ("T1", "T2", "T2")
    assert H_CRM_STATUS not in last


def test_attempts_header_that_is_missing_or_odd_counts_as_none() -> None:
    assert story.attempts_of(None) == 0
    assert story.attempts_of({H_ATTEMPTS: "x"}) == 0
    assert story.attempts_of({H_ATTEMPTS: 3}) == 3


def test_letter_the_broker_dead_lettered_for_its_delivery_limit_is_described_sensibly() -> None:
    props = lead_properties(submission_id="sid-9", form="lead")
    assert props.headers is not None
    props.headers["x-death"] = [{"reason": "delivery_limit", "queue": "p.work.v1", "count": 1,
                                 "time": datetime(2025, 1, 6, 12, 0, tzinfo=UTC)}]
    letter = describe(b"{}", props)
    assert (letter.id, letter.form, letter.kind, letter.attempts) == ("sid-9", "lead", "delivery_limit", 0)
    assert letter.failed_at == "2025-01-06T12:00:00Z"
    assert "p.work.v1" in letter.error


def test_replay_resets_attempts_and_failure_story() -> None:
    headers = story.failure_headers({H_FORM: "lead"}, attempts=8, kind="temporary", error_class="HTTP503",
                                    error="down", crm_status=503, now="T", dead=True)
    fresh = replay_headers({**headers, "x-death": []}, now="T9")
    assert fresh[H_ATTEMPTS] == 0
    assert fresh[H_FORM] == "lead"
    assert not {H_FAILURE_KIND, H_DEAD_AT, H_CRM_STATUS, "x-death"} & fresh.keys()


def test_letter_without_headers_still_describes() -> None:
    letter = describe(b"not json", Basic.Properties())
    assert (letter.id, letter.kind, letter.full()["lead"]) == ("", "unknown", "not json")


def test_an_infinite_or_huge_attempt_header_counts_as_none() -> None:
    assert story.attempts_of({H_ATTEMPTS: float("inf")}) == 0
    assert story.attempts_of({H_ATTEMPTS: float("nan")}) == 0
