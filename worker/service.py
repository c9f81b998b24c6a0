"""`python -m worker`: the worker, its metrics server and its signals."""

from __future__ import annotations

import asyncio
import logging
import signal

from aiohttp import web

from leadline.config import Rate, format_duration
from worker.consumer import Worker
from worker.metrics import Metrics, metrics_app
from worker.settings import Settings

log = logging.getLogger("leadline.worker")


async def serve(settings: Settings, stop: asyncio.Event | None = None) -> int:
    """Run until SIGTERM/SIGINT (or `stop`), then shut down gracefully; the exit code."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    metrics = Metrics()
    worker = Worker(settings, metrics=metrics)
    runner: web.AppRunner | None = None
    if settings.metrics_port:
        runner = web.AppRunner(metrics_app(metrics, lambda: worker.ready), access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, settings.metrics_host, settings.metrics_port).start()
        except OSError as exc:
            await runner.cleanup()
            log.error("cannot serve metrics", extra={"port": settings.metrics_port, "error": str(exc)})
            return 1
    topology = settings.topology
    log.info("worker starting", extra={
        "queue": topology.work_queue, "retry_queues": list(topology.retry_queues),
        "max_attempts": settings.max_attempts, "prefetch": worker.prefetch, "crm": settings.crm,
        "crm_batch_size": settings.batch_size, "crm_concurrency": settings.calls_in_flight,
        "crm_rate_limit": _rate(worker.connector.limiter.rate), "metrics_port": settings.metrics_port,
        **({"crm_url": settings.crm_url} if settings.crm == "webhook" else {})})
    await worker.start()
    # Queue depths and consumers for the alert rules (DLQ not empty, no consumer...)
    watcher = asyncio.create_task(metrics.queues.watch(lambda: worker.broker.connection, topology))
    try:
        await stop.wait()
        log.info("stopping: no new leads, finishing those in flight",
                 extra={"in_flight": worker.in_flight, "grace_s": settings.shutdown_grace})
    finally:
        watcher.cancel()
        await worker.stop()
        if runner is not None:
            await runner.cleanup()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    return 0


def _rate(rate: Rate | None) -> str:
    return "off" if rate is None else f"{rate.count}/{format_duration(rate.per_seconds)}"
