"""The HubSpot fake behaves as HubSpot documents: connectors are proven against it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest

from leadline.config import Rate
from tests.worker.fakes import Fake, running, sleep_until_window_frees
from worker.fakes.hubspot import READ, SCHEMA_READ, SCHEMA_WRITE, STATE, HubSpotConfig, create_app

UPSERT = "/crm/v3/objects/contacts/batch/upsert"
CONTACTS = "/crm/v3/objects/contacts"
PROPERTIES = "/crm/v3/properties/contacts"
AUTH = {"Authorization": "Bearer test-token"}


def fake(config: HubSpotConfig | None = None, seed: int | None = 7) -> AbstractAsyncContextManager[Fake]:
    return running(create_app(config, seed=seed), STATE, AUTH)


@pytest.fixture
async def hubspot() -> AsyncIterator[Fake]:
    async with fake() as started:
        yield started


def by_email(*emails: str, **properties: Any) -> dict[str, Any]:
    return {"inputs": [{"idProperty": "email", "id": e, "properties": dict(properties)} for e in emails]}


async def test_a_missing_or_wrong_token_is_401_with_hubspots_body(hubspot: Fake) -> None:
    for headers in ({}, {"Authorization": "Bearer revoked"}):
        answer = await hubspot.call("POST", UPSERT, json=by_email("a@example.com"), auth=False,
                                    headers=headers)
        assert answer.status == 401
        assert answer.body["category"] == "INVALID_AUTHENTICATION"
        assert answer.body["status"] == "error"
        assert answer.body["message"].startswith("Authentication credentials not found.")
        assert answer.body["correlationId"]
        assert "X-HubSpot-RateLimit-Remaining" not in answer.headers
    assert hubspot.state.stored() == {"contacts": 0}
    assert [c.status for c in hubspot.state.calls] == [401, 401]


async def test_changing_the_token_revokes_the_old_one_mid_run(hubspot: Fake) -> None:
    assert (await hubspot.call("GET", PROPERTIES)).status == 200
    hubspot.state.configure(token="rotated")
    assert (await hubspot.call("GET", PROPERTIES)).status == 401
    assert (await hubspot.call("GET", PROPERTIES, headers={"Authorization": "Bearer rotated"})).status == 200


async def test_the_rolling_window_counts_arrivals_and_refused_calls_do_not_count() -> None:
    async with fake(HubSpotConfig(rate_limit=Rate(3, 1.5))) as hubspot:
        remaining = []
        for n in range(3):
            answer = await hubspot.call("GET", PROPERTIES)
            assert answer.status == 200
            remaining.append(answer.headers["X-HubSpot-RateLimit-Remaining"])
            if n == 0:
                await asyncio.sleep(0.4)  # so that the first leaves the window well before the others
        assert remaining == ["2", "1", "0"]
        refused = await hubspot.call("GET", PROPERTIES)
        assert refused.status == 429
        assert refused.body["policyName"] == "TEN_SECONDLY_ROLLING"
        assert refused.body["errorType"] == "RATE_LIMIT"
        assert refused.body["message"] == "You have reached your ten_secondly_rolling limit."
        assert refused.headers["X-HubSpot-RateLimit-Max"] == "3"
        assert refused.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "1500"
        assert refused.headers["X-HubSpot-RateLimit-Remaining"] == "0"
        assert "Retry-After" not in refused.headers
        await sleep_until_window_frees(hubspot.state)
        # Only the first call left the window; the refused one never entered it.
        assert (await hubspot.call("GET", PROPERTIES)).status == 200
        assert (await hubspot.call("GET", PROPERTIES)).status == 429
        stats = (await hubspot.control("GET", "/_stats")).body
        assert stats["rate_limited"] == 2
        assert stats["by_status"] == {"200": 4, "429": 2}


async def test_a_spent_daily_allocation_is_429_daily() -> None:
    async with fake(HubSpotConfig(daily_limit=2)) as hubspot:
        left = [(await hubspot.call("GET", PROPERTIES)).headers["X-HubSpot-RateLimit-Daily-Remaining"]
                for _ in range(2)]
        assert left == ["1", "0"]
        refused = await hubspot.call("GET", PROPERTIES)
        assert refused.status == 429
        assert refused.body["policyName"] == "DAILY"
        assert refused.body["message"] == "You have reached your daily limit."
        assert refused.headers["X-HubSpot-RateLimit-Daily"] == "2"


async def test_down_answers_503_to_every_call_the_metadata_probe_included(hubspot: Fake) -> None:
    hubspot.state.configure(down=True)
    for method, path, body in (("GET", PROPERTIES, None), ("GET", f"{PROPERTIES}/email", None),
                               ("POST", UPSERT, by_email("a@example.com"))):
        answer = await hubspot.call(method, path, json=body)
        assert answer.status == 503
        assert answer.body["category"] == "INTERNAL_ERROR"
    assert hubspot.state.stored() == {"contacts": 0}
    hubspot.state.configure(down=False)
    assert (await hubspot.call("POST", UPSERT, json=by_email("a@example.com"))).status == 200


async def test_fail_rate_answers_502_or_503_in_a_pattern_the_seed_repeats() -> None:
    patterns = []
    for _ in range(2):
        async with fake(HubSpotConfig(fail_rate=0.5), seed=11) as hubspot:
            patterns.append([(await hubspot.call("GET", PROPERTIES)).status for _ in range(16)])
    assert patterns[0] == patterns[1]
    assert set(patterns[0]) == {200, 502, 503}


async def test_store_then_hang_writes_the_contact_and_withholds_the_answer() -> None:
    async with fake(HubSpotConfig(timeout_rate=1.0, hang_seconds=30)) as hubspot:
        with pytest.raises(asyncio.TimeoutError):
            await hubspot.call("POST", UPSERT, json=by_email("late@example.com"), timeout=0.3)
        assert hubspot.state.find("email", "late@example.com") is not None
        call = hubspot.state.calls[0]
        assert (call.status, call.finished, call.records) == (200, None, 1)
        assert hubspot.state.stats.hung == 1
        # A read is not a write: it is never withheld.
        assert (await hubspot.call("GET", PROPERTIES, timeout=2)).status == 200


async def test_upsert_by_email_twice_is_one_contact_with_the_latest_fields(hubspot: Fake) -> None:
    first = await hubspot.call("POST", UPSERT, json=by_email("ann@example.com", firstname="Ann",
                                                             company="Old Ltd"))
    second = await hubspot.call("POST", UPSERT, json=by_email("ANN@example.com", company="New Ltd"))
    assert (first.status, second.status) == (200, 200)
    one, two = first.body["results"][0], second.body["results"][0]
    assert (one["new"], two["new"]) == (True, False)
    assert one["id"] == two["id"]
    assert two["properties"]["company"] == "New Ltd"
    assert two["properties"]["firstname"] == "Ann"  # not given again: kept
    assert two["properties"]["hs_object_id"] == two["id"]
    assert first.body["status"] == "COMPLETE"
    assert first.body["startedAt"] <= first.body["completedAt"]
    stats = (await hubspot.control("GET", "/_stats")).body
    assert (stats["created"], stats["updated"], stats["stored"]) == (
        {"contacts": 1}, {"contacts": 1}, {"contacts": 1})


async def test_create_twice_is_409_with_the_existing_id_only_in_the_message(hubspot: Fake) -> None:
    body = {"properties": {"email": "bob@example.com", "firstname": "Bob"}}
    created = await hubspot.call("POST", CONTACTS, json=body)
    assert created.status == 201
    again = await hubspot.call("POST", CONTACTS, json={"properties": {"email": "Bob@Example.com"}})
    assert again.status == 409
    assert again.body["category"] == "CONFLICT"
    assert again.body["status"] == "error"
    assert again.body["message"] == f"Contact already exists. Existing ID: {created.body['id']}"
    assert again.body["correlationId"]
    assert hubspot.state.stored() == {"contacts": 1}


@pytest.mark.parametrize(("inputs", "code", "where"), [
    ([{"idProperty": "email", "id": "x@reject.test", "properties": {}}], "INVALID_EMAIL", "id"),
    ([{"idProperty": "email", "id": "not-an-address", "properties": {}}], "INVALID_EMAIL", "id"),
    ([{"idProperty": "email", "id": "c@example.com", "properties": {"nickname": "C"}}],
     "PROPERTY_DOESNT_EXIST", "nickname"),
    ([{"idProperty": "email", "id": "c@example.com", "properties": {"hs_object_id": "9"}}],
     "READ_ONLY_VALUE", "hs_object_id"),
    ([{"idProperty": "email", "id": "d@example.com", "properties": {}},
      {"idProperty": "email", "id": "D@EXAMPLE.COM", "properties": {}}], "DUPLICATE_ID", "id"),
    ([{"idProperty": "firstname", "id": "Ann", "properties": {}}], "INVALID_ID_PROPERTY",
     "inputs[1].idProperty"),
])
async def test_one_invalid_input_fails_the_whole_batch_and_writes_nothing(
        hubspot: Fake, inputs: list[dict[str, Any]], code: str, where: str) -> None:
    good = {"idProperty": "email", "id": "good@example.com", "properties": {"firstname": "G"}}
    answer = await hubspot.call("POST", UPSERT, json={"inputs": [good, *inputs]})
    assert answer.status == 400
    assert answer.body["category"] == "VALIDATION_ERROR"
    assert answer.body["correlationId"]
    assert any(e["code"] == code and e["in"] == where for e in answer.body["errors"]), answer.body
    assert hubspot.state.stored() == {"contacts": 0}


async def test_invalid_email_message_names_the_address(hubspot: Fake) -> None:
    answer = await hubspot.call("POST", UPSERT, json=by_email("eve@reject.test"))
    assert answer.body["errors"][0]["message"] == "Email address eve@reject.test is invalid"
    duplicate = await hubspot.call("POST", UPSERT, json=by_email("a@example.com", "A@example.com"))
    assert duplicate.body["message"].startswith("Duplicate IDs found in batch input: [a@example.com]")


async def test_a_batch_holds_1_to_100_inputs(hubspot: Fake) -> None:
    emails = [f"p{i}@example.com" for i in range(101)]
    too_many = await hubspot.call("POST", UPSERT, json=by_email(*emails))
    assert too_many.status == 400
    assert too_many.body["errors"][0]["code"] == "TOO_MANY_INPUTS"
    assert hubspot.state.calls[-1].records == 101
    assert (await hubspot.call("POST", UPSERT, json={"inputs": []})).status == 400
    full = await hubspot.call("POST", UPSERT, json=by_email(*emails[:100]))
    assert full.status == 200
    assert len(full.body["results"]) == 100


async def test_results_do_not_come_back_in_input_order_and_echo_trace_ids(hubspot: Fake) -> None:
    emails = [f"p{i:02d}@example.com" for i in range(20)]
    body = {"inputs": [{"idProperty": "email", "id": e, "properties": {}, "objectWriteTraceId": f"t{n}"}
                       for n, e in enumerate(emails)]}
    answer = await hubspot.call("POST", UPSERT, json=body)
    returned = [r["properties"]["email"] for r in answer.body["results"]]
    assert sorted(returned) == emails
    assert returned != emails
    assert {r["objectWriteTraceId"]: r["properties"]["email"] for r in answer.body["results"]} == {
        f"t{n}": e for n, e in enumerate(emails)}


async def test_conflict_emails_are_answered_207_and_the_other_inputs_are_written(hubspot: Fake) -> None:
    hubspot.state.configure(conflict_emails=["taken@example.com"])
    existing = hubspot.state.find("email", "taken@example.com")
    assert existing is not None
    answer = await hubspot.call("POST", UPSERT, json=by_email("free@example.com", "Taken@example.com"))
    assert answer.status == 207
    assert [r["properties"]["email"] for r in answer.body["results"]] == ["free@example.com"]
    assert answer.body["numErrors"] == 1
    assert answer.body["errors"] == [{
        "status": "error", "category": "CONFLICT",
        "message": f"Contact already exists. Existing ID: {existing.id}",
        "context": {"id": ["Taken@example.com"]}}]
    assert hubspot.state.stored() == {"contacts": 2}
    # The pre-existing contact survives a reset: the config still says it exists.
    await hubspot.control("POST", "/_reset")
    assert hubspot.state.stored() == {"contacts": 1}


async def test_upserting_by_a_unique_property_cannot_give_two_contacts_one_email(hubspot: Fake) -> None:
    made = await hubspot.call("POST", PROPERTIES, json={
        "name": "leadline_submission_id", "label": "Leadline submission id", "type": "string",
        "fieldType": "text", "groupName": "contactinformation", "hasUniqueValue": True})
    assert made.status == 201

    def submission(sub_id: str) -> dict[str, Any]:
        return {"inputs": [{"idProperty": "leadline_submission_id", "id": sub_id,
                            "properties": {"email": "same@example.com"}}]}

    assert (await hubspot.call("POST", UPSERT, json=submission("s-1"))).status == 200
    redelivered = await hubspot.call("POST", UPSERT, json=submission("s-1"))
    assert redelivered.body["results"][0]["new"] is False
    second = await hubspot.call("POST", UPSERT, json=submission("s-2"))
    assert second.status == 207
    assert second.body["errors"][0]["category"] == "CONFLICT"
    assert hubspot.state.stored() == {"contacts": 1}


async def test_setup_creates_the_submission_property_once(hubspot: Fake) -> None:
    missing = await hubspot.call("GET", f"{PROPERTIES}/leadline_submission_id")
    assert missing.status == 404
    assert missing.body["category"] == "OBJECT_NOT_FOUND"
    refused = await hubspot.call("POST", UPSERT, json=by_email("a@example.com", leadline_submission_id="s1"))
    assert refused.status == 400
    definition = {"name": "leadline_submission_id", "label": "Leadline submission id", "type": "string",
                  "fieldType": "text", "groupName": "contactinformation"}
    created = await hubspot.call("POST", PROPERTIES, json=definition)
    assert created.status == 201
    assert created.body == {**definition, "hasUniqueValue": False}
    assert (await hubspot.call("POST", PROPERTIES, json=definition)).status == 409
    listed = await hubspot.call("GET", PROPERTIES)
    assert "leadline_submission_id" in {p["name"] for p in listed.body["results"]}
    accepted = await hubspot.call("POST", UPSERT, json=by_email("a@example.com", leadline_submission_id="s1"))
    assert accepted.status == 200
    bad = await hubspot.call("POST", PROPERTIES, json={"name": "Bad Name", "label": "x"})
    assert bad.status == 400


@pytest.mark.parametrize(("scope", "method", "path", "body"), [
    ("crm.objects.contacts.write", "POST", UPSERT, by_email("a@example.com")),
    (READ, "GET", CONTACTS, None),
    (SCHEMA_READ, "GET", PROPERTIES, None),
    (SCHEMA_WRITE, "POST", PROPERTIES, {"name": "x", "label": "x", "type": "string", "fieldType": "text",
                                        "groupName": "contactinformation"}),
])
async def test_a_missing_scope_is_403_naming_the_scope(
        hubspot: Fake, scope: str, method: str, path: str, body: Any) -> None:
    hubspot.state.configure(scopes=hubspot.state.config.scopes - {scope})
    answer = await hubspot.call(method, path, json=body)
    assert answer.status == 403
    assert answer.body["category"] == "MISSING_SCOPES"
    assert answer.body["errors"][0]["context"]["requiredGranularScopes"] == [scope]


async def test_patch_updates_by_id_or_by_email_and_404s_on_unknown(hubspot: Fake) -> None:
    created = await hubspot.call("POST", CONTACTS, json={"properties": {"email": "p@example.com"}})
    contact_id = created.body["id"]
    by_id = await hubspot.call("PATCH", f"{CONTACTS}/{contact_id}", json={"properties": {"company": "A"}})
    assert (by_id.status, by_id.body["properties"]["company"]) == (200, "A")
    by_mail = await hubspot.call("PATCH", f"{CONTACTS}/P@example.com", params={"idProperty": "email"},
                                 json={"properties": {"company": "B"}})
    assert (by_mail.status, by_mail.body["id"]) == (200, contact_id)
    for path, params in ((f"{CONTACTS}/999999", None), (f"{CONTACTS}/nobody@example.com",
                                                         {"idProperty": "email"})):
        missing = await hubspot.call("PATCH", path, params=params, json={"properties": {"company": "C"}})
        assert missing.status == 404
        assert missing.body == {"status": "error", "message": "resource not found",
                                "correlationId": missing.body["correlationId"],
                                "category": "OBJECT_NOT_FOUND"}
    read = await hubspot.call("GET", f"{CONTACTS}/{contact_id}", params={"properties": "company"})
    assert read.body["properties"]["company"] == "B"


async def test_list_contacts_pages_and_picks_properties(hubspot: Fake) -> None:
    await hubspot.call("POST", UPSERT, json=by_email(*(f"p{i}@example.com" for i in range(5)), company="C"))
    page = await hubspot.call("GET", CONTACTS, params={"limit": "3", "properties": "company"})
    assert len(page.body["results"]) == 3
    assert set(page.body["results"][0]["properties"]) == {"company", "hs_object_id", "createdate",
                                                          "lastmodifieddate"}
    after = page.body["paging"]["next"]["after"]
    rest = await hubspot.call("GET", CONTACTS, params={"limit": "3", "after": after})
    assert len(rest.body["results"]) == 2
    assert "paging" not in rest.body
    assert (await hubspot.call("GET", CONTACTS, params={"limit": "101"})).status == 400
