"""What each vendor's answers mean, by the table (bodies as the vendors document them)."""

from __future__ import annotations

from typing import Any

import pytest

from worker.crm import hubspot, pipedrive, salesforce
from worker.crm.base import Verdict

HS_401 = {"status": "error", "message": "Authentication credentials not found.",
          "category": "INVALID_AUTHENTICATION"}
HS_403 = {"status": "error", "message": "This app hasn't been granted all required scopes",
          "category": "MISSING_SCOPES"}
HS_429 = {"status": "error", "message": "You have reached your ten_secondly_rolling limit.",
          "errorType": "RATE_LIMIT", "policyName": "TEN_SECONDLY_ROLLING"}
HS_DAILY = {**HS_429, "message": "You have reached your daily limit.", "policyName": "DAILY"}
HS_400 = {"status": "error", "message": "Email address ada@bad is invalid", "category": "VALIDATION_ERROR"}
HS_MISSING = {"status": "error", "message": 'Property "leadline_submission_id" does not exist',
              "category": "VALIDATION_ERROR"}


@pytest.mark.parametrize(("status", "body", "headers", "verdict", "reason"), [
    (200, {"status": "COMPLETE", "results": []}, {}, None, ""),
    (207, {"status": "COMPLETE", "results": [], "errors": []}, {}, None, ""),
    (401, HS_401, {}, Verdict.OUTAGE, "credentials"),
    (403, HS_403, {}, Verdict.OUTAGE, "credentials"),
    (429, HS_429, {"X-HubSpot-RateLimit-Interval-Milliseconds": "10000"}, Verdict.RATE_LIMITED,
     "rate_limited"),
    (429, HS_DAILY, {}, Verdict.OUTAGE, "quota"),
    (500, {"status": "error", "category": "INTERNAL_ERROR"}, {}, Verdict.CALL_FAILED, ""),
    (502, None, {}, Verdict.CALL_FAILED, ""),
    (503, None, {}, Verdict.CALL_FAILED, ""),
    (400, HS_400, {}, None, ""),  # one input's data: the connector splits the batch
    (400, HS_MISSING, {}, Verdict.OUTAGE, "config"),  # every lead would fail alike
    (404, {"status": "error", "message": "not found"}, {}, Verdict.OUTAGE, "config"),
])
def test_hubspot_call_answers_by_the_table(status: int, body: Any, headers: dict[str, str],
                                           verdict: Verdict | None, reason: str) -> None:
    outcome = hubspot.classify_call(status, body, "", headers)
    assert (outcome.verdict if outcome else None) is verdict
    if outcome is not None:
        assert outcome.reason == reason


def test_hubspot_429_waits_for_the_window_it_names() -> None:
    outcome = hubspot.classify_call(429, HS_429, "", {"X-HubSpot-RateLimit-Interval-Milliseconds": "10000"})
    assert outcome is not None
    assert outcome.retry_after == 10.0
    asked = hubspot.classify_call(429, HS_429, "", {"Retry-After": "3"})
    assert asked is not None
    assert asked.retry_after == 3.0


@pytest.mark.parametrize(("error", "verdict", "status"), [
    ({"category": "CONFLICT", "message": "Contact already exists. Existing ID: 123"}, Verdict.TEMPORARY, 409),
    ({"category": "VALIDATION_ERROR", "message": "Property values were not valid"}, Verdict.PERMANENT, 400),
    ({"category": "INVALID_EMAIL", "message": "Email address x is invalid"}, Verdict.PERMANENT, 400),
    ({"category": "RATE_LIMITS", "message": "later"}, Verdict.TEMPORARY, None),
])
def test_hubspot_input_errors_by_the_table(
    error: dict[str, str], verdict: Verdict, status: int | None
) -> None:
    outcome = hubspot.classify_input_error(error)
    assert (outcome.verdict, outcome.status) == (verdict, status)


def test_hubspot_conflict_names_the_existing_contact_to_update() -> None:
    assert hubspot.existing_id("Contact already exists. Existing ID: 8101") == "8101"
    assert hubspot.existing_id("Contact already exists.") is None


def test_hubspot_blames_the_inputs_a_whole_batch_400_names() -> None:
    emails = ["ada@example.com", "bob@bad", "cy@example.com"]
    assert hubspot.blamed("Email address bob@bad is invalid", emails) == {1}
    assert hubspot.blamed("Property values were not valid", emails) == set()


SF_SESSION = [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
SF_LIMIT = [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
SF_ACCESS = [{"message": "insufficient access rights", "errorCode": "INSUFFICIENT_ACCESS"}]
SF_NOT_FOUND = [{"message": "Provided external ID field does not exist or is not accessible: X",
                 "errorCode": "NOT_FOUND"}]


@pytest.mark.parametrize(("status", "body", "verdict", "reason"), [
    (200, [], None, ""),
    (201, {"id": "00Q", "success": True}, None, ""),
    (204, None, None, ""),
    (300, ["/services/data/v61.0/sobjects/Lead/00Q1", "/services/data/v61.0/sobjects/Lead/00Q2"], None, ""),
    (400, [{"errorCode": "REQUIRED_FIELD_MISSING", "message": "Required fields are missing: [LastName]"}],
     None, ""),
    (401, SF_SESSION, Verdict.OUTAGE, "credentials"),
    (403, SF_LIMIT, Verdict.OUTAGE, "quota"),
    (403, SF_ACCESS, Verdict.OUTAGE, "credentials"),
    (404, SF_NOT_FOUND, Verdict.OUTAGE, "config"),
    (500, [{"errorCode": "UNKNOWN_EXCEPTION", "message": "oops"}], Verdict.CALL_FAILED, ""),
    (503, [{"errorCode": "SERVER_UNAVAILABLE", "message": "Server unavailable"}], Verdict.CALL_FAILED, ""),
])
def test_salesforce_call_answers_by_the_table(status: int, body: Any, verdict: Verdict | None,
                                              reason: str) -> None:
    outcome = salesforce.classify_call(status, body, "")
    assert (outcome.verdict if outcome else None) is verdict
    if outcome is not None:
        assert outcome.reason == reason


@pytest.mark.parametrize(("code", "verdict", "reason"), [
    ("REQUIRED_FIELD_MISSING", Verdict.PERMANENT, ""),
    ("FIELD_CUSTOM_VALIDATION_EXCEPTION", Verdict.PERMANENT, ""),
    ("INVALID_EMAIL_ADDRESS", Verdict.PERMANENT, ""),
    ("STRING_TOO_LONG", Verdict.PERMANENT, ""),
    ("DUPLICATES_DETECTED", Verdict.PERMANENT, ""),
    ("INVALID_FIELD", Verdict.OUTAGE, "config"),  # the org lacks a mapped field: every lead alike
    ("INVALID_FIELD_FOR_INSERT_UPDATE", Verdict.OUTAGE, "config"),
    ("REQUEST_LIMIT_EXCEEDED", Verdict.OUTAGE, "quota"),
    ("UNABLE_TO_LOCK_ROW", Verdict.TEMPORARY, ""),
    ("SOMETHING_NEW", Verdict.TEMPORARY, ""),  # unknown: the tiers, then the DLQ with the story
])
def test_salesforce_record_errors_by_the_table(code: str, verdict: Verdict, reason: str) -> None:
    outcome = salesforce.classify_record_error(code, "message", ["LastName"])
    assert (outcome.verdict, outcome.reason) == (verdict, reason)


def test_salesforce_record_error_keeps_the_vendor_words_and_fields() -> None:
    outcome = salesforce.classify_record_error(
        "REQUIRED_FIELD_MISSING", "Required fields are missing: [LastName]", ["LastName"])
    assert outcome.error_class == "REQUIRED_FIELD_MISSING"
    assert outcome.error == "Required fields are missing: [LastName] (fields: LastName)"


def test_salesforce_reads_its_usage_header_and_keeps_a_reserve() -> None:
    assert salesforce.usage({"Sforce-Limit-Info": "api-usage=10018/100000"}) == (10018, 100000)
    assert salesforce.usage({}) is None
    assert salesforce.daily_reserve(100_000) == 1000
    assert salesforce.daily_reserve(15_000) == 150
    assert salesforce.daily_reserve(500) == 10


PD_401 = {"success": False, "error": "unauthorized access", "errorCode": 401}
PD_CAP = {"success": False, "error": "Plan limit reached", "code": "feature_capping_leads_limit",
          "errorCode": 403}
PD_429 = {"success": False, "error": "Request over limit", "errorCode": 429}


@pytest.mark.parametrize(("status", "body", "headers", "verdict", "reason"), [
    (200, {"success": True, "data": {}}, {}, None, ""),
    (201, {"success": True, "data": {}}, {}, None, ""),
    (401, PD_401, {}, Verdict.OUTAGE, "credentials"),
    (403, PD_CAP, {}, Verdict.OUTAGE, "quota"),
    (403, {"success": False, "error": "forbidden", "errorCode": 403}, {}, Verdict.OUTAGE, "credentials"),
    (429, PD_429, {"x-ratelimit-reset": "2"}, Verdict.RATE_LIMITED, "rate_limited"),
    (502, None, {}, Verdict.CALL_FAILED, ""),
    (400, {"success": False, "error": "Title is required", "errorCode": 400}, {}, Verdict.PERMANENT, ""),
])
def test_pipedrive_answers_by_the_table(status: int, body: Any, headers: dict[str, str],
                                        verdict: Verdict | None, reason: str) -> None:
    outcome = pipedrive.classify(status, body, "", headers)
    assert (outcome.verdict if outcome else None) is verdict
    if outcome is not None:
        assert outcome.reason == reason


def test_pipedrive_429_waits_until_its_window_resets() -> None:
    outcome = pipedrive.classify(429, PD_429, "", {"x-ratelimit-reset": "2"})
    assert outcome is not None
    assert outcome.retry_after == 2.0


def test_pipedrive_finds_the_lead_of_a_submission_and_the_oldest_person() -> None:
    key = "a" * 40
    leads = [{"id": "l1", key: "other"}, {"id": "l2", key: "sid-1"}]
    assert pipedrive.find_lead(leads, key, "sid-1") == "l2"
    assert pipedrive.find_lead(leads, key, "sid-2") is None
    assert pipedrive.find_lead(None, key, "sid-1") is None
    items = [{"item": {"id": 12}}, {"item": {"id": 7}}, {"item": {"id": "x"}}]
    assert pipedrive.oldest_person(items) == "7"
    assert pipedrive.oldest_person([]) is None
