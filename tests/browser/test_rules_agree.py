"""One schema, three uses: the browser's checks say what the proxy's 422 says.

The rules the plugin embeds in the built page are run by rules.js in Chromium
and compared with `leadline.schemas.FormSchema.errors()` on the same data.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page

from leadline.schemas import load_schemas
from tests.browser.conftest import asset

pytestmark = pytest.mark.browser

SAMPLES: list[dict[str, Any]] = [
    {},
    {"name": "Ada Lovelace", "email": "ada@example.com", "consent": True},
    {"name": "Ada", "email": "ada@example.com", "consent": False},
    {"name": "   ", "email": "ada@example", "consent": True},
    {"name": "Ada", "email": "not an address", "consent": True, "company": "x" * 121},
    {"name": "Ada", "email": "a@b.co", "consent": "yes"},
    {"name": "ü" * 120, "email": "a@b.co", "consent": True},
    {"name": "ü" * 121, "email": "a@b.co", "consent": True, "message": "m" * 4001},
    {"name": "", "email": "", "consent": True},
    {"name": 7, "email": "a@b.co", "consent": True},
    # Patterns are ECMA-262 on both sides (schemathesis found Python's reading differ):
    {"name": "Ada", "email": "ada@example.com\n", "consent": True},
    {"name": "\x1c", "email": "e@\x1c\x1e.co", "consent": True},
]


@pytest.fixture(scope="module")
def page(browser: Browser, site_url: str) -> Iterator[Page]:
    context = browser.new_context()
    page = context.new_page()
    page.goto(site_url)
    yield page
    context.close()


@pytest.mark.parametrize("data", SAMPLES, ids=[json.dumps(s)[:40] for s in SAMPLES])
def test_browser_checks_match_the_proxy_validator(page: Page, data: dict[str, Any]) -> None:
    in_browser = page.evaluate("""async ([data, rulesJs]) => {
        const { check } = await import(rulesJs);
        const script = document.querySelector('form[data-leadform=lead] .leadform-rules');
        const rules = JSON.parse(script.textContent);
        return check(rules, data);
    }""", [data, asset("js/rules.js")])
    on_proxy = [e.as_dict() for e in load_schemas()["lead"].errors(data)]
    assert in_browser == on_proxy


@pytest.mark.parametrize("data", SAMPLES, ids=[json.dumps(s)[:40] for s in SAMPLES])
def test_english_words_by_code_are_the_proxys_words(page: Page, data: dict[str, Any]) -> None:
    """The page words a 422 by code (words.js); in English that gives back the
    proxy's own message after "This field", so no language loses anything."""
    on_proxy = [e.as_dict() for e in load_schemas()["lead"].errors(data)]
    worded = page.evaluate("""async ([errors, data, wordsJs]) => {
        const { fieldError } = await import(wordsJs);
        const form = document.querySelector('form[data-leadform=lead]');
        const T = JSON.parse(form.querySelector('.leadform-texts').textContent);
        const props = JSON.parse(form.querySelector('.leadform-rules').textContent).properties;
        return errors.map((e) => fieldError(T, e, props[e.field], false, data[e.field]));
    }""", [on_proxy, data, asset("js/words.js")])
    assert worded == [f"This field {e['message']}." for e in on_proxy]
