"""Form-encoded posts are typed after the schema; the honeypot is found and removed."""

from __future__ import annotations

import asyncio

import pytest

from leadline.schemas import FormSchema, load_schemas
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


async def test_a_body_that_trickles_in_too_slowly_is_a_408_not_a_hang() -> None:
    from aiohttp import StreamReader
    from aiohttp.base_protocol import BaseProtocol

    from proxy.bodies import read_capped

    class Open(BaseProtocol):
        connected = True  # a client that keeps its connection open

    loop = asyncio.get_running_loop()
    stream = StreamReader(Open(loop), limit=2**16, loop=loop)
    stream.feed_data(b'{"name": ')  # ...and then nothing more, ever
    with pytest.raises(BodyError) as caught:
        await read_capped(stream, None, 16384, timeout=0.2)
    assert caught.value.status == 408


def test_a_form_number_too_big_for_json_stays_text_for_the_validator() -> None:
    schema = FormSchema("n", {"type": "object", "properties": {"n": {"type": "integer"}},
                              "additionalProperties": False})
    fields = decode_form(b"n=" + b"9" * 40, schema)
    assert fields == {"n": "9" * 40}
    assert schema.problems(fields)[0].field == "n"
