"""Form-encoded posts are typed after the schema; the honeypot is found and removed."""

from __future__ import annotations

import pytest

from leadline.schemas import load_schemas
from proxy.bodies import BodyError, decode_form, honeypot_filled

LEAD = load_schemas()["lead"]


def test_form_encoded_fields_are_typed_after_the_schema() -> None:
    fields = decode_form(b"name=Ada+L&email=ada%40example.com&consent=on&company=&message=hi",
                         LEAD)
    assert fields == {"name": "Ada L", "email": "ada@example.com", "consent": True, "message": "hi"}


@pytest.mark.parametrize(("raw", "expected"), [
    ("consent=on", True), ("consent=true", True), ("consent=false&consent=on", True),
    ("consent=false", False), ("consent=maybe", "maybe"),
])
def test_checkbox_values_become_booleans(raw: str, expected: object) -> None:
    assert decode_form(raw.encode(), LEAD)["consent"] == expected


def test_empty_required_field_is_kept_so_the_422_says_it_is_empty() -> None:
    fields = decode_form(b"name=&email=", LEAD)
    assert fields == {"name": "", "email": ""}
    messages = {e.field: e.message for e in LEAD.errors(fields)}
    assert messages["name"] == "must not be empty"


def test_form_encoded_that_is_not_utf8_is_a_400() -> None:
    with pytest.raises(BodyError) as caught:
        decode_form(b"name=%ff%fe", LEAD)
    assert caught.value.status == 400


@pytest.mark.parametrize(("fields", "filled"), [
    ({"website": "http://spam"}, True), ({"website": 0}, True), ({"website": ""}, False),
    ({"website": None}, False), ({}, False),
])
def test_honeypot_is_filled_by_any_non_empty_value_and_always_removed(
        fields: dict[str, object], filled: bool) -> None:
    assert honeypot_filled(fields) is filled
    assert "website" not in fields
