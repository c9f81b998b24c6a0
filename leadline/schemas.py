"""The forms' JSON Schemas: one file per form in `schemas/`, the single source
of truth for the page's inputs, the browser's checks and the proxy's 422.

`FormSchema.errors()` turns jsonschema's findings into field-level messages in
plain words; it is pure and shared by the proxy (422) and the worker (poison
detection).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker, validators
from jsonschema.exceptions import SchemaError, ValidationError

from leadline.errors import ConfigError
from leadline.fastcheck import compile_check
from leadline.patterns import PatternError, compile_search, patterns_in

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas"
SCHEMA_SUFFIX = ".schema.json"
# The field bots fill and people never see; no schema may use the name.
HONEYPOT_FIELD = "website"
FORM_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


def _ecma_pattern(validator: Any, pattern: str, instance: object, schema: Mapping[str, Any]
                  ) -> Iterator[ValidationError]:
    """jsonschema's `pattern` keyword, matched as ECMA-262 (leadline.patterns says why)."""
    if validator.is_type(instance, "string") and not compile_search(pattern)(str(instance)):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


Validator = validators.extend(  # type: ignore[no-untyped-call]  # untyped in types-jsonschema
    Draft202012Validator, {"pattern": _ecma_pattern})


# A stable name for each kind of problem, so a page can word it in its own
# language; named after the JSON Schema keyword ("additional": a field the form
# does not have; "stamp": the proxy wants a proof of work; "invalid": the rest).
CODES = ("required", "type", "format", "pattern", "minLength", "maxLength", "minimum",
         "maximum", "enum", "const", "additional", "stamp", "invalid")
_KEYWORD_CODES = {"additionalProperties": "additional"}
# A field shows one problem: the first in this order (rules.js checks in it too),
# whatever order the schema lists its keywords in.
_FIRST = ("required", "type", "const", "enum", "minimum", "maximum", "minLength", "maxLength",
          "format", "pattern", "additional", "stamp", "invalid")


@dataclass(frozen=True, slots=True)
class FieldError:
    field: str
    message: str
    code: str = "invalid"

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "code": self.code, "message": self.message}


class FormSchema:
    """One form: its schema and a compiled validator."""

    def __init__(self, name: str, schema: Mapping[str, Any]) -> None:
        self.name = name
        self.schema = schema
        self.properties: Mapping[str, Any] = schema.get("properties", {})
        self._validator = Validator(schema, format_checker=FormatChecker())
        self._fast = compile_check(schema)

    @property
    def schema_id(self) -> str:
        return str(self.schema.get("$id", ""))

    @property
    def has_fast_check(self) -> bool:
        return self._fast is not None

    def is_valid(self, data: object) -> bool:
        """The fast check's "yes" when there is one; jsonschema has the last word on a "no"."""
        if self._fast is not None and self._fast(data):
            return True
        return self.jsonschema_accepts(data)

    def jsonschema_accepts(self, data: object) -> bool:
        """jsonschema's own answer: the authority the fast check is held equal to."""
        return bool(self._validator.is_valid(data))

    def problems(self, data: object) -> list[FieldError]:
        """None when valid; otherwise every problem, field by field (what a 422 lists)."""
        if self.is_valid(data):
            return []
        return self.errors(data) or [FieldError("", "the submission does not match the form")]

    def errors(self, data: object) -> list[FieldError]:
        """Every problem, one per field, in the order of the schema's properties."""
        by_field: dict[str, FieldError] = {}
        for error in self._validator.iter_errors(data):
            for found in self._describe(error, data):
                held = by_field.get(found.field)
                if held is None or _FIRST.index(found.code) < _FIRST.index(held.code):
                    by_field[found.field] = found
        order = {name: i for i, name in enumerate(self.properties)}
        return sorted(by_field.values(), key=lambda e: (order.get(e.field, len(order)), e.field))

    def _describe(self, error: ValidationError, data: object) -> list[FieldError]:
        kind = error.validator
        path = ".".join(str(p) for p in error.absolute_path)
        prop: Mapping[str, Any] = self.properties.get(path, {}) if path else {}
        if not path:
            if kind == "required" and isinstance(data, Mapping):
                required = self.schema.get("required", [])
                return [FieldError(f, "is required", "required") for f in required if f not in data]
            if kind == "additionalProperties" and isinstance(data, Mapping):
                return [FieldError(str(f), "is not a field of this form", "additional")
                        for f in data if f not in self.properties]
            if kind == "type":
                return [FieldError("", "the submission must be a JSON object of fields", "type")]
            return [FieldError("", str(error.message)[:200])]
        return [FieldError(path, _message(str(kind), error, prop), code_of(str(kind)))]


def code_of(keyword: str) -> str:
    """The stable code of a JSON Schema keyword's finding (CODES)."""
    code = _KEYWORD_CODES.get(keyword, keyword)
    return code if code in CODES else "invalid"


def _message(kind: str, error: ValidationError, prop: Mapping[str, Any]) -> str:
    """A field's problem in plain words; the schema may word it (`x-...-message`)."""
    expected: Any = error.validator_value
    value: Any = error.instance
    if kind == "type":
        return _type_message(expected)
    if kind == "const":
        return str(prop.get("x-const-message", "must be " + json.dumps(expected)))
    if kind == "enum":
        return "must be one of " + ", ".join(map(str, expected))
    if kind == "minLength":
        return "must not be empty" if expected == 1 else f"must be at least {expected} characters"
    if kind == "maxLength":
        return f"must be at most {expected} characters (it has {len(value)})"
    if kind in {"pattern", "format"}:
        return str(prop.get("x-pattern-message", "is not in the expected format"))
    return str(error.message)[:200]


def _type_message(expected: object) -> str:
    words = {"string": "text", "boolean": "true or false", "integer": "a whole number",
             "number": "a number", "array": "a list", "object": "an object"}
    if isinstance(expected, list):
        return "must be " + " or ".join(words.get(str(t), str(t)) for t in expected)
    return f"must be {words.get(str(expected), str(expected))}"


def load_schemas(directory: Path = SCHEMA_DIR) -> dict[str, FormSchema]:
    """Every `<form>.schema.json` in `directory`, checked against the 2020-12 metaschema."""
    forms: dict[str, FormSchema] = {}
    if not directory.is_dir():
        raise ConfigError("SCHEMA_DIR", f"{directory} is not a folder of JSON Schemas")
    for path in sorted(directory.glob(f"*{SCHEMA_SUFFIX}")):
        name = path.name[: -len(SCHEMA_SUFFIX)]
        if not FORM_NAME.match(name):
            raise ConfigError("SCHEMA_DIR", f"{path.name}: a form name is a-z, 0-9, - and _")
        try:
            schema = json.loads(path.read_text(encoding="utf-8"))
            Draft202012Validator.check_schema(schema)
            for pattern in patterns_in(schema):
                compile_search(pattern)
        except (json.JSONDecodeError, SchemaError, PatternError) as exc:
            reason = str(exc).splitlines()[0]
            raise ConfigError("SCHEMA_DIR", f"{path.name} is not a valid JSON Schema: {reason}") from None
        if HONEYPOT_FIELD in schema.get("properties", {}):
            raise ConfigError("SCHEMA_DIR", f"{path.name}: {HONEYPOT_FIELD!r} is the honeypot's name")
        forms[name] = FormSchema(name, schema)
    if not forms:
        raise ConfigError("SCHEMA_DIR", f"no *{SCHEMA_SUFFIX} file in {directory}")
    return forms
