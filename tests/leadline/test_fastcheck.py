"""The fast check agrees with jsonschema on every input (hypothesis)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leadline.fastcheck import compile_check
from leadline.schemas import FormSchema, load_schemas

FORMS = load_schemas()
LEAD = FORMS["lead"]

# Strings near the edges of the lead schema: blank, e-mail-ish, long, unicode.
interesting_text = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["", " ", "\t\n", "a", "@", "a@b", "a@b.c", "ada@example.com", "a b@c.d",
                     "ada@@example.com", "x" * 120, "x" * 121, "é" * 121, "@" * 254, "\u3000"]),
    st.builds(lambda a, b, c: f"{a}@{b}.{c}", st.text(max_size=5), st.text(max_size=5),
              st.text(max_size=3)),
    st.text(min_size=115, max_size=260),
)
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
                    interesting_text)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=5)
email_like = st.from_regex(r"[a-z.+]{1,6}@[a-z-]{1,6}\.[a-z]{1,4}", fullmatch=True)
emails = st.one_of(email_like, email_like, email_like, interesting_text)
# Mostly valid leads, each part sometimes wrong: the cases at the boundary.
near_valid = st.fixed_dictionaries(
    {"name": st.text(min_size=0, max_size=121), "email": emails,
     "consent": st.sampled_from([True, True, True, True, False, None, 1, "true"])},
    optional={"company": st.one_of(st.text(max_size=125), scalars),
              "message": st.text(max_size=50)})
field_names = st.sampled_from([*LEAD.properties, "website", "extra", ""])
submissions = st.one_of(
    near_valid,
    st.dictionaries(field_names, st.one_of(scalars, json_values), max_size=7),
    st.fixed_dictionaries({"name": interesting_text, "email": interesting_text,
                           "consent": st.one_of(st.just(True), scalars)},
                          optional={"company": interesting_text, "message": interesting_text}),
    json_values,
)


@settings(max_examples=600, deadline=None)
@given(submissions)
def test_fast_check_accepts_exactly_what_jsonschema_accepts(data: Any) -> None:
    fast = compile_check(LEAD.schema)
    assert fast is not None
    assert fast(data) == LEAD.jsonschema_accepts(data)


@settings(max_examples=300, deadline=None)
@given(near_valid)
def test_fast_check_agrees_with_jsonschema_on_nearly_valid_leads(data: Any) -> None:
    fast = compile_check(LEAD.schema)
    assert fast is not None
    assert fast(data) == LEAD.jsonschema_accepts(data)


@settings(max_examples=150, deadline=None)
@given(submissions)
def test_problems_are_reported_exactly_when_jsonschema_refuses(data: Any) -> None:
    problems = LEAD.problems(data)
    assert LEAD.is_valid(data) == LEAD.jsonschema_accepts(data)
    assert problems == ([] if LEAD.jsonschema_accepts(data) else LEAD.errors(data))


@pytest.mark.parametrize("schema", [
    {"type": "object", "properties": {"n": {"type": "integer"}}, "additionalProperties": False},
    {"type": "object", "properties": {"n": {"type": "string", "format": "date"}},
     "additionalProperties": False},
    {"type": "object", "properties": {"n": {"type": "string"}}},
    {"type": "object", "patternProperties": {"^x": {}}, "additionalProperties": False},
    {"type": "object", "properties": {"n": {"anyOf": [{"type": "string"}]}}, "additionalProperties": False},
])
def test_schemas_the_fast_check_does_not_mirror_fall_back_to_jsonschema(schema: dict[str, Any]) -> None:
    assert compile_check(schema) is None
    form = FormSchema("other", schema)
    assert not form.has_fast_check
    assert form.is_valid({"n": "x"}) == form.jsonschema_accepts({"n": "x"})
    assert form.problems({"n": "x"}) == form.errors({"n": "x"})


def test_the_lead_form_has_a_fast_check() -> None:
    assert LEAD.has_fast_check
