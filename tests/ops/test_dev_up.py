"""`./dev up` as a newcomer uses it: everything starts, a lead goes from the
proxy to the fake CRM, `./dev status` balances, Ctrl-C leaves nothing behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from devtools import status
from leadline.queuestats import QueueStat
from tests.support.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.broker, pytest.mark.slow]


def _wait_for_line(proc: subprocess.Popen[str], text: str, timeout: float) -> str:
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            break
        seen.append(line)
        if text in line:
            return "".join(seen)
    raise AssertionError(f"never saw {text!r}:\n{''.join(seen)[-3000:]}")


def _processes_with_env(marker: bytes) -> list[int]:
    """Pids whose environment holds `marker`: what `./dev up` started inherits it."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker in (entry / "environ").read_bytes().split(b"\0"):
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def test_dev_up_runs_the_pipeline_and_ctrl_c_stops_every_child(amqp_url: str, tmp_path: Path) -> None:
    ports = {"SITE_PORT": free_port(), "PROXY_PORT": free_port(), "CRM_PORT": free_port(),
             "WORKER_METRICS_PORT": free_port()}
    prefix = f"up{os.getpid()}"
    env = {**os.environ, "AMQP_URL": amqp_url, "QUEUE_PREFIX": prefix,
           **{k: str(v) for k, v in ports.items()}}
    proc = subprocess.Popen([sys.executable, "-m", "devtools.devstack"], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        banner = _wait_for_line(proc, "Ctrl-C stops everything", timeout=60)
        assert f"http://127.0.0.1:{ports['SITE_PORT']}/" in banner
        with urllib.request.urlopen(f"http://127.0.0.1:{ports['SITE_PORT']}/") as page:
            assert b'data-state="idle"' in page.read()

        request = urllib.request.Request(
            f"http://127.0.0.1:{ports['PROXY_PORT']}/api/forms/lead", method="POST",
            data=json.dumps({"name": "Ada", "email": "ada@example.com", "consent": True}).encode(),
            headers={"Content-Type": "application/json",
                     "Origin": f"http://127.0.0.1:{ports['SITE_PORT']}"})
        with urllib.request.urlopen(request) as answer:
            assert answer.status == 202
            submission = json.load(answer)["id"]
        stored: list[dict[str, object]] = []
        for _ in range(100):
            with urllib.request.urlopen(f"http://127.0.0.1:{ports['CRM_PORT']}/_leads") as crm:
                stored = json.load(crm)
            if stored:
                break
            time.sleep(0.1)
        assert [lead["id"] for lead in stored] == [submission]
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    assert "up: stopped" in out
    assert proc.returncode == 0
    assert _processes_with_env(f"QUEUE_PREFIX={prefix}".encode()) == [], "orphans left behind"
    for port in ports.values():
        with pytest.raises(urllib.error.URLError):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1)


def test_dev_up_without_a_broker_says_so_in_one_line() -> None:
    env = {**os.environ, "AMQP_URL": f"amqp://guest:guest@127.0.0.1:{free_port()}/"}
    done = subprocess.run([sys.executable, "-m", "devtools.devstack", "--no-build"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "no RabbitMQ at" in lines[0]
    assert "rabbitmq-server" in lines[0]


def test_status_reads_the_balance_from_depths_and_counters() -> None:
    stats = [QueueStat("p.work.v1", "work", 2, 1), QueueStat("p.retry.30s", "retry", 1, 0),
             QueueStat("p.dead.v1", "dead", 1, 0)]
    proxy = 'leadline_proxy_accepted_total{form="lead"} 10.0\n'
    worker = "leadline_worker_synced_total 6.0\n"
    text = status.render(stats, proxy, worker)
    assert "accepted 10 = synced 6 + queued or retrying 3 + dead-lettered 1" in text
    assert "balanced" in text
    assert "1 dead letter(s)" in text
    off = status.render(stats, proxy, "leadline_worker_synced_total 5.0\n")
    assert "off by +1" in off
    idle = status.render([QueueStat("p.work.v1", "work", 0, 0)], None, None)
    assert "no consumer on the work queue" in idle
    assert "metrics unreachable" in idle


def test_status_counts_the_leads_inside_batch_messages() -> None:
    stats = [QueueStat("p.work.v1", "work", 3, 0), QueueStat("p.dead.v1", "dead", 0, 0)]
    # 5 confirmed messages held 64 leads; the worker acked 2 batches of 20 and synced those 40
    proxy = ('leadline_proxy_accepted_total{form="lead"} 64.0\n'
             "leadline_proxy_batch_size_count 5.0\nleadline_proxy_batch_size_sum 64.0\n")
    worker = ("leadline_worker_synced_total 40.0\nleadline_worker_batch_messages_acked_total 2.0\n"
              "leadline_worker_batch_message_leads_acked_total 40.0\n")
    text = status.render(stats, proxy, worker)
    assert "accepted 64 = synced 40 + queued or retrying 24 (in 3 messages) + dead-lettered 0" in text
    assert "balanced" in text


def test_status_says_when_the_worker_waits_out_a_crm_outage() -> None:
    stats = [QueueStat("p.work.v1", "work", 40, 0), QueueStat("p.dead.v1", "dead", 0, 0)]
    worker = ('leadline_worker_synced_total 6.0\nleadline_crm_paused{reason="down"} 0.0\n'
              'leadline_crm_paused{reason="credentials"} 1.0\n')
    text = status.render(stats, 'leadline_proxy_accepted_total{form="lead"} 46.0\n', worker)
    assert "CRM PAUSED (credentials)" in text
    assert "no consumer on the work queue" not in text  # paused on purpose, not missing
    assert "CRM PAUSED" not in status.render(stats, None, "leadline_crm_paused{reason=\"down\"} 0.0\n")
