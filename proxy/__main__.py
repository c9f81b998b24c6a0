"""`python -m proxy [--host H] [--port P] [--workers N]`: the edge proxy.

A bad setting stops start-up with one line naming it and exit code 2. With
more than one worker the process supervises that many pre-forked copies of
itself sharing the port (see `proxy.workers`).
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Mapping, Sequence

import uvloop
from aiohttp import web

from leadline import logs
from leadline.errors import ConfigError
from proxy import metrics
from proxy.app import create_app
from proxy.readiness import Readiness
from proxy.settings import Settings, parse_port, parse_workers
from proxy.workers import Supervisor, reserve_port

EXIT_CONFIG = 2
EXIT_PORT = 1


def parse_args(argv: Sequence[str], settings: Settings) -> tuple[str, int, int]:
    parser = argparse.ArgumentParser(prog="python -m proxy", description="Leadline's edge proxy.")
    parser.add_argument("--host", default=settings.host, help="default PROXY_HOST or 127.0.0.1")
    parser.add_argument("--port", default=str(settings.port), help="default PROXY_PORT or 8080")
    parser.add_argument("--workers", default=str(settings.workers),
                        help="processes sharing the port, or auto (one per CPU); default PROXY_WORKERS or 1")
    args = parser.parse_args(argv)
    return (str(args.host), parse_port("--port", str(args.port)),
            parse_workers("--workers", str(args.workers)))


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    try:
        settings = Settings.from_env(os.environ if environ is None else environ)
        host, port, workers = parse_args(sys.argv[1:] if argv is None else argv, settings)
        app = create_app(settings)  # also checks the schemas before any fork
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
    if workers == 1:
        _serve(app, settings, host, port, reuse_port=False)
        return 0
    try:
        reserved = reserve_port(host, port)
    except OSError as exc:
        print(f"proxy: cannot listen on {host}:{port}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_PORT
    own_dir = None
    if metrics.multiprocess_dir() is None:
        own_dir = tempfile.mkdtemp(prefix="leadline-proxy-metrics-")
        os.environ[metrics.MULTIPROCESS_DIR] = own_dir
    readiness = Readiness(workers)  # made before the fork: every worker reads all of it

    def gone(pid: int, slot: int) -> None:
        metrics.forget_process(pid)
        readiness.clear(slot)

    try:
        with reserved:
            port = reserved.getsockname()[1]

            def serve(slot: int) -> int:
                reserved.close()  # the parent's; each worker binds a listening socket of its own
                metrics.share_between_processes()  # one /metrics for all the workers
                app = create_app(settings, readiness=readiness.slot(slot))
                _serve(app, settings, host, port, reuse_port=True)
                return 0

            return Supervisor(workers, serve, stop_timeout=settings.publish_timeout + 5,
                              fatal_exit_codes=frozenset({EXIT_CONFIG}), on_exit=gone).run()
    finally:
        if own_dir is not None:
            shutil.rmtree(own_dir, ignore_errors=True)


def _serve(app: web.Application, settings: Settings, host: str, port: int, *, reuse_port: bool) -> None:
    # access_log=None: the edge middleware writes the one line per request.
    web.run_app(app, host=host, port=port, access_log=None, print=None, reuse_port=reuse_port or None,
                loop=uvloop.new_event_loop(), shutdown_timeout=settings.publish_timeout + 1)


if __name__ == "__main__":
    sys.exit(main())
