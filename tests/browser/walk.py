"""One visit through every state of the form, for the tests that look at each:
idle, errors shown, queued with the proxy down, sent, and rejected by the
proxy's 422. `at(state)` is called once the page shows that state."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

from playwright.sync_api import Page, expect

from tests.browser.conftest import PAGES_IN, Stack, StaticSite

FORM = "form[data-leadform=lead]"
STATES = ("idle", "errors", "queued", "sent", "rejected")


def built_in(lang: str) -> dict[str, Any]:
    """The plugin's texts in `lang` (texts.py). Imported when asked, not at the
    top: see conftest.asset() on importing Pelican early."""
    from pelican.plugins.leadform import texts

    found: dict[str, Any] = texts.TEXTS[lang]
    return found


def page_path(lang: str) -> str:
    """The URL path of the site's page with the form in `lang`."""
    return "/" if lang == "en" else "/" + PAGES_IN[lang][0]


def stale_copy(site: StaticSite, lang: str) -> str:
    """The page as an older build with a looser schema left it on a CDN: the
    e-mail's pattern dropped from the embedded rules only, so the proxy's 422
    is what finds the problem. Its URL path."""
    source = site.root / ("index.html" if lang == "en" else PAGES_IN[lang][0])
    html = source.read_text(encoding="utf-8")
    loose = re.sub(r'"pattern":"\^\[\^@[^"]*",', "", html)
    assert loose != html
    (site.root / f"stale-{lang}").mkdir(exist_ok=True)
    (site.root / f"stale-{lang}" / "index.html").write_text(loose, encoding="utf-8")
    return f"/stale-{lang}/"


def fill(page: Page, email: str) -> None:
    page.fill(f"{FORM} [name=name]", "Ada Lovelace")
    page.fill(f"{FORM} [name=email]", email)
    page.fill(f"{FORM} [name=message]", "We would like a demo.")
    page.check(f"{FORM} [name=consent]")


def walk(page: Page, site: StaticSite, stack: Stack, lang: str, at: Callable[[str], None]) -> None:
    form = page.locator(FORM)
    stack.proxy_down()
    page.goto(site.url + page_path(lang))
    expect(form).to_have_attribute("novalidate", "")  # the script owns the form
    at("idle")

    page.click(f"{FORM} button[type=submit]")
    expect(form).to_have_attribute("data-state", "error")
    at("errors")

    fill(page, f"walk+{uuid.uuid4().hex[:12]}@example.com")
    page.click(f"{FORM} button[type=submit]")
    expect(form).to_have_attribute("data-state", "queued")
    # The first send failed: the line that says it waits for the server.
    expect(page.locator(f"{FORM} [role=status]")).to_have_text(built_in(lang)["say"]["offline"])
    at("queued")

    stack.proxy_up()
    page.evaluate("dispatchEvent(new Event('online'))")  # send now, not after the backoff
    expect(form).to_have_attribute("data-state", "sent", timeout=15_000)
    at("sent")

    page.goto(site.url + stale_copy(site, lang))
    expect(form).to_have_attribute("novalidate", "")
    fill(page, "ada@example")  # has an "@", lacks the proxy's dot
    page.click(f"{FORM} button[type=submit]")
    expect(form).to_have_attribute("data-state", "error", timeout=15_000)
    expect(page.locator(f"{FORM} [name=email]")).to_have_attribute("aria-invalid", "true")
    at("rejected")
