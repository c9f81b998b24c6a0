"""The Salesforce fake behaves as Salesforce documents: connectors are proven against it."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest

from leadline.config import Rate
from tests.worker.fakes import Fake, running, sleep_until_window_frees
from worker.fakes.salesforce import EXTERNAL_ID_FIELD, STATE, SalesforceConfig, create_app

V = "/services/data/v61.0"
UPSERT = f"{V}/sobjects/Lead/{EXTERNAL_ID_FIELD}"
COMPOSITE = f"{V}/composite/sobjects/Lead/{EXTERNAL_ID_FIELD}"
AUTH = {"Authorization": "Bearer test-token"}
LEAD = {"LastName": "Lovelace", "Company": "Engines Ltd", "Email": "ada@example.com"}
REFRESH = {"grant_type": "refresh_token", "client_id": "test-client-id",
           "client_secret": "test-client-secret", "refresh_token": "test-refresh-token"}


def fake(config: SalesforceConfig | None = None) -> AbstractAsyncContextManager[Fake]:
    return running(create_app(config, seed=7), STATE, AUTH)


@pytest.fixture
async def salesforce() -> AsyncIterator[Fake]:
    async with fake() as started:
        yield started


def record(sub_id: str | None, **fields: Any) -> dict[str, Any]:
    values = {**LEAD, **fields}
    if sub_id is not None:
        values[EXTERNAL_ID_FIELD] = sub_id
    return {"attributes": {"type": "Lead"}, **values}


async def test_a_missing_or_wrong_token_is_401_invalid_session_id(salesforce: Fake) -> None:
    for headers in ({}, {"Authorization": "Bearer stale"}):
        answer = await salesforce.call("GET", f"{V}/sobjects/Lead/describe", auth=False, headers=headers)
        assert answer.status == 401
        assert answer.body == [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]


async def test_a_refresh_gives_a_working_new_access_token_and_the_old_one_stops(salesforce: Fake) -> None:
    answer = await salesforce.call("POST", "/services/oauth2/token", data=REFRESH, auth=False)
    assert answer.status == 200
    token = answer.body["access_token"]
    assert token != "test-token"
    assert answer.body["instance_url"] == salesforce.url
    assert answer.body["token_type"] == "Bearer"
    expected = hmac.new(b"test-client-secret", (answer.body["id"] + answer.body["issued_at"]).encode(),
                        hashlib.sha256).digest()
    assert base64.b64decode(answer.body["signature"]) == expected
    assert (await salesforce.call("GET", f"{V}/limits")).status == 401
    fresh = await salesforce.call("GET", f"{V}/limits", auth=False,
                                  headers={"Authorization": f"Bearer {token}"})
    assert fresh.status == 200


@pytest.mark.parametrize(("change", "error"), [
    ({"refresh_token": "revoked"}, "invalid_grant"),
    ({"client_id": "someone-else"}, "invalid_client_id"),
    ({"client_secret": "wrong"}, "invalid_client"),
    ({"grant_type": "password"}, "unsupported_grant_type"),
])
async def test_a_bad_refresh_is_400_and_keeps_the_current_token(
        salesforce: Fake, change: dict[str, str], error: str) -> None:
    answer = await salesforce.call("POST", "/services/oauth2/token", data={**REFRESH, **change}, auth=False)
    assert answer.status == 400
    assert answer.body["error"] == error
    assert answer.body["error_description"]
    if error == "invalid_grant":
        assert answer.body["error_description"] == "expired access/refresh token"
    assert (await salesforce.call("GET", f"{V}/limits")).status == 200


async def test_the_daily_allocation_is_counted_in_headers_and_then_refused_with_403() -> None:
    async with fake(SalesforceConfig(daily_limit=3)) as salesforce:
        usage = [(await salesforce.call("GET", f"{V}/limits")).headers["Sforce-Limit-Info"] for _ in range(3)]
        assert usage == ["api-usage=1/3", "api-usage=2/3", "api-usage=3/3"]
        refused = await salesforce.call("PATCH", f"{UPSERT}/s-1", json=LEAD)
        assert refused.status == 403
        assert refused.body == [{"message": "TotalRequests Limit exceeded.",
                                 "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
        assert refused.headers["Sforce-Limit-Info"] == "api-usage=3/3"
        assert salesforce.state.stored() == {"leads": 0}
        assert salesforce.state.stats.rate_limited == 0


async def test_limits_reports_the_remaining_allocation(salesforce: Fake) -> None:
    await salesforce.call("GET", f"{V}/sobjects/Lead/describe")
    answer = await salesforce.call("GET", f"{V}/limits")
    assert answer.body == {"DailyApiRequests": {"Max": 15000, "Remaining": 14998}}


async def test_a_rolling_window_when_set_refuses_with_403_never_429() -> None:
    async with fake(SalesforceConfig(rate_limit=Rate(2, 1.5))) as salesforce:
        assert (await salesforce.call("GET", f"{V}/limits")).status == 200
        await asyncio.sleep(0.4)
        assert (await salesforce.call("GET", f"{V}/limits")).status == 200
        refused = await salesforce.call("GET", f"{V}/limits")
        assert refused.status == 403
        assert refused.body[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
        assert refused.headers["Sforce-Limit-Info"] == "api-usage=2/15000"
        await sleep_until_window_frees(salesforce.state)
        assert (await salesforce.call("GET", f"{V}/limits")).status == 200
        assert (await salesforce.call("GET", f"{V}/limits")).status == 403
        assert 429 not in [c.status for c in salesforce.state.calls]


async def test_down_answers_503_to_every_call_describe_and_token_included(salesforce: Fake) -> None:
    salesforce.state.configure(down=True)
    for method, path in (("GET", f"{V}/sobjects/Lead/describe"), ("GET", f"{V}/limits")):
        answer = await salesforce.call(method, path)
        assert answer.status == 503
        assert answer.body == [{"message": "Server unavailable", "errorCode": "SERVER_UNAVAILABLE"}]
    token = await salesforce.call("POST", "/services/oauth2/token", data=REFRESH, auth=False)
    assert token.status == 503


async def test_store_then_hang_creates_the_lead_and_withholds_the_answer() -> None:
    async with fake(SalesforceConfig(timeout_rate=1.0, hang_seconds=30)) as salesforce:
        with pytest.raises(asyncio.TimeoutError):
            await salesforce.call("PATCH", f"{UPSERT}/s-late", json=LEAD, timeout=0.3)
        assert len(salesforce.state.matching(EXTERNAL_ID_FIELD, "s-late")) == 1
        assert salesforce.state.calls[0].finished is None


async def test_upsert_on_the_external_id_twice_is_one_record_201_then_200(salesforce: Fake) -> None:
    first = await salesforce.call("PATCH", f"{UPSERT}/s-1", json=LEAD)
    second = await salesforce.call("PATCH", f"{UPSERT}/s-1", json={**LEAD, "Description": "again"})
    assert (first.status, second.status) == (201, 200)
    assert first.body == {"id": first.body["id"], "success": True, "errors": [], "created": True}
    assert second.body == {"id": first.body["id"], "success": True, "errors": [], "created": False}
    lead_id = first.body["id"]
    assert len(lead_id) == 18
    assert lead_id.startswith("00Q")
    assert salesforce.state.stored() == {"leads": 1}
    read = await salesforce.call("GET", f"{V}/sobjects/Lead/{lead_id}")
    assert read.body["Description"] == "again"
    assert read.body[EXTERNAL_ID_FIELD] == "s-1"
    assert read.body["Status"] == "Open - Not Contacted"
    assert read.body["attributes"] == {"type": "Lead", "url": f"{V}/sobjects/Lead/{lead_id}"}


async def test_the_external_id_field_in_the_body_is_400_invalid_field(salesforce: Fake) -> None:
    answer = await salesforce.call("PATCH", f"{UPSERT}/s-1", json={**LEAD, EXTERNAL_ID_FIELD: "s-1"})
    assert answer.status == 400
    assert answer.body[0]["errorCode"] == "INVALID_FIELD"
    assert salesforce.state.stored() == {"leads": 0}


async def test_upsert_on_a_field_that_is_not_an_external_id_is_404(salesforce: Fake) -> None:
    for field_name in ("Email", "Nope__c"):
        answer = await salesforce.call("PATCH", f"{V}/sobjects/Lead/{field_name}/x", json=LEAD)
        assert answer.status == 404
        assert answer.body == [{"errorCode": "NOT_FOUND", "message": "Provided external ID field does not "
                                f"exist or is not accessible: {field_name}"}]
    salesforce.state.configure(external_id="absent")
    assert (await salesforce.call("PATCH", f"{UPSERT}/s-1", json=LEAD)).status == 404
    assert (await salesforce.call("PATCH", COMPOSITE, json={"records": [record("s-1")]})).status == 404


async def test_several_matches_answer_300_with_their_urls_and_change_nothing(salesforce: Fake) -> None:
    with pytest.raises(ValueError, match="non-unique"):
        salesforce.state.configure(duplicate_external_ids=["s-dup"])
    salesforce.state.configure(external_id="non-unique", duplicate_external_ids=["s-dup"])
    ids = salesforce.state.matching(EXTERNAL_ID_FIELD, "s-dup")
    assert len(ids) == 2
    answer = await salesforce.call("PATCH", f"{UPSERT}/s-dup", json={**LEAD, "Description": "changed"})
    assert answer.status == 300
    assert sorted(answer.body) == sorted(f"{V}/sobjects/Lead/{i}" for i in ids)
    assert all(salesforce.state.leads[i]["Description"] is None for i in ids)
    many = await salesforce.call("PATCH", COMPOSITE, json={"records": [record("s-dup"), record("s-new")]})
    assert many.body[0]["errors"][0]["statusCode"] == "DUPLICATE_EXTERNAL_ID"
    assert many.body[1]["created"] is True
    describe = await salesforce.call("GET", f"{V}/sobjects/Lead/describe")
    ext = next(f for f in describe.body["fields"] if f["name"] == EXTERNAL_ID_FIELD)
    assert (ext["externalId"], ext["unique"]) == (True, False)


@pytest.mark.parametrize(("fields", "code", "where"), [
    ({"LastName": None}, "REQUIRED_FIELD_MISSING", ["LastName"]),
    ({"Company": ""}, "REQUIRED_FIELD_MISSING", ["Company"]),
    ({"Nickname__c": "x"}, "INVALID_FIELD", []),
    ({"FirstName": "x" * 41}, "STRING_TOO_LONG", ["FirstName"]),
    ({"Email": "not-an-address"}, "INVALID_EMAIL_ADDRESS", ["Email"]),
    ({"Email": "eve@reject.test"}, "FIELD_CUSTOM_VALIDATION_EXCEPTION", ["Email"]),
    ({"HasOptedOutOfEmail": "yes"}, "INVALID_TYPE_ON_FIELD_IN_RECORD", ["HasOptedOutOfEmail"]),
    ({"Id": "00Q000000000000AAA"}, "INVALID_FIELD_FOR_INSERT_UPDATE", ["Id"]),
])
async def test_a_refused_create_is_400_with_the_code_and_the_fields(
        salesforce: Fake, fields: dict[str, Any], code: str, where: list[str]) -> None:
    answer = await salesforce.call("PATCH", f"{UPSERT}/s-1", json={**LEAD, **fields})
    assert answer.status == 400
    assert {"errorCode": code, "fields": where} == {k: answer.body[0][k] for k in ("errorCode", "fields")}
    assert answer.body[0]["message"]
    assert salesforce.state.stored() == {"leads": 0}


async def test_required_fields_message_lists_what_is_missing(salesforce: Fake) -> None:
    answer = await salesforce.call("PATCH", f"{UPSERT}/s-1", json={"Email": "a@example.com"})
    assert answer.body[0]["message"] == "Required fields are missing: [LastName, Company]"
    assert answer.body[0]["fields"] == ["LastName", "Company"]


async def test_composite_partial_failure_writes_only_the_good_records(salesforce: Fake) -> None:
    body = {"allOrNone": False, "records": [record("s-1"), record("s-2", LastName=None), record("s-3")]}
    answer = await salesforce.call("PATCH", COMPOSITE, json=body)
    assert answer.status == 200
    good, bad, also_good = answer.body
    assert (good["success"], good["created"], also_good["success"]) == (True, True, True)
    assert bad == {"success": False, "errors": [{"statusCode": "REQUIRED_FIELD_MISSING",
                                                 "message": "Required fields are missing: [LastName]",
                                                 "fields": ["LastName"]}]}
    assert salesforce.state.stored() == {"leads": 2}
    assert salesforce.state.calls[-1].records == 3
    again = await salesforce.call("PATCH", COMPOSITE, json=body)
    assert [r.get("created") for r in again.body] == [False, None, False]
    assert salesforce.state.stored() == {"leads": 2}


async def test_composite_all_or_none_writes_nothing_and_rolls_the_others_back(salesforce: Fake) -> None:
    await salesforce.call("PATCH", f"{UPSERT}/s-0", json=LEAD)
    body = {"allOrNone": True, "records": [record("s-0", Description="x"), record("s-1"),
                                           record("s-2", Email="bad")]}
    answer = await salesforce.call("PATCH", COMPOSITE, json=body)
    assert answer.status == 200
    codes = [r["errors"][0]["statusCode"] for r in answer.body]
    assert codes == ["ALL_OR_NONE_OPERATION_ROLLED_BACK", "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                     "INVALID_EMAIL_ADDRESS"]
    assert salesforce.state.stored() == {"leads": 1}
    only = next(iter(salesforce.state.leads.values()))
    assert only["Description"] is None
    assert salesforce.state.stats.created == {"leads": 1}


async def test_composite_refuses_one_external_id_twice_and_records_without_one(salesforce: Fake) -> None:
    body = {"records": [record("s-1"), record("s-1", Description="b"), record(None), record("s-2")]}
    answer = await salesforce.call("PATCH", COMPOSITE, json=body)
    codes = [r["errors"][0]["statusCode"] if r["errors"] else "OK" for r in answer.body]
    assert codes == ["DUPLICATE_EXTERNAL_ID", "DUPLICATE_EXTERNAL_ID", "MISSING_ARGUMENT", "OK"]
    assert salesforce.state.stored() == {"leads": 1}


async def test_composite_takes_at_most_200_records_each_typed_lead(salesforce: Fake) -> None:
    too_many = await salesforce.call("PATCH", COMPOSITE,
                                     json={"records": [record(f"s-{i}") for i in range(201)]})
    assert too_many.status == 400
    assert too_many.body[0]["errorCode"] == "EXCEEDED_ID_LIMIT"
    untyped = await salesforce.call("PATCH", COMPOSITE, json={"records": [{**LEAD, EXTERNAL_ID_FIELD: "s"}]})
    assert untyped.status == 400
    assert untyped.body[0]["errorCode"] == "INVALID_TYPE"
    full = await salesforce.call("PATCH", COMPOSITE, json={"records": [record(f"s-{i}") for i in range(200)]})
    assert full.status == 200
    assert salesforce.state.stored() == {"leads": 200}


async def test_update_by_id_is_204_and_unknown_ids_are_404(salesforce: Fake) -> None:
    lead_id = (await salesforce.call("PATCH", f"{UPSERT}/s-1", json=LEAD)).body["id"]
    answer = await salesforce.call("PATCH", f"{V}/sobjects/Lead/{lead_id}", json={"Company": "New"})
    assert (answer.status, answer.body) == (204, None)
    assert salesforce.state.leads[lead_id]["Company"] == "New"
    cleared = await salesforce.call("PATCH", f"{V}/sobjects/Lead/{lead_id}", json={"Company": None})
    assert cleared.body[0]["errorCode"] == "REQUIRED_FIELD_MISSING"
    for method in ("GET", "PATCH"):
        missing = await salesforce.call(method, f"{V}/sobjects/Lead/00Q000000000000AAA", json={})
        assert missing.status == 404
        assert missing.body == [{"errorCode": "NOT_FOUND",
                                 "message": "The requested resource does not exist"}]


async def test_another_api_version_is_404(salesforce: Fake) -> None:
    answer = await salesforce.call("PATCH", f"/services/data/v58.0/sobjects/Lead/{EXTERNAL_ID_FIELD}/s-1",
                                   json=LEAD)
    assert answer.status == 404
    assert answer.body[0]["errorCode"] == "NOT_FOUND"
    assert salesforce.state.stored() == {"leads": 0}


async def test_describe_lists_the_fields_and_the_external_id(salesforce: Fake) -> None:
    answer = await salesforce.call("GET", f"{V}/sobjects/Lead/describe")
    assert answer.body["name"] == "Lead"
    fields = {f["name"]: f for f in answer.body["fields"]}
    assert {"Id", "FirstName", "LastName", "Company", "Email", "Description", "LeadSource",
            "HasOptedOutOfEmail", "Status", EXTERNAL_ID_FIELD} <= set(fields)
    assert fields[EXTERNAL_ID_FIELD] | {"name": EXTERNAL_ID_FIELD} == {
        "name": EXTERNAL_ID_FIELD, "type": "string", "length": 36, "nillable": True, "externalId": True,
        "unique": True, "createable": True, "updateable": True, "defaultedOnCreate": False}
    assert (fields["LastName"]["length"], fields["LastName"]["nillable"]) == (80, False)
    assert fields["Description"]["length"] == 32000


async def test_query_finds_by_a_field_and_refuses_other_shapes(salesforce: Fake) -> None:
    first = (await salesforce.call("PATCH", f"{UPSERT}/s-1", json=LEAD)).body["id"]
    second = (await salesforce.call("PATCH", f"{UPSERT}/s-2", json=LEAD)).body["id"]
    answer = await salesforce.call("GET", f"{V}/query", params={
        "q": "SELECT Id FROM Lead WHERE Leadline_Submission_Id__c = 's-1'"})
    assert answer.body == {"totalSize": 1, "done": True, "records": [
        {"attributes": {"type": "Lead", "url": f"{V}/sobjects/Lead/{first}"}, "Id": first}]}
    by_mail = await salesforce.call("GET", f"{V}/query", params={
        "q": "select id from lead where email = 'ADA@example.com' order by CreatedDate desc"})
    assert [r["Id"] for r in by_mail.body["records"]] == [second, first]
    for q in ("SELECT Id, Email FROM Lead", "DELETE FROM Lead", ""):
        bad = await salesforce.call("GET", f"{V}/query", params={"q": q})
        assert bad.status == 400
        assert bad.body[0]["errorCode"] == "MALFORMED_QUERY"
    unknown = await salesforce.call("GET", f"{V}/query", params={"q": "SELECT Id FROM Lead WHERE Nope = 'x'"})
    assert unknown.body[0]["errorCode"] == "INVALID_FIELD"
