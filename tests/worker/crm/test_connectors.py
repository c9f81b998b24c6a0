"""Each connector against its vendor's fake, call by call (the worker's part is in test_conformance)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from leadline.schemas import load_schemas
from tests.worker.vendors import EXTERNAL_ID, Fake, running_fake
from worker.crm.base import Connector, Lead, Verdict
from worker.crm.http import HttpClient
from worker.crm.mapping import load_mappings
from worker.crm.ratelimit import WindowLimiter
from worker.crm.salesforce import OAuthRefresh, SalesforceConnector
from worker.crm.settings import build_connector

FORMS = load_schemas()


def lead(email: str | None = None, name: str = "Ada Lovelace", **extra: Any) -> Lead:
    sid = str(uuid.uuid4())
    fields = {"name": name, "email": email or f"ada.{sid[:8]}@example.com", "consent": True,
              "company": "Engines", "message": "Call me", **extra}
    return Lead(sid, "lead", fields, received_at="2026-12-01T08:00:00.000Z")


def connector_for(fake: Fake, token: str | None = None) -> Connector:
    s = fake.settings(fake_settings(), token)
    return build_connector(crm=s.crm, vendor=s.vendor, crm_url=s.crm_url, timeout=2, rate="off",
                           max_connections=4, forms=FORMS)


def fake_settings() -> Any:
    from worker.settings import Settings

    return Settings()


@pytest.fixture
async def hubspot() -> AsyncIterator[Fake]:
    async with running_fake("hubspot") as fake:
        yield fake


@pytest.fixture
async def salesforce() -> AsyncIterator[Fake]:
    async with running_fake("salesforce") as fake:
        yield fake


@pytest.fixture
async def pipedrive() -> AsyncIterator[Fake]:
    async with running_fake("pipedrive") as fake:
        yield fake


# -- HubSpot ---------------------------------------------------------------

async def test_hubspot_batch_upsert_writes_one_contact_per_person_and_a_repeat_writes_nothing_new(
    hubspot: Fake,
) -> None:
    crm = connector_for(hubspot)
    leads = [lead() for _ in range(3)]
    try:
        first = await crm.write(leads)
        again = await crm.write(leads)
    finally:
        await crm.close()
    assert [o.verdict for o in first + again] == [Verdict.DONE] * 6
    assert [o.record_id for o in first] == [o.record_id for o in again]
    assert hubspot.total_records() == 3
    contact = next(c for c in hubspot.state.contacts.values()
                   if c.properties["email"] == leads[0].fields["email"])
    assert contact.properties["firstname"] == "Ada"
    assert contact.properties["lastname"] == "Lovelace"
    assert contact.properties["leadline_submission_id"] == leads[0].submission_id
    assert [c.records for c in hubspot.state.calls if c.path.endswith("batch/upsert")] == [3, 3]


async def test_hubspot_a_second_submission_of_one_person_updates_the_contact_with_the_latest_fields(
    hubspot: Fake,
) -> None:
    crm = connector_for(hubspot)
    try:
        await crm.write([lead("ada@example.com", company="Old Co")])
        [later] = await crm.write([lead("Ada@Example.com", company="New Co", message="Again")])
    finally:
        await crm.close()
    assert later.verdict is Verdict.DONE
    [contact] = hubspot.state.contacts.values()
    assert (contact.properties["company"], contact.properties["message"]) == ("New Co", "Again")


async def test_hubspot_one_invalid_input_fails_alone_the_rest_of_the_batch_is_written(hubspot: Fake) -> None:
    crm = connector_for(hubspot)
    leads = [lead() for _ in range(6)] + [lead("bad@reject.test")] + [lead() for _ in range(5)]
    try:
        outcomes = await crm.write(leads)
    finally:
        await crm.close()
    assert [o.verdict for o in outcomes].count(Verdict.DONE) == 11
    refused = outcomes[6]
    assert refused.verdict is Verdict.PERMANENT
    assert "bad@reject.test" in refused.error
    assert hubspot.total_records() == 11


async def test_hubspot_conflict_naming_an_existing_contact_updates_that_contact(hubspot: Fake) -> None:
    hubspot.configure(conflict_emails=["taken@example.com"])
    [existing] = hubspot.state.contacts.values()
    crm = connector_for(hubspot)
    try:
        outcomes = await crm.write([lead("taken@example.com", name="Grace Hopper"), lead()])
    finally:
        await crm.close()
    assert [o.verdict for o in outcomes] == [Verdict.DONE, Verdict.DONE]
    assert outcomes[0].record_id == existing.id
    assert hubspot.state.contacts[existing.id].properties["lastname"] == "Hopper"
    assert hubspot.total_records() == 2


async def test_hubspot_revoked_token_missing_scope_429_and_outage_are_never_a_leads_fault(
    hubspot: Fake,
) -> None:
    crm = connector_for(hubspot, token="wrong")
    try:
        [revoked] = await crm.write([lead()])
    finally:
        await crm.close()
    assert (revoked.verdict, revoked.reason) == (Verdict.OUTAGE, "credentials")
    hubspot.configure(scopes=["crm.objects.contacts.read"])
    crm = connector_for(hubspot)
    try:
        [scopes] = await crm.write([lead()])
        hubspot.configure(scopes=["crm.objects.contacts.read", "crm.objects.contacts.write"],
                          rate_limit="1/10s")
        await crm.write([lead()])
        [limited] = await crm.write([lead()])
        hubspot.configure(rate_limit=None, down=True)
        probe = await crm.probe()
    finally:
        await crm.close()
    assert (scopes.verdict, scopes.reason) == (Verdict.OUTAGE, "credentials")
    assert (limited.verdict, limited.retry_after) == (Verdict.RATE_LIMITED, 10.0)
    assert probe.verdict is Verdict.CALL_FAILED


async def test_hubspot_check_names_the_missing_property_and_setup_creates_it(tmp_path: Path) -> None:
    async with running_fake("hubspot") as fake:
        fake.configure(properties={name: spec for name, spec in fake.state.config.properties.items()
                                   if name != "leadline_submission_id"})
        crm = connector_for(fake)
        try:
            before = await crm.check()
            setup = await crm.setup()
            after = await crm.check()
        finally:
            await crm.close()
    assert any(not f.ok and "'leadline_submission_id' does not exist" in f.text for f in before)
    assert [f.ok for f in setup] == [True]
    assert all(f.ok for f in after), after


# -- Salesforce --------------------------------------------------------------

async def test_salesforce_upsert_on_the_submission_id_creates_once_and_a_redelivery_updates(
    salesforce: Fake,
) -> None:
    crm = connector_for(salesforce)
    one = lead()
    batch = [lead() for _ in range(4)]
    try:
        [first] = await crm.write([one])
        [again] = await crm.write([one])
        many = await crm.write(batch)
        many_again = await crm.write(batch)
    finally:
        await crm.close()
    assert (first.verdict, first.status, again.status) == (Verdict.DONE, 201, 200)
    assert first.record_id == again.record_id
    assert [o.status for o in many] == [201] * 4
    assert [o.status for o in many_again] == [200] * 4
    assert salesforce.total_records() == 5
    record = next(r for r in salesforce.state.leads.values() if r[EXTERNAL_ID] == one.submission_id)
    assert (record["FirstName"], record["LastName"], record["Company"]) == ("Ada", "Lovelace", "Engines")
    assert record["Description"] == "Call me"


async def test_salesforce_a_per_record_refusal_fails_only_that_lead(salesforce: Fake, tmp_path: Path) -> None:
    (tmp_path / "lead.crm.json").write_text('{"salesforce": {"Email": "email", "Company": "company"}}')
    http = HttpClient(timeout=2, limiter=WindowLimiter(None))
    mappings = load_mappings("salesforce", FORMS, tmp_path)
    crm = SalesforceConnector(salesforce.url, salesforce.token, http, mappings)
    try:
        outcomes = await crm.write([lead(), lead()])
    finally:
        await crm.close()
    assert {(o.verdict, o.error_class) for o in outcomes} == {(Verdict.PERMANENT, "REQUIRED_FIELD_MISSING")}
    crm = connector_for(salesforce)
    try:
        outcomes = await crm.write([lead(), lead("x@reject.test"), lead()])
    finally:
        await crm.close()
    assert [o.verdict for o in outcomes] == [Verdict.DONE, Verdict.PERMANENT, Verdict.DONE]
    assert outcomes[1].error_class == "FIELD_CUSTOM_VALIDATION_EXCEPTION"
    assert salesforce.total_records() == 2


async def test_salesforce_several_matches_are_resolved_by_updating_the_oldest(salesforce: Fake) -> None:
    dup = lead()
    salesforce.configure(external_id="non-unique", duplicate_external_ids=[dup.submission_id])
    ids = sorted(i for i, r in salesforce.state.leads.items() if r.get(EXTERNAL_ID) == dup.submission_id)
    crm = connector_for(salesforce)
    try:
        [single] = await crm.write([dup])
        many = await crm.write([dup, lead()])
    finally:
        await crm.close()
    assert single.verdict is Verdict.DONE
    assert single.record_id in ids
    assert [o.verdict for o in many] == [Verdict.DONE, Verdict.DONE]
    assert salesforce.records_for(dup.submission_id, "") == 2  # the two it had; no third


async def test_salesforce_an_expired_session_is_renewed_with_the_refresh_token(salesforce: Fake) -> None:
    salesforce.configure(client_id="cid", client_secret="secret", refresh_token="refresh")
    http = HttpClient(timeout=2, limiter=WindowLimiter(None))
    refresh = OAuthRefresh(salesforce.url, "cid", "secret", "refresh")
    crm = SalesforceConnector(salesforce.url, "expired", http, load_mappings("salesforce", FORMS),
                              refresh=refresh)
    try:
        [written] = await crm.write([lead()])
    finally:
        await crm.close()
    assert written.verdict is Verdict.DONE
    http = HttpClient(timeout=2, limiter=WindowLimiter(None))
    crm = SalesforceConnector(salesforce.url, "expired", http, load_mappings("salesforce", FORMS),
                              refresh=OAuthRefresh(salesforce.url, "cid", "secret", "revoked"))
    try:
        [refused] = await crm.write([lead()])
    finally:
        await crm.close()
    assert (refused.verdict, refused.reason) == (Verdict.OUTAGE, "credentials")


async def test_salesforce_stops_before_the_daily_allocation_runs_out_and_pauses_when_it_has(
    salesforce: Fake,
) -> None:
    salesforce.configure(daily_limit=14)
    crm = connector_for(salesforce)
    try:
        written = [await crm.write([lead()]) for _ in range(4)]
        [held] = await crm.write([lead()])
        probe = await crm.probe()
    finally:
        await crm.close()
    assert all(o.verdict is Verdict.DONE for [o] in written)
    assert (held.verdict, held.reason) == (Verdict.OUTAGE, "quota")  # 10 left: the reserve
    assert (probe.verdict, probe.reason) == (Verdict.OUTAGE, "quota")
    salesforce.configure(daily_limit=5)
    crm = connector_for(salesforce)
    try:
        [spent] = await crm.write([lead()])
    finally:
        await crm.close()
    assert (spent.verdict, spent.reason) == (Verdict.OUTAGE, "quota")
    assert spent.error_class == "REQUEST_LIMIT_EXCEEDED"


async def test_salesforce_check_wants_the_external_id_unique(salesforce: Fake) -> None:
    crm = connector_for(salesforce)
    try:
        good = await crm.check()
        salesforce.configure(external_id="non-unique")
        loose = await crm.check()
        salesforce.configure(external_id="absent")
        absent = await crm.check()
    finally:
        await crm.close()
    assert all(f.ok for f in good), good
    assert any("is not Unique" in f.text for f in loose)
    assert any("does not exist on Lead" in f.text for f in absent)


# -- Pipedrive ---------------------------------------------------------------

async def test_pipedrive_writes_person_lead_and_note_once_and_a_redelivery_writes_nothing_new(
    pipedrive: Fake,
) -> None:
    crm = connector_for(pipedrive)
    one = lead()
    try:
        [first] = await crm.write([one])
        [again] = await crm.write([_redelivered(one)])
    finally:
        await crm.close()
    assert first.verdict is Verdict.DONE
    assert again.record_id == first.record_id
    stored = pipedrive.state.stored()
    assert stored == {"persons": 1, "leads": 1, "notes": 1}
    [record] = pipedrive.state.leads.values()
    assert record["title"] == "Web lead: Ada Lovelace"
    assert record[pipedrive.pipedrive_field()] == one.submission_id


async def test_pipedrive_a_returning_person_gets_a_second_lead_not_a_second_person(pipedrive: Fake) -> None:
    crm = connector_for(pipedrive)
    try:
        await crm.write([lead("ada@example.com")])
        [second] = await crm.write([lead("ADA@example.com", message="Me again")])
    finally:
        await crm.close()
    assert second.verdict is Verdict.DONE
    assert pipedrive.state.stored() == {"persons": 1, "leads": 2, "notes": 2}


async def test_pipedrive_a_retry_continues_from_the_person_it_made_while_search_still_lags(
    pipedrive: Fake,
) -> None:
    pipedrive.configure(search_lag_ms=60_000)
    crm = connector_for(pipedrive)
    one = lead()
    try:
        [first] = await crm.write([one])
        person = next(iter(pipedrive.state.persons))
        # the lead's answer was lost: the retry carries what the first attempt learned
        retry = Lead(one.submission_id, one.form, one.fields, attempt=2,
                     progress={"pipedrive_person": str(person)})
        [again] = await crm.write([retry])
    finally:
        await crm.close()
    assert (first.verdict, again.verdict) == (Verdict.DONE, Verdict.DONE)
    assert pipedrive.state.stored() == {"persons": 1, "leads": 1, "notes": 1}


async def test_pipedrive_plan_cap_and_revoked_token_pause_and_setup_creates_the_field() -> None:
    async with running_fake("pipedrive") as fake:
        fake.configure(lead_limit=0)
        crm = connector_for(fake)
        try:
            [capped] = await crm.write([lead()])
        finally:
            await crm.close()
        crm = connector_for(fake, token="wrong")
        try:
            [revoked] = await crm.write([lead()])
        finally:
            await crm.close()
    assert (capped.verdict, capped.reason) == (Verdict.OUTAGE, "quota")
    assert (revoked.verdict, revoked.reason) == (Verdict.OUTAGE, "credentials")


def _redelivered(one: Lead) -> Lead:
    return Lead(one.submission_id, one.form, one.fields, received_at=one.received_at, redelivered=True)
