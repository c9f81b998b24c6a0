"""Settings from the environment, and `python -m proxy` run for real: a bad
setting is one line and exit 2; a good start logs one JSON line per request."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from leadline.config import Rate
from leadline.errors import ConfigError
from leadline.topology import Topology
from proxy.settings import Settings
from tests.support.ports import free_port
from tests.support.procs import ROOT, Service


def test_defaults_match_the_design() -> None:
    settings = Settings.from_env({})
    assert settings.amqp_url == "amqp://guest:guest@127.0.0.1:5672/"
    assert settings.allowed_origins == {"http://127.0.0.1:8000", "http://localhost:8000"}
    assert settings.rate_limit == Rate(30, 60.0)
    assert settings.max_body_bytes == 16384
    assert settings.thanks_path == "/thanks/{form}/"
    assert (settings.host, settings.port) == ("127.0.0.1", 8080)
    assert (settings.spam_stamp, settings.spam_stamp_bits) == ("flag", 16)
    assert settings.spam_stamp_max_age == 30 * 86400


def test_stamp_settings_take_modes_bits_and_durations() -> None:
    settings = Settings.from_env({"SPAM_STAMP": "Require", "SPAM_STAMP_BITS": "20",
                                  "SPAM_STAMP_MAX_AGE": "12h"})
    assert (settings.spam_stamp, settings.spam_stamp_bits, settings.spam_stamp_max_age) == (
        "require", 20, 12 * 3600)
    assert Settings.from_env({"SPAM_STAMP": "off", "SPAM_STAMP_BITS": "0"}).spam_stamp_bits == 0


def test_rate_limit_off_disables_it() -> None:
    assert Settings.from_env({"RATE_LIMIT": "off"}).rate_limit is None


@pytest.mark.parametrize(("name", "value"), [
    ("AMQP_URL", "http://broker"), ("QUEUE_PREFIX", "Bad Prefix"), ("ALLOWED_ORIGINS", "example.com"),
    ("RATE_LIMIT", "lots"), ("TRUSTED_PROXIES", "10.0.0.300"), ("MAX_BODY_BYTES", "big"),
    ("PUBLISH_TIMEOUT", "0s"), ("THANKS_PATH", "//evil.example/"), ("THANKS_PATH", "/t/{name}/"),
    ("THANKS_PATH", "https://evil.example/"), ("LOG_LEVEL", "loud"), ("PROXY_PORT", "70000"),
    ("SPAM_STAMP", "strict"), ("SPAM_STAMP_BITS", "33"), ("SPAM_STAMP_BITS", "-1"),
    ("SPAM_STAMP_BITS", "many"), ("SPAM_STAMP_MAX_AGE", "0s"), ("SPAM_STAMP_MAX_AGE", "a month"),
    ("THANKS_PATH", "/t/{form}/{language}/"),
])
def test_a_bad_setting_raises_a_config_error_naming_it(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({name: value})
    assert caught.value.setting == name


@pytest.mark.parametrize(("env", "args", "named"), [
    ({"RATE_LIMIT": "lots"}, [], "RATE_LIMIT"),
    ({"AMQP_URL": "nope"}, [], "AMQP_URL"),
    ({"SPAM_STAMP_BITS": "99"}, [], "SPAM_STAMP_BITS"),
    ({}, ["--port", "http"], "--port"),
])
def test_python_m_proxy_with_a_bad_setting_prints_one_line_and_exits_2(
        env: dict[str, str], args: list[str], named: str) -> None:
    done = subprocess.run([sys.executable, "-m", "proxy", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=30, env={"PATH": "/usr/bin:/bin", **env}, check=False)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert named in lines[0]
    assert "Traceback" not in done.stderr


@pytest.mark.broker
def test_python_m_proxy_serves_and_logs_one_json_line_per_request_without_the_email(
        amqp_url: str, topology: Topology, tmp_path: Path) -> None:
    port = free_port()
    service = Service("proxy", ["-m", "proxy", "--port", str(port)], {
        "AMQP_URL": amqp_url, "QUEUE_PREFIX": topology.prefix, "LOG_LEVEL": "info"}, tmp_path).start()
    try:
        service.wait_http(f"http://127.0.0.1:{port}/readyz")
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/forms/lead", method="POST",
            data=b'{"name":"Ada","email":"ada.lovelace@example.com","consent":true}',
            headers={"Content-Type": "application/json", "Idempotency-Key": "lead-0001-abcd"})
        with urllib.request.urlopen(request, timeout=5) as answer:
            assert answer.status == 202
    finally:
        assert service.stop() == 0
    output = service.output()
    assert "ada.lovelace@example.com" not in output
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    [line] = [entry for entry in lines if entry.get("path") == "/api/forms/lead"]
    assert line["id"] == "lead-0001-abcd"
    assert line["status"] == 202
    assert line["form"] == "lead"
    assert len(line["trace_id"]) == 32
    assert line["duration_ms"] >= 0
