"""The dead-letter console (`python -m worker dlq serve`): the real app on the real
broker, through aiohttp's test client; its pure parts as tables. Chromium drives
it in tests/browser/test_dlq_console.py."""

from __future__ import annotations

import base64
import re
import subprocess
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from leadline.topology import Topology
from tests.support.procs import ROOT
from tests.worker.conftest import dead_letters, depth
from tests.worker.test_dlq_process import NOW, letter, seed
from worker.dlq_console import guard
from worker.dlq_console.app import create_app
from worker.dlq_console.letters import grouped, hourly, lead_data, mask_text, reason_of
from worker.dlq_console.settings import ConsoleSettings
from worker.dlq_console.state import BROKER

TOKEN = "correct-horse-battery-staple-42"
CHALLENGE = 'Basic realm="Leadline dead letters", charset="UTF-8"'
Client = TestClient[web.Request, web.Application]
AiohttpClient = Callable[[web.Application], Awaitable[Client]]


def auth(password: str = TOKEN, user: str = "ops") -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.fixture
async def console(aiohttp_client: AiohttpClient, amqp_url: str, topology: Topology) -> Client:
    settings = ConsoleSettings.from_env({"DLQ_CONSOLE_TOKEN": TOKEN, "RETRY_DELAYS": "500ms,1s",
                                         "PROXY_METRICS_URL": "http://127.0.0.1:1/metrics",
                                         "WORKER_METRICS_URL": "http://127.0.0.1:1/metrics"},
                                        amqp_url=amqp_url, prefix=topology.prefix)
    app = create_app(settings)
    client = await aiohttp_client(app)
    assert await app[BROKER].wait_connected(10)
    return client


async def page(client: Client, path: str = "/") -> str:
    answer = await client.get(path, headers=auth())
    assert answer.status == 200, await answer.text()
    return await answer.text()


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "the page carries no CSRF token"
    return match.group(1)


# -- who may look, who may change -----------------------------------------------

async def test_every_page_needs_the_token_as_the_basic_password(console: Client) -> None:
    for path in ("/", "/letters/x", "/static/console.css", "/no-such-page"):
        for headers in ({}, auth("wrong-password-of-some-length"), {"Authorization": "Bearer " + TOKEN},
                        {"Authorization": "Basic !!!"}):
            answer = await console.get(path, headers=headers)
            assert answer.status == 401, (path, headers)
            assert answer.headers["WWW-Authenticate"] == CHALLENGE
    assert (await console.get("/", headers=auth(user="anyone"))).status == 200
    health = await console.get("/healthz")
    assert (health.status, await health.json()) == (200, {"status": "ok", "broker": "connected"})


async def test_a_change_without_its_csrf_token_is_refused(console: Client, amqp_url: str,
                                                          topology: Topology) -> None:
    [sid] = await seed(amqp_url, topology, 1, kind="permanent", status=422)
    html = await page(console)
    for data in ({"id": sid}, {"id": sid, "csrf": ""}, {"id": sid, "csrf": "1.forged"},
                 {"id": sid, "csrf": guard.csrf_token(b"another secret", "ops", NOW.timestamp())}):
        answer = await console.post("/replay", data=data, headers=auth())
        assert answer.status == 403, data
        assert "CSRF" in await answer.text()
    other_user = await console.post("/replay", data={"id": sid, "csrf": csrf_of(html)},
                                    headers=auth(user="someone-else"))
    assert other_user.status == 403  # a token is the user's own
    cross_site = await console.post("/replay", data={"id": sid, "csrf": csrf_of(html)},
                                    headers={**auth(), "Origin": "https://evil.example"})
    assert cross_site.status == 403
    assert await depth(amqp_url, topology.dead_letter_queue) == 1  # nothing changed


async def test_every_answer_carries_the_security_headers(console: Client) -> None:
    for path, headers in (("/", auth()), ("/", {}), ("/healthz", {}), ("/nowhere", auth())):
        answer = await console.get(path, headers=headers)
        csp = answer.headers["Content-Security-Policy"]
        for directive in ("default-src 'none'", "frame-ancestors 'none'", "form-action 'self'"):
            assert directive in csp
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
        assert answer.headers["X-Frame-Options"] == "DENY"
        assert answer.headers["Referrer-Policy"] == "no-referrer"
        assert answer.headers["Cache-Control"] == "no-store"


# -- what it shows ------------------------------------------------------------------

async def test_index_groups_letters_by_reason_with_counts(console: Client, amqp_url: str,
                                                          topology: Topology) -> None:
    refused = await seed(amqp_url, topology, 3, kind="permanent", status=422)
    outage = await seed(amqp_url, topology, 2, status=503)
    html = await page(console)
    groups = re.findall(r'data-reason="([^"]+)">\s*<h3><span class="count" data-count="(\d+)"', html)
    assert groups == [("CRM refused the lead (HTTP 422)", "3"),
                      ("CRM unavailable until the attempts ran out (HTTP503)", "2")]
    for sid in refused + outage:
        assert f'data-id="{sid}"' in html
    assert "5 dead letters in" in html
    assert "(the proxy's or the worker's metrics are unreachable" in html
    assert "+ dead-lettered <b>5</b>" in html
    assert "@example.com" not in html  # no address on the listing
    assert await depth(amqp_url, topology.dead_letter_queue) == 5  # looking took nothing


async def test_a_letter_shows_its_story_and_masks_the_address_until_revealed(
        console: Client, amqp_url: str, topology: Topology) -> None:
    [sid] = await seed(amqp_url, topology, 1, kind="permanent", status=422)
    [dead] = await dead_letters(amqp_url, topology)
    email = orjson.loads(dead.body)["email"]
    html = await page(console, f"/letters/{sid}")
    assert "CRM refused the lead (HTTP 422)" in html
    assert 'data-field="email">a***@example.com<' in html
    assert email not in html
    assert 'data-field="name">Ada Lovelace<' in html
    revealed = await console.post(f"/letters/{sid}/reveal", data={"csrf": csrf_of(html)}, headers=auth())
    assert revealed.status == 200
    assert f'data-field="email">{email}<' in await revealed.text()
    missing = await console.get("/letters/no-such-id", headers=auth())
    assert missing.status == 404
    assert "no dead letter with the id" in await missing.text()


async def test_replay_of_one_a_selection_and_a_group_reaches_the_work_queue(
        console: Client, amqp_url: str, topology: Topology) -> None:
    refused = await seed(amqp_url, topology, 3, kind="permanent", status=422)
    outage = await seed(amqp_url, topology, 3, status=503)
    csrf = csrf_of(await page(console))
    one = await console.post("/replay", data={"id": refused[0], "csrf": csrf}, headers=auth(),
                             allow_redirects=False)
    assert (one.status, one.headers["Location"]) == (303, "/?done=replayed&n=1&missing=0")
    selection = await console.post("/replay", data=[("id", refused[1]), ("id", outage[0]), ("id", "gone"),
                                                    ("csrf", csrf)], headers=auth(), allow_redirects=False)
    assert selection.headers["Location"] == "/?done=replayed&n=2&missing=1"
    outage_reason = "CRM unavailable until the attempts ran out (HTTP503)"
    group = await console.post("/replay", data={"reason": outage_reason, "csrf": csrf}, headers=auth(),
                               allow_redirects=False)
    assert group.headers["Location"] == "/?done=replayed&n=2&missing=0"
    assert [lt.id for lt in await dead_letters(amqp_url, topology)] == [refused[2]]
    assert await depth(amqp_url, topology.work_queue) == 5
    flash = await page(console, "/?done=replayed&n=2&missing=1")
    assert "2 dead letters replayed: back on the work queue" in flash
    assert "1 of those asked for were no longer in the queue" in flash


async def test_purge_asks_first_and_then_removes_exactly_the_letters_it_named(
        console: Client, amqp_url: str, topology: Topology) -> None:
    refused = await seed(amqp_url, topology, 2, kind="permanent", status=422)
    csrf = csrf_of(await page(console))
    ask = await console.post("/purge", data={"reason": "CRM refused the lead (HTTP 422)", "csrf": csrf},
                             headers=auth())
    assert ask.status == 200
    confirm = await ask.text()
    assert "Purge 2 dead letters for good?" in confirm
    assert await depth(amqp_url, topology.dead_letter_queue) == 2  # asking removed nothing
    late = await seed(amqp_url, topology, 1, kind="permanent", status=422)  # joins the group meanwhile
    ids = re.findall(r'<input type="hidden" name="id" value="([^"]+)">', confirm)
    assert sorted(ids) == sorted(refused)
    form = [("confirm", "yes"), ("csrf", csrf_of(confirm)), *(("id", i) for i in ids)]
    done = await console.post("/purge", data=form, headers=auth(), allow_redirects=False)
    assert done.headers["Location"] == "/?done=purged&n=2&missing=0"
    assert [lt.id for lt in await dead_letters(amqp_url, topology)] == late


async def test_nothing_selected_is_a_clear_400(console: Client, amqp_url: str, topology: Topology) -> None:
    await seed(amqp_url, topology, 1)
    csrf = csrf_of(await page(console))
    answer = await console.post("/replay", data={"csrf": csrf}, headers=auth())
    assert answer.status == 400
    assert "Nothing selected" in await answer.text()


async def test_without_rabbitmq_a_page_says_so_with_503(aiohttp_client: AiohttpClient,
                                                        topology: Topology) -> None:
    settings = ConsoleSettings.from_env({"DLQ_CONSOLE_TOKEN": TOKEN}, amqp_url="amqp://guest:guest@127.0.0.1:1/",
                                        prefix=topology.prefix)
    client = await aiohttp_client(create_app(settings))
    answer = await client.get("/", headers=auth())
    assert answer.status == 503
    assert answer.headers["Retry-After"] == "5"
    assert "RabbitMQ is unreachable" in await answer.text()
    health = await client.get("/healthz")
    assert (await health.json())["broker"] == "unreachable"


def test_console_without_a_token_refuses_to_start_with_one_line_and_exit_2() -> None:
    for env in ({}, {"DLQ_CONSOLE_TOKEN": "short"}):
        done = subprocess.run([sys.executable, "-m", "worker", "dlq", "serve", "--port", "0"], cwd=ROOT,
                              capture_output=True, text=True, timeout=60, check=False,
                              env={"PATH": "/usr/bin:/bin", **env})
        assert done.returncode == 2, done.stderr
        [line] = done.stderr.strip().splitlines()
        assert line.startswith("worker: DLQ_CONSOLE_TOKEN: ")


# -- the pure parts -----------------------------------------------------------------

def test_basic_auth_accepts_any_user_with_the_token_and_nothing_else() -> None:
    def header(text: str) -> str:
        return "Basic " + base64.b64encode(text.encode()).decode()

    assert guard.basic_user(header(f"ops:{TOKEN}"), TOKEN) == "ops"
    assert guard.basic_user(header(f":{TOKEN}"), TOKEN) == ""
    assert guard.basic_user(header(f"ops:{TOKEN}:x"), TOKEN) is None
    assert guard.basic_user(header(TOKEN), TOKEN) is None
    assert guard.basic_user(header(f"ops:{TOKEN[:-1]}"), TOKEN) is None
    assert guard.basic_user(f"basic {base64.b64encode(f'a:{TOKEN}'.encode()).decode()}", TOKEN) == "a"
    assert guard.basic_user(None, TOKEN) is None


def test_csrf_tokens_are_the_users_own_and_expire() -> None:
    secret = guard.new_secret()
    now = NOW.timestamp()
    token = guard.csrf_token(secret, "ops", now)
    assert guard.csrf_valid(secret, "ops", token, now + 60)
    assert not guard.csrf_valid(secret, "ops", token, now + guard.CSRF_MAX_AGE + 1)
    assert not guard.csrf_valid(secret, "other", token, now)
    assert not guard.csrf_valid(guard.new_secret(), "ops", token, now)
    assert not guard.csrf_valid(secret, "ops", token.replace(".", ".x"), now)
    assert not guard.csrf_valid(secret, "ops", "", now)


@pytest.mark.parametrize(("origin", "site", "ok"), [
    (None, None, True), ("http://console:9180", "same-origin", True), ("http://console:9180", None, True),
    ("https://console:9180", None, True),  # behind a TLS-terminating proxy
    ("null", "same-origin", True),  # Chromium's Origin under Referrer-Policy: no-referrer
    ("null", None, True), ("https://evil.example", None, False),
    ("https://evil.example", "same-origin", True),  # the browser's word wins
    (None, "cross-site", False), (None, "same-site", False), ("http://console:9180", "none", False),
])
def test_changes_come_from_the_consoles_own_pages(origin: str | None, site: str | None, ok: bool) -> None:
    assert guard.same_origin(origin, site, "console:9180") is ok


@pytest.mark.parametrize(("text", "masked"), [
    ("ada.lovelace@example.com", "a***@example.com"),
    ("write to Ada <ada@example.com>, or bob@b.org.", "write to Ada <a***@example.com>, or b***@b.org."),
    ("no address here", "no address here"),
])
def test_mask_text_masks_every_address(text: str, masked: str) -> None:
    assert mask_text(text) == masked


def test_lead_data_masks_addresses_in_any_field_and_raw_bodies() -> None:
    lead = letter(kind="permanent", status=422)
    shown = lead_data(lead, reveal=False)
    fields = dict(shown.fields)
    assert fields["email"] == "a***@example.com"
    assert (fields["name"], fields["consent"], shown.masked) == ("Ada Lovelace", "true", True)
    assert dict(lead_data(lead, reveal=True).fields)["email"] == orjson.loads(lead.body)["email"]
    raw = type(lead)(**{**_fields(lead), "body": b"not json from eve@example.com"})
    assert lead_data(raw, reveal=False).raw == "not json from e***@example.com"


def _fields(lead: Any) -> dict[str, Any]:
    return {name: getattr(lead, name) for name in lead.__slots__}


def test_groups_are_biggest_first_with_the_reports_words() -> None:
    letters = [letter(kind="permanent", status=422), letter(status=503), letter(status=503),
               letter(kind="poison", status=None, error_class="InvalidLead")]
    assert [(g.reason, g.count) for g in grouped(letters)] == [
        ("CRM unavailable until the attempts ran out (HTTP503)", 2),
        ("CRM refused the lead (HTTP 422)", 1), ("unreadable message (InvalidLead)", 1)]
    assert reason_of(letters[3]) == "unreadable message (InvalidLead)"


def test_hourly_chart_counts_by_the_hour_of_death() -> None:
    now = datetime(2025, 1, 6, 12, 30, tzinfo=UTC)
    letters = ([letter(dead_at=now - timedelta(minutes=10)) for _ in range(4)]
               + [letter(dead_at=now - timedelta(hours=3, minutes=5))]
               + [letter(dead_at=now - timedelta(days=2))])
    chart = hourly(letters, now)
    assert len(chart.bars) == 24
    assert chart.bars[-1].label == "2025-01-06 12:00 UTC"
    assert [b.count for b in chart.bars][-4:] == [1, 0, 0, 4]
    assert (chart.peak, chart.older, chart.unknown) == (4, 1, 0)
    tallest = chart.bars[-1]
    assert (tallest.height, tallest.y) == (90, 14)
    assert chart.bars[-4].height == round(90 / 4)
    assert [b.tick for b in chart.bars if b.tick] == ["13:00", "19:00", "01:00", "07:00"]
    assert all(b.height == 0 for b in chart.bars[:-4])
