"""The real RabbitMQ, managed through `rabbitmqctl` (no management plugin here).

Each test session gets its own vhost, so no run sees another's leftovers;
each test gets its own name prefix inside it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import threading
import uuid
from urllib.parse import quote, urlsplit, urlunsplit

from devtools.net import tcp_reachable
from leadline.config import DEFAULT_AMQP_URL

VHOST_PREFIX = "leadline-test-"


def base_url() -> str:
    return os.environ.get("AMQP_URL") or DEFAULT_AMQP_URL


def reachable(url: str) -> bool:
    return tcp_reachable(url)


def url_for_vhost(url: str, vhost: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/" + quote(vhost, safe="")))


def ctl(*args: str, check: bool = True, timeout: float = 60) -> str:
    if shutil.which("rabbitmqctl") is None:
        raise RuntimeError("rabbitmqctl is not on PATH; the broker tests manage vhosts with it")
    done = subprocess.run(
        ["rabbitmqctl", "--quiet", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and done.returncode != 0:
        raise RuntimeError(f"rabbitmqctl {' '.join(args)} failed: {done.stderr.strip() or done.stdout}")
    return done.stdout


def create_vhost() -> str:
    vhost = f"{VHOST_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}"
    ctl("add_vhost", vhost)
    ctl("set_permissions", "-p", vhost, urlsplit(base_url()).username or "guest", ".*", ".*", ".*")
    return vhost


def delete_vhost(vhost: str) -> None:
    with contextlib.suppress(subprocess.TimeoutExpired):
        ctl("delete_vhost", vhost, check=False, timeout=120)


def delete_stale_vhosts() -> None:
    """Vhosts left by test runs whose process is gone (a killed run cleans up nothing).

    Best effort: a broker slow to delete one must not stop this run.
    """
    try:
        listing = ctl("list_vhosts", "name", check=False)
    except subprocess.TimeoutExpired:
        return
    for line in listing.splitlines():
        name = line.strip()
        if not name.startswith(VHOST_PREFIX):
            continue
        pid = name[len(VHOST_PREFIX):].split("-", 1)[0]
        if pid.isdigit() and not pid_alive(int(pid)):
            delete_vhost(name)


def pid_alive(pid: int) -> bool:
    """Whether a process of that id runs (one we may not signal counts as running)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def close_connections(vhost: str, reason: str = "test: connection dropped on purpose") -> None:
    ctl("close_all_connections", "--vhost", vhost, reason)


def queue_depths(vhost: str) -> dict[str, int]:
    """Ready + unacknowledged messages per queue in `vhost`."""
    out = ctl("list_queues", "-p", vhost, "name", "messages", "--no-table-headers")
    depths: dict[str, int] = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            depths[parts[0]] = int(parts[1])
    return depths


class QueueSweeper:
    """Deletes the queues of finished tests (by name prefix), a few tests at a time.

    Listing queues takes a `rabbitmqctl` call (~1 s), so prefixes are swept
    in groups, in a background thread, through one AMQP connection.
    """

    EVERY = 12

    def __init__(self, amqp_url: str, vhost: str) -> None:
        self.amqp_url = amqp_url
        self.vhost = vhost
        self._done: list[str] = []
        self._thread: threading.Thread | None = None

    def finished(self, prefix: str) -> None:
        self._done.append(prefix)
        if len(self._done) >= self.EVERY and (self._thread is None or not self._thread.is_alive()):
            prefixes, self._done = set(self._done), []
            self._thread = threading.Thread(target=self._sweep, args=(prefixes,), daemon=True)
            self._thread.start()

    def _sweep(self, prefixes: set[str]) -> None:
        try:
            listing = ctl("list_queues", "-p", self.vhost, "name", "--no-table-headers", check=False)
        except subprocess.TimeoutExpired:
            return
        names = [n.strip() for n in listing.splitlines() if n.strip().split(".", 1)[0] in prefixes]
        if names:
            with contextlib.suppress(Exception):
                asyncio.run(self._delete(names))

    async def _delete(self, names: list[str]) -> None:
        import aiormq

        connection = await aiormq.connect(self.amqp_url)
        try:
            channel = await connection.channel()
            for name in names:
                await channel.queue_delete(name)
        finally:
            await connection.close()
