"""What every vendor fake shares: the window, the knobs, the record of calls,
the control endpoints, and `python -m worker.fakecrm --vendor X`."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path
from typing import Any

import pytest

from leadline.config import Rate
from tests.support.ports import free_port
from tests.support.procs import Service
from tests.worker.fakes import running
from worker import fakecrm
from worker.fakes import VENDORS
from worker.fakes.common import RollingWindow, rate, share, string_set
from worker.fakes.hubspot import STATE, HubSpotConfig, create_app

AUTH = {"Authorization": "Bearer test-token"}
PROBE = "/crm/v3/properties/contacts"
UPSERT = "/crm/v3/objects/contacts/batch/upsert"


def test_the_window_admits_count_arrivals_per_window_and_refusals_do_not_count() -> None:
    window, limit = RollingWindow(), Rate(2, 10.0)
    assert [window.admit(limit, t) for t in (0.0, 1.0, 2.0, 9.0)] == [True, True, False, False]
    assert window.remaining(limit, 9.0) == 0
    assert window.frees_in(limit, 9.0) == pytest.approx(1.0)
    # An arrival exactly one window ago still counts (the stricter reading) ...
    assert window.admit(limit, 10.0) is False
    # ... and once it is older, one place frees: the refused calls never took one.
    assert window.admit(limit, 10.5) is True
    assert window.admit(limit, 10.6) is False
    assert window.remaining(limit, 11.5) == 1


def test_the_window_applies_a_changed_limit_to_the_arrivals_it_holds() -> None:
    window = RollingWindow()
    for t in (0.0, 0.1, 0.2):
        assert window.admit(Rate(3, 1.0), t)
    assert window.admit(Rate(5, 1.0), 0.3) is True
    assert window.admit(Rate(2, 1.0), 0.4) is False


@pytest.mark.parametrize(("given", "expected"), [
    ("100/10s", Rate(100, 10.0)), ("20/2s", Rate(20, 2.0)), ("off", None), (None, None),
    (Rate(3, 1.0), Rate(3, 1.0)), ({"count": 4, "per_seconds": 0.5}, Rate(4, 0.5)),
])
def test_a_rate_knob_reads_its_spellings(given: Any, expected: Rate | None) -> None:
    assert rate("rate_limit", given) == expected


@pytest.mark.parametrize("given", ["lots", "0/10s", 5, Rate(0, 1.0), {"count": 1}])
def test_a_bad_rate_knob_is_a_value_error_naming_it(given: Any) -> None:
    with pytest.raises(ValueError, match="rate_limit"):
        rate("rate_limit", given)


def test_share_and_set_knobs_check_their_values() -> None:
    assert share("fail_rate", 1) == 1.0
    for bad in (1.5, -0.1, True, "0.5", float("nan")):
        with pytest.raises(ValueError, match="fail_rate"):
            share("fail_rate", bad)
    assert string_set("scopes", ["a", "b"]) == frozenset({"a", "b"})
    with pytest.raises(ValueError, match="scopes"):
        string_set("scopes", "a")


def test_configure_refuses_unknown_knobs_and_bad_values_and_keeps_the_old_config() -> None:
    state = create_app()[STATE]
    with pytest.raises(ValueError, match="unknown knob 'fail_rat'"):
        state.configure(fail_rat=0.5)
    with pytest.raises(ValueError, match="latency_ms"):
        state.configure(latency_ms=-1)
    with pytest.raises(ValueError, match="token"):
        state.configure(token="")
    with pytest.raises(ValueError, match="timeout_rate"):
        create_app(HubSpotConfig(timeout_rate=2.0))
    assert state.config == HubSpotConfig()


@pytest.mark.parametrize(("vendor", "default"), [
    ("hubspot", Rate(100, 10.0)), ("pipedrive", Rate(20, 2.0)), ("salesforce", None)])
def test_the_default_rate_limit_is_the_vendors_lowest_plan(vendor: str, default: Rate | None) -> None:
    module = VENDORS[vendor]
    assert module.create_app()[module.STATE].config.rate_limit == default


async def test_control_endpoints_need_no_auth_are_never_limited_or_down_and_not_recorded() -> None:
    async with running(create_app(HubSpotConfig(rate_limit=Rate(1, 60.0), down=True)), STATE, AUTH) as fake:
        for _ in range(3):
            for path in ("/_state", "/_calls", "/_stats", "/_config"):
                assert (await fake.control("GET", path)).status == 200
        assert fake.state.calls == []
        assert (await fake.call("GET", PROBE)).status == 503
        assert len(fake.state.calls) == 1


async def test_config_round_trips_through_post_config_as_json() -> None:
    async with running(create_app(), STATE, AUTH) as fake:
        changed = await fake.control("POST", "/_config", {"rate_limit": "5/2s", "fail_rate": 0.25,
                                                          "conflict_emails": ["c@example.com"]})
        assert changed.status == 200
        assert changed.body["rate_limit"] == "5/2s"
        assert changed.body["conflict_emails"] == ["c@example.com"]
        assert fake.state.config.rate_limit == Rate(5, 2.0)
        assert (await fake.control("POST", "/_config", {"rate_limit": None})).body["rate_limit"] is None
        # What GET /_config prints, POST /_config takes back unchanged.
        current = (await fake.control("GET", "/_config")).body
        assert (await fake.control("POST", "/_config", current)).body == current
        for bad in ({"fail_rate": 3}, {"nope": 1}, [1, 2], {"rate_limit": "fast"}):
            refused = await fake.control("POST", "/_config", bad)
            assert refused.status == 400
            assert refused.body["error"]
        assert fake.state.config.fail_rate == 0.25


async def test_every_api_call_is_recorded_with_its_times_status_and_records() -> None:
    async with running(create_app(HubSpotConfig(latency_ms=150)), STATE, AUTH) as fake:
        batch = {"inputs": [{"idProperty": "email", "id": f"p{i}@example.com", "properties": {}}
                            for i in range(3)]}
        assert (await fake.call("POST", UPSERT, json=batch)).status == 200
        assert (await fake.call("GET", PROBE, auth=False)).status == 401
        upsert, refused = fake.state.calls
        assert (upsert.method, upsert.path, upsert.status, upsert.records) == ("POST", UPSERT, 200, 3)
        assert (refused.status, refused.records) == (401, 0)
        assert upsert.finished is not None
        assert upsert.finished - upsert.arrived >= 0.14
        calls = (await fake.control("GET", "/_calls")).body
        assert [c["status"] for c in calls] == [200, 401]
        stats = (await fake.control("GET", "/_stats")).body
        assert (stats["requests"], stats["records_sent"], stats["by_status"]) == (2, 3, {"200": 1, "401": 1})


async def test_a_refused_batch_still_counts_the_records_it_carried() -> None:
    async with running(create_app(HubSpotConfig(rate_limit=Rate(1, 60.0))), STATE, AUTH) as fake:
        def batch(n: int) -> dict[str, Any]:
            return {"inputs": [{"idProperty": "email", "id": f"p{i}@example.com", "properties": {}}
                               for i in range(n)]}

        assert (await fake.call("POST", UPSERT, json=batch(3))).status == 200
        assert (await fake.call("POST", UPSERT, json=batch(2))).status == 429
        assert (await fake.call("POST", UPSERT, json=batch(4), auth=False)).status == 401
        assert [(c.status, c.records) for c in fake.state.calls] == [(200, 3), (429, 2), (401, 4)]
        assert fake.state.stats.records_sent == 9


async def test_reset_clears_records_calls_and_stats_but_keeps_the_config() -> None:
    async with running(create_app(HubSpotConfig(latency_ms=1)), STATE, AUTH) as fake:
        batch = {"inputs": [{"idProperty": "email", "id": "a@example.com", "properties": {}}]}
        await fake.call("POST", UPSERT, json=batch)
        assert (await fake.control("POST", "/_reset")).status == 200
        assert (await fake.control("GET", "/_state")).body["contacts"] == []
        assert (await fake.control("GET", "/_calls")).body == []
        stats = (await fake.control("GET", "/_stats")).body
        assert (stats["requests"], stats["created"], stats["daily_used"]) == (0, {}, 0)
        assert fake.state.config.latency_ms == 1


PROBES = {"hubspot": ("/crm/v3/properties/contacts", {"Authorization": "Bearer s3cret"}),
          "salesforce": ("/services/data/v61.0/sobjects/Lead/describe", {"Authorization": "Bearer s3cret"}),
          "pipedrive": ("/api/v1/users/me", {"x-api-token": "s3cret"})}


@pytest.mark.parametrize("vendor", sorted(VENDORS))
def test_the_command_line_serves_a_vendor_fake_with_its_knobs(vendor: str, tmp_path: Path) -> None:
    port = free_port()
    service = Service(f"fake-{vendor}", ["-m", "worker.fakecrm", "--vendor", vendor, "--port", str(port),
                                         "--token", "s3cret", "--rate-limit", "50/10s", "--latency-ms", "1",
                                         "--seed", "3"], {}, tmp_path)
    service.start()
    try:
        base = f"http://127.0.0.1:{port}"
        service.wait_http(f"{base}/_stats")
        path, headers = PROBES[vendor]
        service.wait_http(f"{base}{path}", expect=401)  # without the token
        probe = subprocess.run(
            ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
             *[arg for k, v in headers.items() for arg in ("-H", f"{k}: {v}")], f"{base}{path}"],
            capture_output=True, text=True, timeout=10, check=True)
        assert probe.stdout == "200"
        config = subprocess.run(["curl", "-s", f"{base}/_config"], capture_output=True, text=True,
                                timeout=10, check=True)
        assert '"rate_limit":"50/10s"' in config.stdout
        assert '"token":"s3cret"' in config.stdout
    finally:
        assert service.stop() == 0
    assert f"fake {vendor} on http://127.0.0.1:{port}" in service.output()


@pytest.mark.parametrize(("args", "says"), [
    (["--vendor", "hubspot", "--rate-limit", "fast"], "--rate-limit"),
    (["--vendor", "hubspot", "--latency-ms", "-5"], "latency_ms"),
    (["--vendor", "nowhere"], "--vendor"),
    (["--token", "x"], "--vendor"),
])
def test_the_command_line_refuses_bad_options_with_exit_2(
        args: list[str], says: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        fakecrm.main(["--port", str(free_port()), *args])
    assert exited.value.code == 2
    assert says in capsys.readouterr().err


async def test_aiohttps_own_refusals_come_in_the_vendors_body() -> None:
    async with running(create_app(), STATE, AUTH) as fake:
        unknown = await fake.call("GET", "/crm/v3/objects/deals")
        assert (unknown.status, unknown.body["category"]) == (404, "OBJECT_NOT_FOUND")
        wrong_method = await fake.call("DELETE", PROBE)
        assert (wrong_method.status, wrong_method.body["status"]) == (405, "error")
        huge = await fake.call("POST", UPSERT, data=io.BytesIO(b"x" * (5 * 1024 * 1024)),
                               headers={"Content-Type": "application/json"})
        assert (huge.status, huge.body["category"]) == (413, "VALIDATION_ERROR")
