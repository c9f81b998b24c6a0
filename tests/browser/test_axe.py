"""Accessibility: axe-core (node_modules, pinned by package-lock.json) in
Chromium, on a phone and a desktop viewport, in every state of the form
(idle, errors shown, queued, sent, rejected by the proxy's 422), in English,
German and Chinese: no violation axe rates serious or critical."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page

from tests.browser.conftest import Stack, StaticSite
from tests.browser.walk import STATES, walk
from tests.support.procs import ROOT

pytestmark = [pytest.mark.browser, pytest.mark.broker, pytest.mark.slow]

AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
VIEWPORTS = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1280, "height": 800}}
BAD = {"serious", "critical"}


@pytest.fixture(scope="module")
def axe() -> Path:
    if not AXE.is_file():
        pytest.fail(f"{AXE.relative_to(ROOT)} is missing: run ./dev (it installs axe-core with npm ci)",
                    pytrace=False)
    return AXE


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()
    yield context.new_page()
    context.close()


def violations(page: Page, axe: Path) -> list[dict[str, Any]]:
    if not page.evaluate("typeof axe !== 'undefined'"):
        page.add_script_tag(path=str(axe))
    found: list[dict[str, Any]] = page.evaluate("""async () => (await axe.run(document, {
        resultTypes: ['violations'] })).violations.map((v) => ({ id: v.id, impact: v.impact,
        help: v.help, nodes: v.nodes.map((n) => n.target.join(' ')) }))""")
    return found


@pytest.mark.parametrize("lang", ["en", "de", "zh"])
def test_axe_finds_nothing_serious_in_any_state_on_a_phone_and_a_desktop(
        page: Page, site: StaticSite, stack: Stack, axe: Path, lang: str) -> None:
    problems: list[str] = []
    seen: list[str] = []

    def at(state: str) -> None:
        for name, size in VIEWPORTS.items():
            page.set_viewport_size(size)
            problems.extend(f"{state} on a {name}: {v['id']} ({v['impact']}: {v['help']}) at {v['nodes']}"
                            for v in violations(page, axe) if v["impact"] in BAD)
        seen.append(state)

    page.goto(site.url + "/privacy/")
    walk(page, site, stack, lang, at)
    assert seen == list(STATES)
    assert problems == [], "\n".join(problems)
