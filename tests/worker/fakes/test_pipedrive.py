"""The Pipedrive fake behaves as Pipedrive documents: connectors are proven against it."""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest

from leadline.config import Rate
from tests.worker.fakes import Fake, running, sleep_until_window_frees
from worker.fakes.pipedrive import STATE, PipedriveConfig, create_app

PERSONS = "/api/v2/persons"
SEARCH = "/api/v2/persons/search"
LEADS = "/api/v1/leads"
NOTES = "/api/v1/notes"
AUTH = {"x-api-token": "test-token"}
ADA = {"name": "Ada Lovelace", "emails": [{"value": "ada@example.com", "primary": True, "label": "work"}]}


def fake(config: PipedriveConfig | None = None) -> AbstractAsyncContextManager[Fake]:
    return running(create_app(config, seed=7), STATE, AUTH)


@pytest.fixture
async def pipedrive() -> AsyncIterator[Fake]:
    async with fake() as started:
        yield started


async def person(pipedrive: Fake, body: dict[str, Any] = ADA) -> int:
    answer = await pipedrive.call("POST", PERSONS, json=body)
    assert answer.status == 200, answer.body
    person_id: int = answer.body["data"]["id"]
    return person_id


def search_params(term: str) -> dict[str, str]:
    return {"term": term, "fields": "email", "exact_match": "true"}


async def test_a_missing_or_wrong_token_is_401_with_pipedrives_body(pipedrive: Fake) -> None:
    for headers in ({}, {"x-api-token": "revoked"}):
        answer = await pipedrive.call("GET", "/api/v1/users/me", auth=False, headers=headers)
        assert answer.status == 401
        assert answer.body["success"] is False
        assert answer.body["error"] == "unauthorized access"
        assert answer.body["errorCode"] == 401
        assert answer.body["error_info"] == "Please check developers.pipedrive.com"
        assert "x-ratelimit-remaining" not in answer.headers


async def test_the_token_may_come_as_a_query_parameter(pipedrive: Fake) -> None:
    answer = await pipedrive.call("GET", "/api/v1/users/me", auth=False, params={"api_token": "test-token"})
    assert answer.status == 200
    assert answer.body["data"]["company_domain"] == "leadline-test"


async def test_the_rolling_window_counts_arrivals_and_says_when_it_frees() -> None:
    async with fake(PipedriveConfig(rate_limit=Rate(2, 1.5), daily_limit=100)) as pipedrive:
        first = await pipedrive.call("GET", "/api/v1/users/me")
        await asyncio.sleep(0.4)
        second = await pipedrive.call("GET", "/api/v1/users/me")
        assert [a.headers["x-ratelimit-remaining"] for a in (first, second)] == ["1", "0"]
        assert first.headers["x-ratelimit-limit"] == "2"
        assert [a.headers["x-daily-requests-left"] for a in (first, second)] == ["99", "98"]
        refused = await pipedrive.call("POST", PERSONS, json=ADA)
        assert refused.status == 429
        assert refused.body["success"] is False
        assert refused.body["error"] == "Request over limit"
        assert refused.body["errorCode"] == 429
        assert refused.headers["x-ratelimit-remaining"] == "0"
        # Whole seconds, rounded up, until the oldest accepted call leaves the window.
        oldest, refused_at = pipedrive.state.calls[0].arrived, pipedrive.state.calls[-1].arrived
        assert refused.headers["x-ratelimit-reset"] == str(math.ceil(oldest + 1.5 - refused_at))
        assert refused.headers["x-daily-requests-left"] == "98"  # a refused call costs nothing
        assert "Retry-After" not in refused.headers
        assert pipedrive.state.stored()["persons"] == 0
        await sleep_until_window_frees(pipedrive.state)
        assert (await pipedrive.call("POST", PERSONS, json=ADA)).status == 200
        assert (await pipedrive.call("POST", PERSONS, json=ADA)).status == 429
        assert pipedrive.state.stats.rate_limited == 2


async def test_down_answers_503_to_every_call_the_probe_included(pipedrive: Fake) -> None:
    pipedrive.state.configure(down=True)
    for method, path, body in (("GET", "/api/v1/users/me", None), ("GET", "/api/v1/dealFields", None),
                               ("POST", PERSONS, ADA)):
        answer = await pipedrive.call(method, path, json=body)
        assert answer.status == 503
        assert (answer.body["success"], answer.body["error"]) == (False, "Service unavailable")
    assert pipedrive.state.stored()["persons"] == 0


async def test_store_then_hang_creates_the_person_and_withholds_the_answer() -> None:
    async with fake(PipedriveConfig(timeout_rate=1.0, hang_seconds=30)) as pipedrive:
        with pytest.raises(asyncio.TimeoutError):
            await pipedrive.call("POST", PERSONS, json=ADA, timeout=0.3)
        assert pipedrive.state.stored()["persons"] == 1
        assert pipedrive.state.calls[0].finished is None
        # Reads are never withheld.
        assert (await pipedrive.call("GET", f"{PERSONS}/1", timeout=2)).status == 200


async def test_two_posts_of_one_person_make_two_persons(pipedrive: Fake) -> None:
    ids = [await person(pipedrive), await person(pipedrive)]
    assert ids == [1, 2]
    found = await pipedrive.call("GET", SEARCH, params=search_params("ADA@example.com"))
    assert [i["item"]["id"] for i in found.body["data"]["items"]] == [1, 2]
    assert found.body["data"]["items"][0]["item"]["emails"] == ["ada@example.com"]
    assert pipedrive.state.stats.created == {"persons": 2}


async def test_search_lags_behind_writes_while_get_and_list_by_person_do_not() -> None:
    async with fake(PipedriveConfig(search_lag_ms=600)) as pipedrive:
        person_id = await person(pipedrive)
        lead = await pipedrive.call("POST", LEADS, json={"title": "Ada's enquiry", "person_id": person_id})
        assert lead.status == 201
        early = await pipedrive.call("GET", SEARCH, params=search_params("ada@example.com"))
        assert early.body["data"]["items"] == []
        assert (await pipedrive.call("GET", f"{PERSONS}/{person_id}")).status == 200
        listed = await pipedrive.call("GET", LEADS, params={"person_id": str(person_id)})
        assert [item["id"] for item in listed.body["data"]] == [lead.body["data"]["id"]]
        await asyncio.sleep(0.7)
        late = await pipedrive.call("GET", SEARCH, params=search_params("ada@example.com"))
        assert [i["item"]["id"] for i in late.body["data"]["items"]] == [person_id]


async def test_the_plan_cap_on_leads_is_403_feature_capping(pipedrive: Fake) -> None:
    pipedrive.state.configure(lead_limit=1)
    person_id = await person(pipedrive)
    assert (await pipedrive.call("POST", LEADS, json={"title": "one", "person_id": person_id})).status == 201
    capped = await pipedrive.call("POST", LEADS, json={"title": "two", "person_id": person_id})
    assert capped.status == 403
    assert capped.body["code"] == "feature_capping_leads_limit"
    assert (capped.body["success"], capped.body["errorCode"]) == (False, 403)
    assert capped.body["error"]
    assert pipedrive.state.stored()["leads"] == 1


@pytest.mark.parametrize("body", [
    {"emails": [{"value": "a@example.com"}]},
    {"name": ""},
    {"name": "Eve", "emails": [{"value": "eve@reject.test"}]},
    {"name": "Eve", "emails": [{"value": "not-an-address"}]},
    {"name": "Eve", "email": "eve@example.com"},
])
async def test_a_refused_person_is_400_and_not_stored(pipedrive: Fake, body: dict[str, Any]) -> None:
    answer = await pipedrive.call("POST", PERSONS, json=body)
    assert answer.status == 400
    assert (answer.body["success"], answer.body["errorCode"]) == (False, 400)
    assert answer.body["error"]
    assert pipedrive.state.stored()["persons"] == 0


async def test_get_person_by_id_and_404_for_unknown(pipedrive: Fake) -> None:
    person_id = await person(pipedrive)
    answer = await pipedrive.call("GET", f"{PERSONS}/{person_id}")
    assert answer.body["data"]["emails"] == ADA["emails"]
    assert answer.body["data"]["name"] == "Ada Lovelace"
    missing = await pipedrive.call("GET", f"{PERSONS}/999")
    assert missing.status == 404
    assert missing.body["error"] == "Person not found"
    assert (await pipedrive.call("GET", f"{PERSONS}/abc")).status == 400


async def test_a_lead_needs_a_title_and_a_person_that_exists(pipedrive: Fake) -> None:
    person_id = await person(pipedrive)
    for body in ({"person_id": person_id}, {"title": "t"}, {"title": "t", "person_id": 999},
                 {"title": "t", "organization_id": 5},
                 {"title": "t", "person_id": person_id, "colour": "red"}):
        answer = await pipedrive.call("POST", LEADS, json=body)
        assert answer.status == 400, body
        assert answer.body["success"] is False
    assert pipedrive.state.stored()["leads"] == 0


async def test_lead_custom_fields_are_deal_field_keys(pipedrive: Fake) -> None:
    made = await pipedrive.call("POST", "/api/v1/dealFields",
                                json={"name": "Leadline submission id", "field_type": "varchar"})
    assert made.status == 201
    key = made.body["data"]["key"]
    assert re.fullmatch(r"[0-9a-f]{40}", key)
    listed = await pipedrive.call("GET", "/api/v1/dealFields")
    assert key in [f["key"] for f in listed.body["data"]]
    person_id = await person(pipedrive)
    lead = await pipedrive.call("POST", LEADS, json={"title": "t", "person_id": person_id, key: "s-1"})
    assert lead.status == 201
    assert lead.body["data"][key] == "s-1"
    assert re.fullmatch(r"[0-9a-f-]{36}", lead.body["data"]["id"])
    unknown = await pipedrive.call("POST", LEADS, json={"title": "t", "person_id": person_id, "f" * 40: "x"})
    assert unknown.status == 400
    odd = await pipedrive.call("POST", "/api/v1/dealFields", json={"name": "x", "field_type": "blob"})
    assert odd.status == 400


async def test_notes_attach_to_a_lead_and_list_by_lead(pipedrive: Fake) -> None:
    person_id = await person(pipedrive)
    lead = await pipedrive.call("POST", LEADS, json={"title": "t", "person_id": person_id})
    lead_id = lead.body["data"]["id"]
    note = await pipedrive.call("POST", NOTES, json={"content": "Hello", "lead_id": lead_id})
    assert note.status == 201
    assert note.body["data"]["lead_id"] == lead_id
    assert (await pipedrive.call("POST", NOTES, json={"content": "x", "lead_id": "nope"})).status == 400
    assert (await pipedrive.call("POST", NOTES, json={"lead_id": lead_id})).status == 400
    listed = await pipedrive.call("GET", NOTES, params={"lead_id": lead_id})
    assert [n["content"] for n in listed.body["data"]] == ["Hello"]
    assert listed.body["additional_data"]["pagination"]["more_items_in_collection"] is False


async def test_leads_list_pages_with_start_and_limit(pipedrive: Fake) -> None:
    person_id = await person(pipedrive)
    for n in range(3):
        await pipedrive.call("POST", LEADS, json={"title": f"t{n}", "person_id": person_id})
    page = await pipedrive.call("GET", LEADS, params={"person_id": str(person_id), "limit": "2"})
    assert [lead["title"] for lead in page.body["data"]] == ["t0", "t1"]
    assert page.body["additional_data"]["pagination"] == {"start": 0, "limit": 2,
                                                          "more_items_in_collection": True}
    rest = await pipedrive.call("GET", LEADS, params={"person_id": str(person_id), "start": "2"})
    assert [lead["title"] for lead in rest.body["data"]] == ["t2"]


async def test_unknown_paths_answer_in_pipedrives_body(pipedrive: Fake) -> None:
    answer = await pipedrive.call("GET", "/api/v1/deals")
    assert answer.status == 404
    assert answer.body["success"] is False
