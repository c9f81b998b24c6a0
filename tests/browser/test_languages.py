"""A German and a Chinese page speak their language in every state: the
built-in texts (texts.py), the editor's own (the schema's x-i18n), and the
proxy's 422, which says its problems in English, worded again by code."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import Stack, StaticSite
from tests.browser.walk import FORM, STATES, built_in, walk
from tests.support.procs import ROOT

pytestmark = [pytest.mark.browser, pytest.mark.broker, pytest.mark.slow]

SCHEMA = json.loads((ROOT / "schemas" / "lead.schema.json").read_text(encoding="utf-8"))
# Words of the English page that must not show on another language's form.
ENGLISH = ("This field", "This box", "(optional)", "Thank you", "Please correct", "Send", "Your name")


def editor(lang: str, key: str, field: str | None = None) -> str:
    node = SCHEMA if field is None else SCHEMA["properties"][field]
    return str(node["x-i18n"][lang][key])


def expected(lang: str) -> dict[str, dict[str, str]]:
    """What the form says in each state: the status line and the field errors by id."""
    say, errors, this = built_in(lang)["say"], built_in(lang)["errors"], built_in(lang)["this"]
    custom = errors["custom"]
    return {
        "idle": {"status": ""},
        "errors": {
            "status": say["invalid"],
            "name": errors["required"].format(this=this["field"]),
            "email": errors["required"].format(this=this["field"]),
            "consent": custom.format(this=this["box"], message=editor(lang, "x-const-message", "consent")),
            "company": "",
        },
        "queued": {"status": say["offline"]},
        "sent": {"status": say["sent"]},
        "rejected": {
            "status": say["rejected"],
            "email": custom.format(this=this["field"], message=editor(lang, "x-pattern-message", "email")),
            "name": "",
        },
    }


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()
    yield context.new_page()
    context.close()


@pytest.mark.parametrize("lang", ["de", "zh"])
def test_the_page_speaks_its_language_in_every_state(page: Page, site: StaticSite, stack: Stack,
                                                     lang: str) -> None:
    want, seen = expected(lang), []

    def at(state: str) -> None:
        form = page.locator(FORM)
        for key, text in want[state].items():
            where = form.locator("[role=status]" if key == "status" else f"#leadform-lead-{key}-error")
            expect(where).to_have_text(text)
        shown = form.inner_text()
        own = json.dumps(built_in(lang), ensure_ascii=False)
        for english in (word for word in ENGLISH if word not in own):  # German has "(optional)" too
            assert english not in shown, f"{state}: {english!r} on the {lang} page"
        seen.append(state)

    page.goto(site.url + "/")  # nothing stored yet: start from a clean outbox
    walk(page, site, stack, lang, at)
    assert seen == list(STATES)
    form = page.locator(FORM)
    expect(form).to_have_attribute("lang", lang)
    expect(form.locator("h2")).to_have_text(editor(lang, "title"))
    expect(form.locator("button[type=submit]")).to_have_text(editor(lang, "x-submit-label"))
    expect(form.locator("label[for=leadform-lead-email]")).to_have_text(editor(lang, "title", "email"))
    assert (form.get_attribute("action") or "").endswith(f"?lang={lang}")


@pytest.mark.parametrize("lang", ["de", "zh"])
def test_the_thank_you_page_in_each_language(page: Page, site: StaticSite, lang: str) -> None:
    page.goto(f"{site.url}/thanks/lead/{lang}/")
    expect(page.locator("html")).to_have_attribute("lang", lang)
    expect(page.locator("h1")).to_have_text(built_in(lang)["thanks"]["heading"])
    expect(page.locator("article")).to_contain_text(editor(lang, "title"))
