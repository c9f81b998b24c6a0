"""Without a broker the suite stops at once with one line that says how to get
one: it never skips the integration tests silently."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.ports import free_port

ROOT = Path(__file__).resolve().parents[2]


def test_the_suite_refuses_to_run_without_rabbitmq() -> None:
    env = {**os.environ, "AMQP_URL": f"amqp://guest:guest@127.0.0.1:{free_port()}/"}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "tests/leadline/test_config.py"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 3
    assert "RabbitMQ is not reachable at 127.0.0.1:" in done.stdout
    assert "rabbitmq-server -detached" in done.stdout
    assert " passed" not in done.stdout
