"""`python -m worker crm check|setup`: is the CRM set up as the worker needs it?

`check` asks the vendor's metadata endpoints (HubSpot's contact properties,
Salesforce's Lead describe, Pipedrive's lead fields) whether the token works
and every mapped field and the idempotency key exist, and says what to fix.
`setup` creates what the vendor's API lets it create (HubSpot's
`leadline_submission_id` property, Pipedrive's "Leadline submission id" lead
field) and says how to make the rest. Exit 0 when all is well, 1 otherwise.
"""

from __future__ import annotations

import argparse
from typing import IO, Any

from leadline.schemas import load_schemas
from worker.crm.settings import build_connector
from worker.settings import Settings


def add_parser(subparsers: Any) -> None:
    crm = subparsers.add_parser("crm", help="check the CRM's set-up, or create what is missing")
    cmds = crm.add_subparsers(dest="crm_command", required=True, metavar="COMMAND")
    cmds.add_parser("check", help="verify the token, every mapped field and the idempotency key")
    cmds.add_parser("setup", help="create what is missing where the vendor's API allows it")


async def run(args: argparse.Namespace, settings: Settings, out: IO[str]) -> int:
    connector = build_connector(crm=settings.crm, vendor=settings.vendor, crm_url=settings.crm_url,
                                timeout=settings.crm_timeout, rate=settings.crm_rate_limit, max_connections=4,
                                forms=load_schemas())
    try:
        findings = await (connector.setup() if args.crm_command == "setup" else connector.check())
    finally:
        await connector.close()
    for finding in findings:
        print(f"{'ok     ' if finding.ok else 'PROBLEM'}  {finding.text}", file=out)
    return 0 if all(f.ok for f in findings) else 1
