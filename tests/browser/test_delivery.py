"""The page against the real pipeline: static site -> proxy -> RabbitMQ ->
worker -> fake CRM, with the proxy stopped and started as the story needs."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import pytest
from playwright.sync_api import Browser, Page, Playwright, expect

from tests.browser.conftest import CHROMIUM_ARGS, Stack, StaticSite, asset, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.broker, pytest.mark.slow]

FORM = "form[data-leadform=lead]"


@pytest.fixture
def proxy_up(stack: Stack) -> Stack:
    if stack.proxy is None:
        stack.proxy_up()
    return stack


@pytest.fixture
def proxy_down(stack: Stack) -> Iterator[Stack]:
    stack.proxy_down()
    yield stack
    stack.proxy_down()


def fill(page: Page, email: str | None = None, name: str = "Ada Lovelace") -> str:
    email = email or f"ada+{uuid.uuid4().hex[:12]}@example.com"
    page.fill(f"{FORM} [name=name]", name)
    page.fill(f"{FORM} [name=email]", email)
    page.fill(f"{FORM} [name=message]", "We would like a demo.")
    page.check(f"{FORM} [name=consent]")
    return email


def delivered_once(stack: Stack, email: str) -> dict[str, object]:
    leads = wait_for(lambda: stack.leads(email), timeout=30, what=f"{email} in the CRM")
    time.sleep(1.0)  # room for a duplicate to show up, if there were one
    leads = stack.leads(email)
    assert len(leads) == 1, leads
    calls = [c for c in stack.calls() if c["id"] == leads[0]["id"]]
    assert len(calls) == 1, f"the CRM was called {len(calls)} times for one submission"
    return leads[0]


def test_submit_while_proxy_down_thanks_at_once_then_delivers_once(browser: Browser, site_url: str,
                                                                    proxy_down: Stack) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.goto(site_url)
    email = fill(page)
    page.click(f"{FORM} button[type=submit]")
    form = page.locator(FORM)
    expect(form).to_have_attribute("data-state", "queued", timeout=1000)
    expect(page.get_by_role("status")).to_contain_text("Thank you")
    expect(page.get_by_role("status")).to_contain_text("saved on this device")  # a send failed
    proxy_down.proxy_up()
    lead = delivered_once(proxy_down, email)
    assert lead["lead"] == {"name": "Ada Lovelace", "email": email, "message": "We would like a demo.",
                            "consent": True} or lead["lead"]["email"] == email
    expect(form).to_have_attribute("data-state", "sent", timeout=10_000)
    expect(page.get_by_role("status")).to_contain_text("reached our team")
    context.close()


@pytest.mark.parametrize("service_workers", ["block", "allow"])
def test_browser_closed_while_queued_delivers_once_after_reopening(
        playwright: Playwright, chromium: str, site_url: str, proxy_down: Stack, tmp_path: Path,
        service_workers: Literal["block", "allow"]) -> None:
    """block: the page's own path (a browser without Background Sync). allow: Chromium
    fires the pending sync as it starts again, racing the reopened page; one of them
    sends it, once."""
    def open_browser() -> tuple[object, Page]:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=chromium, args=CHROMIUM_ARGS,
            service_workers=service_workers)
        return context, context.pages[0] if context.pages else context.new_page()

    context, page = open_browser()
    page.goto(site_url)
    email = fill(page)
    page.click(f"{FORM} button[type=submit]")
    expect(page.locator(FORM)).to_have_attribute("data-state", "queued", timeout=1000)
    context.close()  # type: ignore[attr-defined]
    assert proxy_down.leads(email) == []

    proxy_down.proxy_up()
    context, page = open_browser()
    page.goto(site_url)
    delivered_once(proxy_down, email)
    form = page.locator(FORM)
    if service_workers == "block":
        expect(form).to_have_attribute("data-state", "sent", timeout=10_000)
    else:
        # Sent by the page, or by the worker: the page hears of it (a broadcast) and
        # says so, or the entry was gone before the page looked (nothing to say).
        expect(form).to_have_attribute("data-state", re.compile("^(sent|idle)$"), timeout=10_000)
    assert page.evaluate("""() => new Promise((ok, no) => {
        const open = indexedDB.open('leadline');
        open.onerror = no;
        open.onsuccess = () => {
            const count = open.result.transaction('outbox').objectStore('outbox').count();
            count.onsuccess = () => ok(count.result);
        };
    })""") == 0, "the outbox still holds the entry"
    context.close()  # type: ignore[attr-defined]


@pytest.mark.parametrize("locks", ["web locks", "storage lease"])
def test_two_tabs_send_a_queued_submission_once(browser: Browser, site_url: str, proxy_down: Stack,
                                                locks: str) -> None:
    context = browser.new_context()
    if locks == "storage lease":  # a browser without the Web Locks API
        context.add_init_script("Object.defineProperty(Navigator.prototype, 'locks', { get: () => null });")
    first, second = context.new_page(), context.new_page()
    first.goto(site_url)
    email = fill(first)
    first.click(f"{FORM} button[type=submit]")
    expect(first.locator(FORM)).to_have_attribute("data-state", "queued", timeout=1000)
    # The second tab finds the entry on load, fails too, and waits to retry it.
    second.goto(site_url)
    expect(second.locator(FORM)).to_have_attribute("data-state", "queued", timeout=2000)
    proxy_down.proxy_up()
    delivered_once(proxy_down, email)
    for tab in (first, second):
        expect(tab.locator(FORM)).to_have_attribute("data-state", "sent", timeout=10_000)
    context.close()


def test_a_422_shows_field_errors_with_the_data_back_in_the_form(browser: Browser, site: StaticSite,
                                                                 proxy_up: Stack) -> None:
    """A page built from an older, looser schema (say, cached on the CDN) meets the proxy's 422."""
    html = (site.root / "index.html").read_text()
    # The e-mail's pattern, dropped from the embedded rules only (the input keeps its own).
    loose = re.sub(r'"pattern":"\^\[\^@[^"]*",', "", html)
    assert loose != html
    (site.root / "stale").mkdir(exist_ok=True)
    (site.root / "stale" / "index.html").write_text(loose)
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{site.url}/stale/")
    fill(page, email="ada@example")  # has an "@", lacks the proxy's dot
    page.click(f"{FORM} button[type=submit]")
    form = page.locator(FORM)
    expect(form).to_have_attribute("data-state", "error", timeout=10_000)
    email = page.locator(f"{FORM} [name=email]")
    expect(email).to_have_attribute("aria-invalid", "true")
    expect(email).to_have_value("ada@example")
    expect(page.locator(f"{FORM} [name=name]")).to_have_value("Ada Lovelace")
    expect(page.locator("#leadform-lead-email-error")).to_contain_text("must be an e-mail address")
    expect(page.get_by_role("status")).to_contain_text("correct the fields")
    stored = f"async () => (await (await import('{asset('js/store.js')}')).openStore()).all()"
    assert page.evaluate(stored) == []
    context.close()


def test_without_javascript_the_form_posts_and_lands_on_the_thank_you_page(browser: Browser, site_url: str,
                                                                           proxy_up: Stack) -> None:
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(site_url)
    email = fill(page)
    page.click(f"{FORM} button[type=submit]")
    # The proxy may send it to the page in the form's language (C3: `?lang=en`).
    expect(page).to_have_url(re.compile(rf"^{re.escape(site_url)}/thanks/lead/(en/)?$"), timeout=10_000)
    expect(page.locator("h1")).to_have_text("Thank you!")
    lead = delivered_once(proxy_up, email)
    assert lead["lead"]["consent"] is True  # type: ignore[index]
    context.close()


def test_without_indexeddb_the_outbox_falls_back_to_localstorage(browser: Browser, site_url: str,
                                                                 proxy_down: Stack) -> None:
    context = browser.new_context()
    context.add_init_script("Object.defineProperty(window, 'indexedDB', { value: undefined });")
    page = context.new_page()
    page.goto(site_url)
    email = fill(page)
    page.click(f"{FORM} button[type=submit]")
    expect(page.locator(FORM)).to_have_attribute("data-state", "queued", timeout=1000)
    stored = page.evaluate("Object.keys(localStorage).filter((k) => k.startsWith('leadline:outbox:'))")
    assert len(stored) == 1
    proxy_down.proxy_up()
    delivered_once(proxy_down, email)
    expect(page.locator(FORM)).to_have_attribute("data-state", "sent", timeout=10_000)
    assert page.evaluate("Object.keys(localStorage).filter((k) => k.startsWith('leadline:outbox:'))") == []
    context.close()
