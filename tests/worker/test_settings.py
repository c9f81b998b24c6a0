"""Settings from the environment: defaults, parsing, and one clear line on error."""

from __future__ import annotations

import subprocess
import sys

import pytest

from leadline.config import Rate
from leadline.errors import ConfigError
from leadline.topology import DEFAULT_RETRY_DELAYS
from tests.support.procs import ROOT
from worker.crm.settings import HubSpotSettings
from worker.settings import Settings


def test_defaults_are_production_ready() -> None:
    s = Settings.from_env({})
    assert s.crm_url == "http://127.0.0.1:8090/leads"
    assert (s.crm_timeout, s.max_attempts, s.deliveries_in_flight, s.metrics_port) == (10.0, 8, 64, 9100)
    assert (s.crm, s.batch_size, s.crm_probe_interval, s.vendor) == ("webhook", 1, 30.0, None)
    assert s.retry_delays == DEFAULT_RETRY_DELAYS
    assert s.topology.work_queue == "leadline.work.v1"


def test_every_setting_is_read_from_the_environment() -> None:
    s = Settings.from_env({
        "AMQP_URL": "amqp://u:p@rabbit:5672/v", "QUEUE_PREFIX": "staging", "CRM_URL": "https://crm/x",
        "CRM_TIMEOUT": "2.5", "MAX_ATTEMPTS": "3", "RETRY_DELAYS": "5s,30s,2m", "PREFETCH": "16",
        "WORKER_METRICS_PORT": "0", "SHUTDOWN_GRACE": "20s", "LOG_LEVEL": "debug",
    })
    assert s.amqp_url == "amqp://u:p@rabbit:5672/v"
    assert s.topology.retry_queues == ("staging.retry.5s", "staging.retry.30s", "staging.retry.2m")
    assert (s.crm_timeout, s.max_attempts, s.prefetch, s.metrics_port) == (2.5, 3, 16, 0)
    assert (s.shutdown_grace, s.log_level, s.crm_url) == (20.0, "DEBUG", "https://crm/x")


@pytest.mark.parametrize(("name", "value"), [
    ("AMQP_URL", "http://nope"), ("QUEUE_PREFIX", "Bad Prefix"), ("CRM_URL", "ftp://x"),
    ("CRM_TIMEOUT", "0"), ("CRM_TIMEOUT", "soon"), ("MAX_ATTEMPTS", "0"), ("RETRY_DELAYS", "5s,x"),
    ("RETRY_DELAYS", "0s"), ("PREFETCH", "many"), ("WORKER_METRICS_PORT", "70000"),
    ("SHUTDOWN_GRACE", "-1"), ("LOG_LEVEL", "loud"),
])
def test_malformed_setting_is_refused_naming_it(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({name: value})
    assert caught.value.setting == name


@pytest.mark.parametrize("args", [[], ["dlq", "list"]])
def test_config_error_stops_the_program_with_one_line_and_exit_2(args: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "worker", *args], cwd=ROOT, capture_output=True, text=True, timeout=30,
        env={"PATH": "/usr/bin:/bin", "QUEUE_PREFIX": "NOT VALID", "AMQP_URL": "amqp://g:g@127.0.0.1:1/"},
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("worker: QUEUE_PREFIX:")


def test_a_vendor_needs_its_credentials_and_only_its_own() -> None:
    s = Settings.from_env({"CRM": "hubspot", "HUBSPOT_TOKEN": "pat-1", "SALESFORCE_API_VERSION": "junk"})
    assert (s.crm, s.batch_size, s.deliveries_in_flight, s.calls_in_flight) == ("hubspot", 100, 200, 10)
    assert isinstance(s.vendor, HubSpotSettings)
    assert s.vendor.token == "pat-1"
    s = Settings.from_env({"CRM": "Salesforce", "SALESFORCE_INSTANCE_URL": "https://acme.my.salesforce.com",
                           "SALESFORCE_TOKEN": "00D!x", "CRM_BATCH_SIZE": "50", "CRM_RATE_LIMIT": "off"})
    assert (s.crm, s.batch_size, s.crm_rate_limit) == ("salesforce", 50, "off")
    s = Settings.from_env({"CRM": "pipedrive", "PIPEDRIVE_API_URL": "https://acme.pipedrive.com",
                           "PIPEDRIVE_TOKEN": "t", "CRM_RATE_LIMIT": "10/2s", "CRM_PROBE_INTERVAL": "5s"})
    assert (s.batch_size, s.crm_probe_interval) == (1, 5.0)
    assert s.crm_rate_limit == Rate(10, 2.0)


@pytest.mark.parametrize(("env", "name"), [
    ({"CRM": "zoho"}, "CRM"),
    ({"CRM": "hubspot"}, "HUBSPOT_TOKEN"),
    ({"CRM": "hubspot", "HUBSPOT_TOKEN": "t", "HUBSPOT_API_URL": "api.hubapi.com"}, "HUBSPOT_API_URL"),
    ({"CRM": "hubspot", "HUBSPOT_TOKEN": "t", "CRM_BATCH_SIZE": "101"}, "CRM_BATCH_SIZE"),
    ({"CRM": "salesforce", "SALESFORCE_TOKEN": "t"}, "SALESFORCE_INSTANCE_URL"),
    ({"CRM": "salesforce", "SALESFORCE_INSTANCE_URL": "https://x.my.salesforce.com"}, "SALESFORCE_TOKEN"),
    ({"CRM": "salesforce", "SALESFORCE_INSTANCE_URL": "https://x", "SALESFORCE_REFRESH_TOKEN": "r"},
     "SALESFORCE_CLIENT_ID"),
    ({"CRM": "salesforce", "SALESFORCE_INSTANCE_URL": "https://x", "SALESFORCE_TOKEN": "t",
      "SALESFORCE_API_VERSION": "61"}, "SALESFORCE_API_VERSION"),
    ({"CRM": "pipedrive", "PIPEDRIVE_TOKEN": "t"}, "PIPEDRIVE_API_URL"),
    ({"CRM": "pipedrive", "PIPEDRIVE_API_URL": "https://x.pipedrive.com", "PIPEDRIVE_TOKEN": "t",
      "PIPEDRIVE_SUBMISSION_FIELD": "abc"}, "PIPEDRIVE_SUBMISSION_FIELD"),
    ({"CRM_RATE_LIMIT": "lots"}, "CRM_RATE_LIMIT"),
    ({"CRM_BATCH_SIZE": "0"}, "CRM_BATCH_SIZE"),
    ({"CRM_BATCH_SIZE": "2"}, "CRM_BATCH_SIZE"),  # a webhook takes one lead per call
    ({"CRM_PROBE_INTERVAL": "0s"}, "CRM_PROBE_INTERVAL"),
    ({"CRM_CONCURRENCY": "none"}, "CRM_CONCURRENCY"),
    ({"CRM_BATCH_LINGER": "a while"}, "CRM_BATCH_LINGER"),
])
def test_a_bad_crm_setting_is_refused_naming_it(env: dict[str, str], name: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(env)
    assert caught.value.setting == name
