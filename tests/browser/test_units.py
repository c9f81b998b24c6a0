"""The outbox's pure parts, run where they run for real: in Chromium.

The state machine, the answer classification and the backoff are plain ES
modules; each test imports one into a page of the built site and asks it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page

from tests.browser.conftest import asset

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def page(browser: Browser, site_url: str) -> Iterator[Page]:
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{site_url}/privacy/")  # same origin, no form: nothing else runs
    yield page
    context.close()


def js(page: Page, module: str, body: str, arg: Any = None) -> Any:
    """`body` is a function body with `m` (the module) and `arg` in scope."""
    return page.evaluate(
        f"async (arg) => {{ const m = await import('{asset('js/' + module)}'); {body} }}", arg)


WALKS = [
    (["submit", "stored", "delivered"], ["saving", "queued", "sent"]),
    (["submit", "invalid", "submit", "stored"], ["saving", "error", "saving", "queued"]),
    (["submit", "stored", "rejected", "submit"], ["saving", "queued", "error", "saving"]),
    (["pending", "delivered", "submit"], ["queued", "sent", "saving"]),
    (["rejected"], ["error"]),
]


@pytest.mark.parametrize(("events", "states"), WALKS)
def test_state_machine_walks_the_documented_paths(page: Page, events: list[str], states: list[str]) -> None:
    walked = js(page, "machine.js",
                "let s = 'idle'; return arg.map((e) => (s = m.next(s, e)));", events)
    assert walked == states


@pytest.mark.parametrize(("state", "event"), [
    ("error", "delivered"),   # a delivery elsewhere must not wipe errors being fixed
    ("saving", "submit"),     # a double click while saving does nothing
    ("idle", "stored"),
    ("sent", "invalid"),
])
def test_state_machine_ignores_events_that_do_not_apply(page: Page, state: str, event: str) -> None:
    assert js(page, "machine.js", "return [m.next(arg[0], arg[1]), m.can(arg[0], arg[1])];",
              [state, event]) == [state, False]


def test_state_machine_only_knows_the_five_page_states(page: Page) -> None:
    states, targets = js(page, "machine.js",
                         "return [m.STATES, Object.values(m.MOVES).flatMap(Object.values)];")
    assert states == ["idle", "saving", "queued", "sent", "error"]
    assert set(targets) <= set(states)
    assert set(js(page, "machine.js", "return Object.keys(m.MOVES);")) == set(states)


@pytest.mark.parametrize(("status", "verdict"), [
    (202, "done"), (200, "done"),
    (422, "reject"), (400, "reject"), (413, "reject"),
    # a 4xx that says nothing about the data (a CDN, a WAF, a deploy in
    # progress, a misconfigured origin) keeps the entry and retries it
    (401, "retry"), (403, "retry"), (404, "retry"), (405, "retry"), (409, "retry"), (415, "retry"),
    (429, "retry"), (503, "retry"), (500, "retry"), (502, "retry"), (408, "retry"), (0, "retry"),
])
def test_answers_are_classified_as_done_reject_or_retry(page: Page, status: int, verdict: str) -> None:
    assert js(page, "outbox.js", "return m.classify(arg);", status) == verdict


def test_backoff_doubles_with_jitter_and_is_capped(page: Page) -> None:
    low, high, cap = js(page, "outbox.js", """
        const at = (r) => [1, 2, 3, 4, 30].map((n) => m.backoff(n, () => r));
        return [at(0), at(0.999999), m.CAP_MS];""")
    assert [round(x) for x in low] == [500, 1000, 2000, 4000, cap // 2]
    assert [round(x) for x in high] == [1000, 2000, 4000, 8000, cap]


def test_retry_after_reads_seconds_and_http_dates(page: Page) -> None:
    seconds, date, junk, past = js(page, "outbox.js", """
        const now = Date.parse('2030-01-01T00:00:00Z');
        return [m.retryAfter('7', now), m.retryAfter('Tue, 01 Jan 2030 00:00:30 GMT', now),
                m.retryAfter('soon', now), m.retryAfter('Mon, 31 Dec 2029 00:00:00 GMT', now)];""")
    assert (seconds, date, junk, past) == (7000, 30000, 0, 0)


def test_each_submission_gets_a_fresh_uuid_and_trace_id(page: Page) -> None:
    a, b = js(page, "outbox.js", "return [m.entry('lead', '/x', {}), m.entry('lead', '/x', {})];")
    assert a["id"] != b["id"]
    assert len(a["id"]) == 36
    assert a["trace"] != b["trace"]
    assert len(a["trace"]) == 32
    assert (a["attempts"], a["form"]) == (0, "lead")


T_DE = {"this": {"field": "Dieses Feld", "box": "Dieses Kästchen"}, "types": {"integer": "eine ganze Zahl"},
        "errors": {"required": "Bitte ausfüllen.", "required:box": "Bitte ankreuzen.",
                   "type": "{this} muss {type} sein.", "enum": "Einer von: {values}.",
                   "maximum": "Höchstens {limit}.", "empty": "{this} ist leer.",
                   "minLength": "Mindestens {limit}.", "maxLength": "Höchstens {limit} ({count}).",
                   "custom": "{this} {message}.", "invalid": "Ungültig."},
        "other": {"additional": "„{field}“ gibt es nicht", "invalid": "ungültig"}}


@pytest.mark.parametrize(("error", "prop", "box", "value", "said"), [
    ({"code": "required"}, {}, False, "", "Bitte ausfüllen."),
    ({"code": "required"}, {}, True, "", "Bitte ankreuzen."),
    ({"code": "type"}, {"type": "integer"}, False, "x", "Dieses Feld muss eine ganze Zahl sein."),
    ({"code": "enum"}, {"enum": ["a", "b"]}, False, "c", "Einer von: a, b."),
    ({"code": "maximum"}, {"maximum": 9}, False, 10, "Höchstens 9."),
    ({"code": "minLength"}, {"minLength": 1}, False, "", "Dieses Feld ist leer."),
    ({"code": "minLength"}, {"minLength": 3}, False, "ab", "Mindestens 3."),
    ({"code": "maxLength"}, {"maxLength": 2}, False, "äöü", "Höchstens 2 (3)."),  # code points
    ({"code": "pattern", "message": "is not in the expected format"}, {"x-pattern-message": "ist falsch"},
     False, "x", "Dieses Feld ist falsch."),
    ({"code": "const", "message": "must be true"}, {"const": True, "x-const-message": "muss an sein"},
     True, False, "Dieses Kästchen muss an sein."),
    ({"code": "format"}, {}, False, "x", "Ungültig."),          # a code without words of its own
    ({"message": "from an older proxy"}, {}, False, "x", "Ungültig."),  # no code at all
])
def test_a_fields_problem_is_worded_by_code(page: Page, error: dict[str, Any], prop: dict[str, Any],
                                            box: bool, value: Any, said: str) -> None:
    assert js(page, "words.js", "return m.fieldError(arg[0], arg[1], arg[2], arg[3], arg[4]);",
              [T_DE, error, prop, box, value]) == said


def test_problems_no_field_owns_are_worded_by_code(page: Page) -> None:
    said = js(page, "words.js", "return arg[1].map((e) => m.otherError(arg[0], e));",
              [T_DE, [{"field": "fax", "code": "additional"}, {"field": "", "code": "stamp"}]])
    assert said == ["„fax“ gibt es nicht", "ungültig"]
