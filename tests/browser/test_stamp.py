"""The stamp (BRIEF C2) as the page makes it, checked the way the proxy will:
one SHA-256 (Python's hashlib here) over `1:<bits>:<ts>:<form>:<id>:<nonce>`.

The proxy is played by Playwright's routing: each test says what it answers.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Route, expect

from proxy import stamp
from tests.browser.conftest import asset
from tests.browser.test_delivery import FORM, fill

pytestmark = pytest.mark.browser

ALLOW_HEADERS = "Content-Type, Idempotency-Key, traceparent, X-Leadline-Stamp"
OUTBOX = "async (url) => (await (await import(url)).openStore()).all()"


def verify(header: str, form: str, sid: str, bits: int, now: float | None = None) -> bool:
    """The proxy's own verdict (proxy/stamp.py, contract C2) on a stamp the page made."""
    check = stamp.verify(header, form, sid, bits=bits, max_age=30 * 86400,
                         now=time.time() if now is None else now)
    return check.verdict == stamp.VALID


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    # No service worker here: these tests are about the page's own sends.
    context = browser.new_context(service_workers="block")
    yield context
    context.close()


@pytest.fixture
def page(context: BrowserContext, site_url: str) -> Page:
    page = context.new_page()
    page.goto(f"{site_url}/privacy/")  # same origin, no form
    return page


def js(page: Page, body: str, arg: Any = None) -> Any:
    return page.evaluate(f"async ([arg, url]) => {{ const m = await import(url); {body} }}",
                         [arg, asset("js/stamp.js")])


def test_sha256_is_hashlibs_for_every_length_around_the_block_edges(page: Page) -> None:
    texts = ["", "abc", "é中", *("x" * n for n in (*range(50, 70), *range(110, 130), 200))]
    assert js(page, "return arg.map(m.sha256);", texts) == [hashlib.sha256(t.encode()).hexdigest()
                                                            for t in texts]


@pytest.mark.parametrize("form", ["lead", "l", "contact-us", "a-form-with-a-rather-long-name"])
@pytest.mark.parametrize("bits", [0, 8, 12])
def test_a_minted_stamp_verifies(page: Page, form: str, bits: int) -> None:
    sid = "0f8fad5b-d9cb-469f-a165-70867728950e"
    header = js(page, "return m.mint(...arg);", [form, sid, bits, 1_764_590_000])
    assert verify(header, form, sid, bits, now=1_764_590_000), header
    assert not verify(header, form, sid.replace("0f8f", "0f8e"), max(bits, 8), now=1_764_590_000)


def test_minting_leaves_the_page_responsive(page: Page) -> None:
    """20 bits take seconds at most; no task of the page waits long meanwhile."""
    worst, header = js(page, """
        let worst = 0, last = performance.now(), going = true;
        const tick = () => { const t = performance.now(); worst = Math.max(worst, t - last); last = t;
                             if (going) setTimeout(tick, 0); };
        setTimeout(tick, 0);
        const header = await m.mint('lead', 'x', 20, 1764590000);
        going = false;
        return [worst, header];""")
    assert verify(header, "lead", "x", 20, now=1_764_590_000)
    assert worst < 100, f"the page waited {worst:.0f} ms for a task"


class Proxy:
    """What the page sends, and the answers the test scripts (then 202)."""

    def __init__(self, answers: list[tuple[int, dict[str, Any]]] | None = None) -> None:
        self.answers = list(answers or [])
        self.posts: list[dict[str, str]] = []

    def __call__(self, route: Route) -> None:
        request = route.request
        cors = {"Access-Control-Allow-Origin": request.headers.get("origin", "*"),
                "Access-Control-Allow-Headers": ALLOW_HEADERS,
                "Access-Control-Allow-Methods": "POST, OPTIONS"}
        if request.method == "OPTIONS":
            route.fulfill(status=204, headers=cors)
            return
        self.posts.append(request.headers)
        status, body = self.answers.pop(0) if self.answers else (202, {"status": "queued"})
        route.fulfill(status=status, headers=cors, content_type="application/json", body=json.dumps(body))


def open_form(context: BrowserContext, site_url: str, proxy: Proxy) -> Page:
    page = context.new_page()
    page.route("**/api/forms/**", proxy)
    page.goto(site_url)
    return page


def sent_on_the_second_try(page: Page, proxy: Proxy) -> tuple[dict[str, str], dict[str, str], str]:
    """Submit; the proxy's scripted answer refuses the first send, the second is taken:
    both posts, and the one submission id they carry."""
    fill(page)
    page.click(f"{FORM} button[type=submit]")
    expect(page.locator(FORM)).to_have_attribute("data-state", "sent", timeout=10_000)
    first, second = proxy.posts
    sid = first["idempotency-key"]
    assert second["idempotency-key"] == sid
    return first, second, sid


def test_every_send_carries_a_stamp_made_after_the_thank_you(context: BrowserContext, site_url: str) -> None:
    proxy = Proxy([(503, {"status": "unavailable"})])
    page = open_form(context, site_url, proxy)
    bits = int(page.locator(FORM).get_attribute("data-stamp-bits") or "")
    assert bits == 16  # LEADFORM["stamp_bits"]'s default, the proxy's SPAM_STAMP_BITS default
    first, second, sid = sent_on_the_second_try(page, proxy)
    assert first["x-leadline-stamp"] == second["x-leadline-stamp"]  # stamped once, sent with each try
    assert verify(first["x-leadline-stamp"], "lead", sid, bits)


def test_a_422_about_the_stamp_only_restamps_and_retries(context: BrowserContext, site_url: str) -> None:
    stale = {"status": "invalid",
             "errors": [{"field": "", "code": "stamp", "message": "a valid stamp is required"}]}
    proxy = Proxy([(422, stale)])
    page = open_form(context, site_url, proxy)
    first, second, sid = sent_on_the_second_try(page, proxy)
    for post in (first, second):
        assert verify(post["x-leadline-stamp"], "lead", sid, 16)
    assert int(second["x-leadline-stamp"].split(":")[2]) >= int(first["x-leadline-stamp"].split(":")[2])
    assert page.evaluate(OUTBOX, asset("js/store.js")) == []


def test_a_422_about_the_stamp_and_a_field_gives_the_data_back(context: BrowserContext,
                                                               site_url: str) -> None:
    errors = [{"field": "", "code": "stamp", "message": "a valid stamp is required"},
              {"field": "email", "code": "format", "message": "must be an e-mail address"}]
    proxy = Proxy([(422, {"status": "invalid", "errors": errors})])
    page = open_form(context, site_url, proxy)
    fill(page)
    page.click(f"{FORM} button[type=submit]")
    expect(page.locator(FORM)).to_have_attribute("data-state", "error", timeout=10_000)
    assert len(proxy.posts) == 1


def test_an_entry_an_older_script_queued_without_a_stamp_is_stamped_before_its_send(
        context: BrowserContext, site_url: str) -> None:
    proxy = Proxy()
    page = open_form(context, site_url, proxy)
    old = {"id": "3b241101-e2bb-4255-8caf-4136c566a962", "form": "lead",
           "url": page.locator(FORM).get_attribute("action"), "trace": "ab" * 16,
           "data": {"name": "Old", "email": "old@example.com", "consent": True},
           "attempts": 2, "due": 0, "hold": 0}  # the format before stamps: no bits, no stamp
    # Stored from a page without the form: a form page would send it as it unloads
    # (pagehide), and the next one again (one key, so harmless, but not this test's case).
    page.goto(f"{site_url}/privacy/")
    page.evaluate("async ([e, url]) => (await (await import(url)).openStore()).put(e)",
                  [old, asset("js/store.js")])
    page.goto(site_url)
    expect(page.locator(FORM)).to_have_attribute("data-state", "sent", timeout=10_000)
    (post,) = proxy.posts
    assert post["idempotency-key"] == old["id"]
    assert verify(post["x-leadline-stamp"], "lead", str(old["id"]), 16)


def test_the_thank_you_never_waits_for_the_stamp(context: BrowserContext, site_url: str) -> None:
    """At 26 bits a stamp takes a minute: the thank-you is there at once, the send waits."""
    proxy = Proxy()
    page = open_form(context, site_url, proxy)
    page.locator(FORM).evaluate("(f) => { f.dataset.stampBits = '26'; }")
    fill(page)
    page.click(f"{FORM} button[type=submit]")
    expect(page.locator(FORM)).to_have_attribute("data-state", "queued", timeout=1000)
    (stored,) = page.evaluate(OUTBOX, asset("js/store.js"))
    assert stored["bits"] == 26
    assert not stored.get("stamp")
    assert proxy.posts == []
    # ... and the page answers meanwhile.
    assert page.evaluate("new Promise((ok) => { const t = performance.now(); "
                         "setTimeout(() => ok(performance.now() - t), 0); })") < 100
