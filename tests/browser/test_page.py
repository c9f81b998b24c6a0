"""The landing page as a visitor meets it: no errors, keyboard order, no layout shift."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

pytestmark = pytest.mark.browser

FORM = "form[data-leadform=lead]"


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()
    yield context.new_page()
    context.close()


def test_the_page_loads_without_console_errors_and_the_script_takes_over(page: Page, site_url: str) -> None:
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type in {"error", "warning"} else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(site_url)
    # The script sets novalidate once the outbox is open: then it owns the form.
    expect(page.locator(FORM)).to_have_attribute("novalidate", "")
    assert errors == []


def test_keyboard_order_skips_the_honeypot(page: Page, site_url: str) -> None:
    page.goto(site_url)
    page.focus(f"{FORM} [name=name]")
    names = []
    for _ in range(5):
        page.keyboard.press("Tab")
        names.append(page.evaluate("document.activeElement.name || document.activeElement.tagName"))
    assert names == ["email", "company", "message", "consent", "BUTTON"]


def test_submitting_an_empty_form_marks_fields_and_focuses_the_first(page: Page, site_url: str) -> None:
    page.goto(site_url)
    expect(page.locator(FORM)).to_have_attribute("novalidate", "")
    page.click(f"{FORM} button[type=submit]")
    expect(page.locator(FORM)).to_have_attribute("data-state", "error")
    name = page.locator(f"{FORM} [name=name]")
    expect(name).to_be_focused()
    expect(name).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#leadform-lead-name-error")).to_have_text("This field is required.")
    expect(page.locator("#leadform-lead-consent-error")).to_contain_text("must be ticked")
    expect(page.locator(f"{FORM} [name=company]")).not_to_have_attribute("aria-invalid", "true")
    expect(page.get_by_role("status")).to_have_text("Please correct the fields marked above.")


@pytest.mark.parametrize("width", [390, 1280])
def test_loading_the_page_shifts_no_layout(browser: Browser, site_url: str, width: int) -> None:
    context = browser.new_context(viewport={"width": width, "height": 800})
    page = context.new_page()
    page.add_init_script("""window.__shift = 0;
        new PerformanceObserver((l) => l.getEntries().forEach((e) => { window.__shift += e.value; }))
            .observe({ type: 'layout-shift', buffered: true });""")
    page.goto(site_url)
    page.wait_for_load_state("networkidle")
    expect(page.locator(FORM)).to_have_attribute("novalidate", "")
    page.wait_for_timeout(300)
    assert page.evaluate("window.__shift") == 0
    context.close()
