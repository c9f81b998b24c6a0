"""`python -m worker` consumes; `python -m worker dlq ...` tends the dead letters;
`python -m worker crm check|setup` checks the CRM's set-up.

A missing or malformed setting: one line on stderr naming it, exit 2.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys

from leadline import logs
from leadline.errors import BrokerUnavailable, ConfigError, PublishNotConfirmed
from leadline.schemas import load_schemas
from worker import crm_cli, dlq_cli
from worker.crm.mapping import load_mappings
from worker.settings import Settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m worker", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("run", help="consume leads (the default)")
    dlq_cli.add_parser(sub)
    crm_cli.add_parser(sub)
    args = parser.parse_args(argv)
    try:
        if args.command == "dlq":
            # aiormq would print a traceback-ish line of its own before our one clear line.
            logging.getLogger("aiormq").setLevel(logging.CRITICAL)
            return asyncio.run(dlq_cli.run(args, os.environ, sys.stdout))
        settings = Settings.from_env()
        # Every mapping problem at start, one line each, before anything connects.
        load_mappings(settings.crm, load_schemas())
        if args.command == "crm":
            return asyncio.run(crm_cli.run(args, settings, sys.stdout))
    except ConfigError as exc:
        for line in str(exc).splitlines():
            print(f"worker: {line}", file=sys.stderr)
        return 2
    except dlq_cli.UsageError as exc:
        print(f"worker: {exc}", file=sys.stderr)
        return 2
    except (BrokerUnavailable, PublishNotConfirmed) as exc:
        print(f"worker dlq: {exc}", file=sys.stderr)
        return 1

    from worker.service import serve  # the consumer's imports are not needed by the tools

    logs.configure(settings.log_level)
    try:
        import uvloop
    except ImportError:  # pragma: no cover - pinned, but the worker runs without it
        return asyncio.run(serve(settings))
    return uvloop.run(serve(settings))


if __name__ == "__main__":
    sys.exit(main())
