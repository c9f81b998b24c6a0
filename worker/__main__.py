"""`python -m worker` consumes; `python -m worker dlq ...` tends the dead letters.

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
from worker import dlq_cli
from worker.settings import Settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m worker", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("run", help="consume leads (the default)")
    dlq_cli.add_parser(sub)
    args = parser.parse_args(argv)
    try:
        if args.command == "dlq":
            # aiormq would print a traceback-ish line of its own before our one clear line.
            logging.getLogger("aiormq").setLevel(logging.CRITICAL)
            return asyncio.run(dlq_cli.run(args, os.environ, sys.stdout))
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"worker: {exc}", file=sys.stderr)
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
