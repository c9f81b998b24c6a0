"""The dead-letter console in Chromium, against the real pipeline behind it:
leads the fake CRM refuses are dead-lettered by a real worker; the console
lists them, shows one (its address masked until revealed), replays one into
the CRM through that worker once the CRM takes it, and purges the other."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import urllib.request
import uuid
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from playwright.sync_api import Browser, expect
from playwright.sync_api import Error as PlaywrightError

from leadline.topology import Topology
from tests.browser.conftest import get_json, wait_for
from tests.support.ports import free_port
from tests.support.procs import Service
from tests.worker.conftest import depth, make_lead, publish

pytestmark = [pytest.mark.browser, pytest.mark.broker, pytest.mark.slow]

T = TypeVar("T")
TOKEN = "console-test-token-" + uuid.uuid4().hex
REFUSED = "CRM refused the lead (HTTP 422)"


@dataclass
class Console:
    url: str
    crm_url: str
    topology: Topology
    leads: list[tuple[str, dict[str, object]]]


@pytest.fixture(scope="module")
def console(amqp_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    logs = tmp_path_factory.mktemp("console-logs")
    topology = Topology(prefix=f"c{uuid.uuid4().hex[:10]}")
    crm_port, metrics_port, console_port = free_port(), free_port(), free_port()
    common = {"AMQP_URL": amqp_url, "QUEUE_PREFIX": topology.prefix}
    crm = Service("fakecrm", ["-m", "worker.fakecrm", "--port", str(crm_port)], {}, logs)
    worker = Service("worker", ["-m", "worker"], {
        **common, "CRM_URL": f"http://127.0.0.1:{crm_port}/leads", "WORKER_METRICS_PORT": str(metrics_port),
        "MAX_ATTEMPTS": "2"}, logs)
    panel = Service("console", ["-m", "worker", "dlq", "serve", "--port", str(console_port)], {
        **common, "DLQ_CONSOLE_TOKEN": TOKEN, "WORKER_METRICS_URL": f"http://127.0.0.1:{metrics_port}/metrics",
        "PROXY_METRICS_URL": f"http://127.0.0.1:{free_port()}/metrics"}, logs)
    services = [crm, worker, panel]
    leads = [make_lead("reject.test") for _ in range(2)]
    try:
        crm.start().wait_http(f"http://127.0.0.1:{crm_port}/_stats")
        worker.start().wait_http(f"http://127.0.0.1:{metrics_port}/readyz")
        panel.start().wait_http(f"http://127.0.0.1:{console_port}/healthz")
        sync(publish(amqp_url, topology, leads))
        wait_for(lambda: dead(amqp_url, topology) == 2, 30, "two dead letters")
        yield Console(f"http://127.0.0.1:{console_port}", f"http://127.0.0.1:{crm_port}", topology, leads)
    finally:
        for service in reversed(services):
            service.stop()
        log = Path(panel.log_path).read_text()
        assert TOKEN not in log, "the console logged its password"
        for _, fields in leads:
            assert str(fields["email"]) not in log


def sync(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to its end from a test: Playwright's sync API holds this thread's loop."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def dead(amqp_url: str, topology: Topology) -> int:
    return sync(depth(amqp_url, topology.dead_letter_queue))


def configure_crm(crm_url: str, **changes: object) -> None:
    request = urllib.request.Request(f"{crm_url}/_config", data=json.dumps(changes).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as answer:
        assert answer.status == 200


def test_without_credentials_the_console_answers_401(browser: Browser, console: Console) -> None:
    for credentials in (None, {"username": "ops", "password": "not-the-token-at-all"}):
        context = browser.new_context(http_credentials=credentials)  # type: ignore[arg-type]
        page = context.new_page()
        try:
            # Chromium gives up the navigation after the challenge; the answer is what counts.
            with page.expect_response(lambda r: r.url.rstrip("/") == console.url) as info, \
                    contextlib.suppress(PlaywrightError):
                page.goto(console.url)
            answer = info.value
            assert answer.status == 401, credentials
            assert answer.headers["www-authenticate"].startswith('Basic realm="Leadline dead letters"')
            assert "leads" not in (answer.text() or "").lower()
        finally:
            context.close()


def test_list_show_reveal_replay_and_purge(browser: Browser, console: Console, amqp_url: str) -> None:
    context = browser.new_context(http_credentials={"username": "ops", "password": TOKEN})
    page = context.new_page()
    try:
        # list: one group with both letters, the accounting on top
        answer = page.goto(console.url)
        assert answer is not None
        assert answer.status == 200
        assert "default-src 'none'" in answer.headers["content-security-policy"]
        group = page.locator(f'section.group[data-reason="{REFUSED}"]')
        expect(group.locator(".count")).to_have_text("2")
        expect(page.locator("#accounting")).to_contain_text("dead-lettered 2")
        expect(page.locator("svg.chart rect.bar")).to_have_count(24)
        (first, first_fields), (second, _) = console.leads
        for sid, _ in console.leads:
            expect(group.locator(f'tr[data-id="{sid}"]')).to_be_visible()

        # show: the story, the address masked until revealed
        group.locator(f'a[href="/letters/{first}"]').click()
        expect(page.locator("#reason")).to_have_text(REFUSED)
        email = str(first_fields["email"])
        expect(page.locator('td[data-field="email"]')).to_have_text(re.sub(r"^(.).*@", r"\1***@", email))
        assert email not in page.content()
        page.get_by_role("button", name="Reveal the e-mail address").click()
        expect(page.locator("#revealed")).to_be_visible()
        expect(page.locator('td[data-field="email"]')).to_have_text(email)

        # replay: once the CRM takes the domain, the lead lands there through the real worker
        configure_crm(console.crm_url, reject_domain="nobody.test")
        page.get_by_role("button", name="Replay", exact=True).click()
        expect(page.locator("p.flash")).to_contain_text("1 dead letter replayed")
        stored = wait_for(lambda: [x for x in get_json(f"{console.crm_url}/_leads") if x["id"] == first],
                          30, "the replayed lead in the CRM")
        assert stored[0]["lead"]["email"] == email
        group = page.locator(f'section.group[data-reason="{REFUSED}"]')
        expect(group.locator(".count")).to_have_text("1")

        # purge: tick the other one, confirm, gone
        group.locator(f'tr[data-id="{second}"] input[type=checkbox]').check()
        group.get_by_role("button", name="Purge selected…").click()
        expect(page.locator("h1")).to_have_text("Purge 1 dead letter for good?")
        expect(page.locator(f'li[data-id="{second}"]')).to_be_visible()
        page.get_by_role("button", name="Purge 1 for good").click()
        expect(page.locator("p.flash")).to_contain_text("1 dead letter purged")
        expect(page.locator("#empty")).to_have_text("The dead-letter queue is empty.")
        assert dead(amqp_url, console.topology) == 0
        assert [lead["id"] for lead in get_json(f"{console.crm_url}/_leads")] == [first]
    finally:
        context.close()


def test_a_change_without_its_csrf_token_is_403(browser: Browser, console: Console, amqp_url: str) -> None:
    sid, fields = make_lead("reject.test")
    configure_crm(console.crm_url, reject_domain="reject.test")
    sync(publish(amqp_url, console.topology, [(sid, fields)]))
    wait_for(lambda: dead(amqp_url, console.topology) == 1, 30, "a dead letter")
    context = browser.new_context(http_credentials={"username": "ops", "password": TOKEN})
    try:
        for form in ({"id": sid}, {"id": sid, "csrf": "12345.forged"}):
            for path in ("/replay", "/purge", f"/letters/{sid}/reveal"):
                answer = context.request.post(console.url + path, form=form)
                assert answer.status == 403, (path, form)
        assert dead(amqp_url, console.topology) == 1
    finally:
        context.close()
