"""`python -m proxy [--host H] [--port P]`: the edge proxy.

A bad setting stops start-up with one line naming it and exit code 2.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Mapping, Sequence

import uvloop
from aiohttp import web

from leadline import logs
from leadline.errors import ConfigError
from proxy.app import create_app
from proxy.settings import Settings, parse_port

EXIT_CONFIG = 2


def parse_args(argv: Sequence[str], settings: Settings) -> tuple[str, int]:
    parser = argparse.ArgumentParser(prog="python -m proxy", description="Leadline's edge proxy.")
    parser.add_argument("--host", default=settings.host, help="default PROXY_HOST or 127.0.0.1")
    parser.add_argument("--port", default=str(settings.port), help="default PROXY_PORT or 8080")
    args = parser.parse_args(argv)
    return str(args.host), parse_port("--port", str(args.port))


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    try:
        settings = Settings.from_env(os.environ if environ is None else environ)
        host, port = parse_args(sys.argv[1:] if argv is None else argv, settings)
        app = create_app(settings)
    except ConfigError as exc:
        print(f"proxy: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    logs.configure(settings.log_level)
    # The JSON lines never show the caller, thread or process: do not collect
    # them for every record (the logging docs' own advice for hot paths).
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    # access_log=None: the edge middleware writes the one line per request.
    web.run_app(app, host=host, port=port, access_log=None, print=None,
                loop=uvloop.new_event_loop(), shutdown_timeout=settings.publish_timeout + 1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
