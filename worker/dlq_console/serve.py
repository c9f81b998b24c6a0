"""`python -m worker dlq serve [--host H] [--port P]`: run the console until SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Mapping

from aiohttp import web

from leadline import logs
from worker.dlq_console.app import create_app
from worker.dlq_console.settings import ConsoleSettings, parse_listen

log = logging.getLogger("leadline.dlq.console")
EXIT_PORT = 1


async def run(host: str, port: str, environ: Mapping[str, str], amqp_url: str, prefix: str) -> int:
    """The exit code: 2 for a bad setting (`ConfigError`, raised), 1 when the port is taken."""
    settings = ConsoleSettings.from_env(environ, amqp_url=amqp_url, prefix=prefix)
    where, number = parse_listen(host, port)
    logs.configure(environ.get("LOG_LEVEL", "INFO"))
    runner = web.AppRunner(create_app(settings), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, where, number)
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        print(f"worker dlq serve: cannot listen on {where}:{number}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_PORT
    log.info("dlq console listening", extra={"host": where, "port": number,
                                             "queue": settings.topology.dead_letter_queue})
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        await runner.cleanup()
    log.info("dlq console stopped")
    return 0
