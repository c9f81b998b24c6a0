"""The webhook's answers, by the table: what each status means for the lead."""

from __future__ import annotations

import pytest

from worker.crm.base import Verdict
from worker.crm.webhook import classify


@pytest.mark.parametrize(("status", "verdict"), [
    (200, Verdict.DONE),
    (201, Verdict.DONE),
    (204, Verdict.DONE),
    # the server gave up waiting, or is out: the CRM's health decides whose fault
    (408, Verdict.CALL_FAILED),
    (425, Verdict.CALL_FAILED),
    (500, Verdict.CALL_FAILED),
    (502, Verdict.CALL_FAILED),
    (503, Verdict.CALL_FAILED),
    (504, Verdict.CALL_FAILED),
    (599, Verdict.CALL_FAILED),
    # never a lead's failure
    (429, Verdict.RATE_LIMITED),
    (401, Verdict.OUTAGE),
    (403, Verdict.OUTAGE),
    # the data: retrying changes nothing
    (400, Verdict.PERMANENT),
    (404, Verdict.PERMANENT),
    (409, Verdict.PERMANENT),
    (413, Verdict.PERMANENT),
    (422, Verdict.PERMANENT),
    (302, Verdict.PERMANENT),
])
def test_webhook_status_is_classified_by_the_table(status: int, verdict: Verdict) -> None:
    assert classify(status, "text").verdict is verdict


def test_a_429_carries_its_retry_after_and_a_401_names_credentials() -> None:
    assert classify(429, "slow down", "7").retry_after == 7.0
    assert classify(401, "").reason == "credentials"
    refused = classify(422, "leads from reject.test are refused")
    assert (refused.error_class, refused.error) == ("HTTP422", "leads from reject.test are refused")
