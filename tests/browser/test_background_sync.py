"""Delivery after the tab is closed: the service worker at the site's root and
Background Sync (Chromium), on the real pipeline.

The site is this module's own build (the update test deploys a new one over
it). Background Sync retries a failed sync only minutes later, so each story
makes the first sync fire on a network change: the browser context goes
offline before the submission and online again once the back end is up.
"""

from __future__ import annotations

import time
import urllib.request
import uuid
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Worker, expect

from tests.browser.conftest import Stack, StaticSite, asset, build_site, wait_for
from tests.browser.test_delivery import FORM, delivered_once, fill

pytestmark = [pytest.mark.browser, pytest.mark.broker, pytest.mark.slow]

SYNC = "'sync' in ServiceWorkerRegistration.prototype"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, proxy_port: int) -> Iterator[StaticSite]:
    """A site of this module's own, not the suite's shared one: the update test
    deploys a changed module and service worker over it, which other tests'
    pages must never pick up."""
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
    found: Worker = wait_for(lambda: context.service_workers[0] if context.service_workers else None,
                             timeout=10, what="the service worker")
    return found


def all_delivered_once(stack: Stack, emails: list[str]) -> None:
    """Each in the CRM once, written by one CRM call (one wait for duplicates in all)."""
    wait_for(lambda: all(stack.leads(email) for email in emails), timeout=30, what="every lead in the CRM")
    time.sleep(1.0)  # room for a duplicate to show up, if there were one
    calls = stack.calls()
    for email in emails:
        (lead,) = stack.leads(email)
        assert [c["id"] for c in calls].count(lead["id"]) == 1, f"{email}: CRM called more than once"


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


def deploy_a_changed_script(site: StaticSite) -> str:
    """A new deploy over the served site: a changed module, and the worker the
    build writes for it (serviceworker.write, as generate_output calls it)."""
    from pelican.plugins.leadform import assets, serviceworker, settings

    # As a build does it: the changed module under its new hashed name, beside
    # the old one, and the worker pointing at it.
    names = dict(assets.plan().names)
    data = (site.root / "leadform" / names["js/outbox.js"]).read_bytes() + b"export const DEPLOY = 2;\n"
    names["js/outbox.js"] = assets.hashed_name("js/outbox.js", data)
    (site.root / "leadform" / names["js/outbox.js"]).write_bytes(data)
    before = (site.root / "leadform-sw.js").read_text()
    conf = settings.read({"LEADFORM": {}, "SITEURL": ""})
    after = serviceworker.write(site.root, conf, names).read_text()
    assert after != before
    version: str = after.split('"version": "', 1)[1].split('"', 1)[0]
    return version


def accepted(stack: Stack) -> int:
    """Leads the proxy took (202) since it started: a second send would count twice."""
    with urllib.request.urlopen(f"{stack.proxy_url}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    return sum(int(float(line.rsplit(" ", 1)[1])) for line in text.splitlines()
               if line.startswith('leadline_proxy_accepted_total{form="lead"}'))


def retry_the_sync(context: BrowserContext, origin: str) -> None:
    """The browser's own retry of a failed sync, due minutes later, now: CDP's
    ServiceWorker.dispatchSyncEvent, from a blank tab (the site stays closed)."""
    blank = context.new_page()
    cdp = context.new_cdp_session(blank)
    found: list[str] = []
    cdp.on("ServiceWorker.workerRegistrationUpdated", lambda e: found.extend(
        r["registrationId"] for r in e["registrations"] if r["scopeURL"] == origin + "/"))
    cdp.send("ServiceWorker.enable")
    for _ in range(50):  # Playwright hands events over only while it is called
        if found:
            break
        blank.wait_for_timeout(100)
    assert found, "no service worker registration for the site"
    cdp.send("ServiceWorker.dispatchSyncEvent", {"origin": origin, "registrationId": found[0],
                                                 "tag": "leadline-outbox", "lastChance": False})
    blank.close()


def test_a_new_deploys_worker_takes_over_and_delivers_what_the_old_one_queued_once(
        context: BrowserContext, site: StaticSite, proxy_down: Stack) -> None:
    """Queued under the old worker (its sync already failed: the proxy is down),
    then a deploy: the new worker takes over and the browser's retry of the
    sync, which it gets, delivers every entry once."""
    page = context.new_page()
    page.goto(site.url)
    old = worker_of(context, page).evaluate("self.leadline.version")
    emails = []
    for _ in range(3):
        emails.append(submit(page))
        expect(page.get_by_role("status")).to_contain_text("saved on this device", timeout=10_000)
    new = deploy_a_changed_script(site)
    assert new != old
    with context.expect_event("serviceworker", timeout=10_000) as found:
        page.evaluate("navigator.serviceWorker.getRegistration().then((r) => r.update())")
    worker = found.value
    assert worker.evaluate("self.leadline.version") == new
    wait_for(lambda: page.evaluate("navigator.serviceWorker.getRegistration()"
                                   ".then((r) => !!r.active && !r.waiting && !r.installing)"),
             timeout=10, what="the new worker active")
    page.close()
    proxy_down.proxy_up()
    retry_the_sync(context, site.url)
    all_delivered_once(proxy_down, emails)
    assert accepted(proxy_down) == 3
    assert context.pages == []  # no page: the new deploy's worker sent them


def test_page_and_worker_both_awake_send_each_entry_once(context: BrowserContext, site_url: str,
                                                         proxy_down: Stack) -> None:
    page = context.new_page()
    page.goto(site_url)
    worker_of(context, page)
    context.set_offline(True)
    emails = []
    for _ in range(4):
        emails.append(submit(page))
        expect(page.get_by_role("status")).to_contain_text("saved on this device", timeout=10_000)
    proxy_down.proxy_up()
    # At once: the page's "online" flush and the worker's sync both go for every entry.
    context.set_offline(False)
    all_delivered_once(proxy_down, emails)
    assert accepted(proxy_down) == 4
    expect(page.locator(FORM)).to_have_attribute("data-state", "sent", timeout=10_000)


# A tab in the middle of a send: it holds the entry's lock for good, then asks for a sync.
MID_SEND = """async ([outbox, store, url, data]) => {
  const { entry } = await import(outbox);
  const { openStore } = await import(store);
  const e = entry('lead', url, data);
  const forever = () => new Promise(() => {});
  await new Promise((held) => navigator.locks.request(`leadline:${e.id}`, () => (held(), forever())));
  await (await openStore()).put(e);
  await (await navigator.serviceWorker.ready).sync.register('leadline-outbox');
}"""
WORKER_WAITS = "navigator.locks.query().then((q) => q.pending.some((l) => l.name.startsWith('leadline:')))"


def test_a_tab_closed_mid_send_is_sent_by_the_worker_at_once(context: BrowserContext, site_url: str,
                                                             proxy_down: Stack) -> None:
    """The worker, woken by a sync while a tab holds an entry's lock, waits for
    that lock and takes over the moment the tab is gone: no network change, no
    retry minutes later."""
    proxy_down.proxy_up()
    page = context.new_page()
    page.goto(site_url)
    worker_of(context, page)
    page.goto(f"{site_url}/privacy/")  # no form: no outbox of the page's own here
    email = f"ada+{uuid.uuid4().hex[:12]}@example.com"
    page.evaluate(MID_SEND, [asset("js/outbox.js"), asset("js/store.js"),
                             f"{proxy_down.proxy_url}/api/forms/lead",
                             {"name": "Ada Lovelace", "email": email, "consent": True}])
    page.wait_for_function(WORKER_WAITS, timeout=5000)
    assert proxy_down.leads(email) == []
    page.close()  # the lock dies with its tab
    all_delivered_once(proxy_down, [email])
    assert accepted(proxy_down) == 1


def test_without_background_sync_the_page_delivers_as_before(context: BrowserContext, site_url: str,
                                                             proxy_down: Stack) -> None:
    context.add_init_script("delete ServiceWorkerRegistration.prototype.sync;")
    page = context.new_page()
    page.goto(site_url)
    assert not page.evaluate(SYNC)
    email = submit(page)
    expect(page.get_by_role("status")).to_contain_text("saved on this device", timeout=10_000)
    assert page.evaluate("navigator.serviceWorker.getRegistrations().then((r) => r.length)") == 0
    assert context.service_workers == []
    proxy_down.proxy_up()
    delivered_once(proxy_down, email)
    expect(page.locator(FORM)).to_have_attribute("data-state", "sent", timeout=10_000)
