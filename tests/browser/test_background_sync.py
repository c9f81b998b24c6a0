"""Delivery after the tab is closed: the service worker at the site's root and
Background Sync (Chromium), on the real pipeline.

The site is this module's own build (the update test deploys a new one over
it). Background Sync retries a failed sync only minutes later, so each story
makes the first sync fire on a network change: the browser context goes
offline before the submission and online again once the back end is up.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Worker, expect

from tests.browser.conftest import Stack, StaticSite, build_site, wait_for
from tests.browser.test_delivery import FORM, delivered_once, fill

pytestmark = [pytest.mark.browser, pytest.mark.broker, pytest.mark.slow]

SYNC = "'sync' in ServiceWorkerRegistration.prototype"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, proxy_port: int) -> Iterator[StaticSite]:
    out = tmp_path_factory.mktemp("sw-site")
    build_site(out, f"http://127.0.0.1:{proxy_port}/api/forms")
    with StaticSite(out) as served:
        yield served


@pytest.fixture(scope="module")
def site_url(site: StaticSite) -> str:
    return site.url


@pytest.fixture
def proxy_down(stack: Stack) -> Iterator[Stack]:
    stack.proxy_down()
    yield stack
    stack.proxy_down()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context(service_workers="allow")
    yield context
    context.close()


def worker_of(context: BrowserContext, page: Page) -> Worker:
    """The site's service worker, once it is active (its sync can be registered)."""
    page.wait_for_function("navigator.serviceWorker.ready.then((r) => !!r.active)", timeout=10_000)
    return wait_for(lambda: context.service_workers[0] if context.service_workers else None,
                    timeout=10, what="the service worker")


def submit(page: Page) -> str:
    email = fill(page)
    page.click(f"{FORM} button[type=submit]")
    expect(page.locator(FORM)).to_have_attribute("data-state", "queued", timeout=1000)
    return email


def test_a_closed_tab_is_delivered_once_by_the_service_worker_on_a_network_change(
        context: BrowserContext, site_url: str, proxy_down: Stack) -> None:
    page = context.new_page()
    page.goto(site_url)
    assert page.evaluate(SYNC)
    worker_of(context, page)
    context.set_offline(True)  # on a train
    email = submit(page)
    expect(page.get_by_role("status")).to_contain_text("saved on this device", timeout=10_000)
    page.close()  # the visitor leaves; the browser stays
    assert context.pages == []
    proxy_down.proxy_up()
    context.set_offline(False)  # the network change fires the sync
    delivered_once(proxy_down, email)
    assert context.pages == []  # nobody opened the site again
