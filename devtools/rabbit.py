"""The real RabbitMQ, managed through `rabbitmqctl` (no management plugin here).

Each test session gets its own vhost, so no run sees another's leftovers;
each test gets its own name prefix inside it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
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
    ctl("delete_vhost", vhost, check=False)


def delete_stale_vhosts() -> None:
    """Vhosts left by test runs whose process is gone (a killed run cleans up nothing)."""
    for line in ctl("list_vhosts", "name", check=False).splitlines():
        name = line.strip()
        if not name.startswith(VHOST_PREFIX):
            continue
        pid = name[len(VHOST_PREFIX):].split("-", 1)[0]
        if pid.isdigit() and not _pid_alive(int(pid)):
            delete_vhost(name)


def _pid_alive(pid: int) -> bool:
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
