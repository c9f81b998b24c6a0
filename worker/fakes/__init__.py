"""Fakes of the vendor CRM APIs the worker writes to (HubSpot, Salesforce,
Pipedrive), for tests, the demo and benchmarks: each behaves as its vendor
documents, the nasty parts included, and says in its docstring which
behaviours are documented and which are assumed.

Each module has `create_app(config, seed=)`, a `STATE` app key for the live
state, and the `/_state`, `/_calls`, `/_stats`, `/_config`, `/_reset`
endpoints; `python -m worker.fakecrm --vendor NAME` serves one.
"""

from __future__ import annotations

from types import ModuleType

from worker.fakes import hubspot, pipedrive, salesforce

VENDORS: dict[str, ModuleType] = {"hubspot": hubspot, "salesforce": salesforce, "pipedrive": pipedrive}

__all__ = ["VENDORS"]
