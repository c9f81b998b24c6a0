"""One harness over the four CRM fakes, so that one scenario runs against every connector.

`running_fake(crm)` starts the fake of that CRM in process on a free port
and yields a `Fake`: the worker settings that point at it, its knobs, and
what a test asks of any CRM: how many records hold this submission, how many
people, how many calls wrote something.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any

from aiohttp import web

from leadline.schemas import load_schemas
from tests.support.ports import free_port
from worker.crm import pipedrive
from worker.crm.settings import HubSpotSettings, PipedriveSettings, SalesforceSettings, build_connector
from worker.fakecrm import CRM_KEY, FakeCrm
from worker.fakecrm import create_app as create_webhook
from worker.fakes import hubspot as fake_hubspot
from worker.fakes import pipedrive as fake_pipedrive
from worker.fakes import salesforce as fake_salesforce
from worker.settings import Settings

CRMS = ("webhook", "hubspot", "salesforce", "pipedrive")
BATCHING = ("hubspot", "salesforce")
TOKEN = "test-token"
EXTERNAL_ID = "Leadline_Submission_Id__c"
# Calls that write, per vendor (method, path prefix).
WRITES = {
    "hubspot": (("POST", "/crm/v3/objects/contacts/batch/upsert"), ("PATCH", "/crm/v3/objects/contacts/")),
    "salesforce": (("PATCH", "/services/data/"),),
    "pipedrive": (("POST", "/api/v2/persons"), ("POST", "/api/v1/leads"), ("POST", "/api/v1/notes")),
}


@dataclass
class Fake:
    crm: str
    url: str
    app: web.Application
    token: str = TOKEN

    @property
    def state(self) -> Any:
        if self.crm == "webhook":
            return self.app[CRM_KEY]
        return self.app[{"hubspot": fake_hubspot.STATE, "salesforce": fake_salesforce.STATE,
                         "pipedrive": fake_pipedrive.STATE}[self.crm]]

    # -- pointing a worker at it ---------------------------------------------

    def settings(self, base: Settings, token: str | None = None) -> Settings:
        token = token or self.token
        if self.crm == "hubspot":
            return replace(base, crm="hubspot", vendor=HubSpotSettings(token=token, api_url=self.url))
        if self.crm == "salesforce":
            return replace(base, crm="salesforce",
                           vendor=SalesforceSettings(instance_url=self.url, token=token))
        if self.crm == "pipedrive":
            return replace(base, crm="pipedrive", vendor=PipedriveSettings(api_url=self.url, token=token))
        return replace(base, crm="webhook", crm_url=f"{self.url}/leads")

    async def set_up(self) -> None:
        """What an operator does once: `crm setup` (HubSpot's property, Pipedrive's field)."""
        if self.crm in {"hubspot", "pipedrive"}:
            settings = self.settings(Settings())
            connector = build_connector(crm=settings.crm, vendor=settings.vendor, crm_url=settings.crm_url,
                                        timeout=5, rate="off", max_connections=2, forms=load_schemas())
            try:
                findings = await connector.setup()
            finally:
                await connector.close()
            assert all(f.ok for f in findings), findings

    # -- knobs ---------------------------------------------------------------

    def configure(self, **knobs: Any) -> None:
        if self.crm == "webhook":
            crm: FakeCrm = self.state
            crm.behaviour = replace(crm.behaviour, **knobs)
        else:
            self.state.configure(**knobs)

    def down(self, is_down: bool) -> None:
        self.configure(down=is_down)

    def revoke(self) -> str:
        """The credentials stop working; returns the new token a restart would use."""
        if self.crm == "webhook":
            self.configure(refuse_auth=True)
            return self.token
        self.token = "rotated-token"
        self.configure(token=self.token)
        return self.token

    def reissue(self) -> None:
        if self.crm == "webhook":
            self.configure(refuse_auth=False)

    def rate_limit(self, text: str | None) -> None:
        if self.crm == "webhook":
            self.configure(rate_limit=text or "")
        else:
            self.configure(rate_limit=text)

    # -- what a test asks ----------------------------------------------------

    def records_for(self, sid: str, email: str) -> int:
        """CRM records that stand for this submission."""
        state = self.state
        if self.crm == "webhook":
            return 1 if sid in state.leads else 0
        if self.crm == "hubspot":
            return sum(1 for c in state.contacts.values()
                       if c.properties.get("email", "").lower() == email.lower())
        if self.crm == "salesforce":
            return sum(1 for lead in state.leads.values() if lead.get(EXTERNAL_ID) == sid)
        key = self.pipedrive_field()
        return sum(1 for lead in state.leads.values() if lead.get(key) == sid)

    def people(self, email: str) -> int:
        """Records of the person (HubSpot contacts, Pipedrive persons; else one per submission)."""
        state = self.state
        if self.crm == "hubspot":
            return self.records_for("", email)
        if self.crm == "pipedrive":
            return len(state.by_email.get(email.lower(), []))
        return -1

    def total_records(self) -> int:
        state = self.state
        if self.crm == "webhook":
            return len(state.leads)
        if self.crm == "hubspot":
            return len(state.contacts)
        return len(state.leads)

    def pipedrive_field(self) -> str:
        for spec in self.state.config.deal_fields.values():
            if spec.name == pipedrive.SUBMISSION_FIELD_NAME:
                return str(spec.key)
        raise AssertionError("no submission field: run set_up() first")

    def writes(self) -> int:
        """Calls that tried to write (answered or not)."""
        if self.crm == "webhook":
            return len(self.state.calls)
        return sum(1 for call in self.state.calls
                   if any(call.method == m and call.path.startswith(p) for m, p in WRITES[self.crm]))

    def refused_429(self) -> int:
        state = self.state
        return int(state.stats.rate_limited)

    def calls(self) -> int:
        if self.crm == "webhook":
            return len(self.state.calls) + int(self.state.stats.probes)
        return len(self.state.calls)

    def largest_call(self) -> int:
        """The most records one call carried."""
        return max((call.records for call in self.state.calls), default=0) if self.crm != "webhook" else 1

    def hung(self) -> int:
        state = self.state
        return int(state.stats.late if self.crm == "webhook" else state.stats.hung)


@asynccontextmanager
async def running_fake(crm: str, *, seed: int = 7) -> AsyncIterator[Fake]:
    if crm == "webhook":
        app = create_webhook(seed=seed)
    else:
        module = {"hubspot": fake_hubspot, "salesforce": fake_salesforce, "pipedrive": fake_pipedrive}[crm]
        app = module.create_app(seed=seed)
    # handler_cancellation: a "too late" answer stops when the caller gave up.
    runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=0.5)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        fake = Fake(crm, f"http://127.0.0.1:{port}", app)
        await fake.set_up()
        yield fake
    finally:
        await runner.cleanup()
        await asyncio.sleep(0)
