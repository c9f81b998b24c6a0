from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from leadline.errors import ConfigError
from leadline.schemas import CODES, HONEYPOT_FIELD, SCHEMA_DIR, FieldError, code_of, load_schemas

VALID = {"name": "Ada Lovelace", "email": "ada@example.com", "consent": True}


@pytest.mark.parametrize("path", sorted(SCHEMA_DIR.glob("*.schema.json")), ids=lambda p: p.name)
def test_every_schema_is_valid_2020_12_with_a_versioned_id(path: Path) -> None:
    schema = json.loads(path.read_text())
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)
    assert "/1." in schema["$id"] or "/v" in schema["$id"], "the $id carries a version"


def test_lead_schema_matches_the_design() -> None:
    lead = load_schemas()["lead"]
    assert set(lead.properties) == {"name", "email", "company", "message", "consent"}
    assert set(lead.schema["required"]) == {"name", "email", "consent"}
    assert lead.schema["additionalProperties"] is False
    assert lead.is_valid(VALID)
    assert lead.is_valid({**VALID, "company": "Analytical Engines", "message": "Hello"})


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"email": "ada@example.com", "consent": True}, [FieldError("name", "is required", "required")]),
        ({**VALID, "email": "ada"},
         [FieldError("email", "must be an e-mail address such as ada@example.com", "format")]),
        ({**VALID, "consent": False},
         [FieldError("consent", "must be ticked so that we may contact you", "const")]),
        ({**VALID, "consent": "yes"}, [FieldError("consent", "must be true or false", "type")]),
        ({**VALID, "name": "   "}, [FieldError("name", "must not be blank", "pattern")]),
        ({**VALID, "shoe_size": 44}, [FieldError("shoe_size", "is not a field of this form", "additional")]),
        ({**VALID, "name": "x" * 121},
         [FieldError("name", "must be at most 120 characters (it has 121)", "maxLength")]),
        ([1, 2], [FieldError("", "the submission must be a JSON object of fields", "type")]),
    ],
)
def test_errors_name_the_field_and_say_why_in_plain_words(data: object, expected: list[FieldError]) -> None:
    assert load_schemas()["lead"].errors(data) == expected


def test_every_code_is_a_stable_name() -> None:
    assert code_of("additionalProperties") == "additional"
    assert code_of("maxLength") == "maxLength"
    assert code_of("dependentRequired") == "invalid"  # a keyword without a code of its own
    assert {"required", "stamp", "invalid"} <= set(CODES)


def test_several_problems_come_back_in_form_order() -> None:
    errors = load_schemas()["lead"].errors({"consent": False, "email": "x"})
    assert [e.field for e in errors] == ["name", "email", "consent"]


def test_a_broken_schema_stops_loading_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "lead.schema.json").write_text('{"type": 12}')
    with pytest.raises(ConfigError, match=r"^SCHEMA_DIR: lead.schema.json is not a valid JSON Schema"):
        load_schemas(tmp_path)


def test_a_schema_may_not_use_the_honeypot_name(tmp_path: Path) -> None:
    schema = {"type": "object", "properties": {HONEYPOT_FIELD: {"type": "string"}}}
    (tmp_path / "contact.schema.json").write_text(json.dumps(schema))
    with pytest.raises(ConfigError, match="honeypot"):
        load_schemas(tmp_path)
