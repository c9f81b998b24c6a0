"""What schemathesis found in the proxy, each pinned by a regression test.

1. Patterns were matched with Python's `re`, not as ECMA-262 regular
   expressions (JSON Schema's, and the page's `new RegExp(p, 'u')`): `$`
   matched before a final newline, so "ada@example.com\\n" passed the e-mail
   pattern; `\\s` took \\x1c-\\x1f, so an e-mail the page accepts got a 422.
   The page and the proxy now read a pattern alike (leadline.patterns).
"""

from __future__ import annotations

import pytest

from leadline.errors import ConfigError
from leadline.schemas import load_schemas
from tests.proxy.conftest import VALID_LEAD, Client, post_json

LEAD = load_schemas()["lead"]


async def test_an_email_with_a_trailing_newline_is_refused_as_the_page_refuses_it(client: Client) -> None:
    status, payload, _ = await post_json(client, {**VALID_LEAD, "email": "ada@example.com\n"})
    assert status == 422
    assert [e["field"] for e in payload["errors"]] == ["email"]


async def test_an_information_separator_is_no_space_for_the_proxy_as_for_the_page(client: Client) -> None:
    """ECMA's \\s leaves out \\x1c-\\x1f, Python's takes them: the page sent this and got a 422."""
    status, _, _ = await post_json(client, {**VALID_LEAD, "name": "\x1c", "email": "e@\x1c\x1e.0"})
    assert status == 202


@pytest.mark.parametrize(("pattern", "value", "matches"), [
    (r"^a$", "a\n", False),          # Python: $ before a final newline
    (r"\S", "\x1c", True),           # Python: \x1c-\x1f are spaces
    (r"\S", "\ufeff", False),        # ECMA: U+FEFF is a space
    (r"^\d$", "\u0663", False),      # Python: every script's digits
    (r"^\w+$", "é", False),          # ECMA: \w is [A-Za-z0-9_]
])
def test_the_validator_and_the_fast_check_match_patterns_as_ecma_262(
        pattern: str, value: str, matches: bool) -> None:
    from leadline.schemas import FormSchema

    form = FormSchema("t", {"type": "object", "properties": {"f": {"type": "string", "pattern": pattern}},
                            "additionalProperties": False})
    assert form.jsonschema_accepts({"f": value}) is matches
    assert form.has_fast_check
    assert form.is_valid({"f": value}) is matches


def test_a_pattern_that_is_not_ecma_262_stops_the_start(tmp_path: object) -> None:
    from pathlib import Path

    folder = Path(str(tmp_path))
    (folder / "bad.schema.json").write_text(
        '{"type": "object", "properties": {"f": {"type": "string", "pattern": "(?P<name>x)"}}}')
    with pytest.raises(ConfigError, match=r"bad\.schema\.json"):
        load_schemas(folder)
