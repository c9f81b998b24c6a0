"""A fast "is it valid?" for form schemas, equal to jsonschema's answer.

jsonschema is the authority, but walking its validator costs more than the
rest of a proxy request (or a worker's intake check) together. Forms are flat
objects of scalars, so `compile_check` turns such a schema into one closure
that answers with plain `isinstance`, `len` and regex calls, each keyword
mirroring jsonschema's own implementation. A schema using anything it does
not mirror gets no fast check and always goes through jsonschema.
`FormSchema.is_valid` uses it; a hypothesis test holds it equal to jsonschema.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from leadline.patterns import PatternError, compile_search

Check = Callable[[object], bool]

# Keywords that never change whether an instance is valid.
_ANNOTATIONS = frozenset({"$schema", "$id", "$comment", "title", "description", "default",
                          "examples", "readOnly", "writeOnly", "deprecated"})
_OBJECT_KEYWORDS = frozenset({"type", "properties", "required", "additionalProperties"})
_FIELD_KEYWORDS = frozenset({"type", "minLength", "maxLength", "pattern", "format", "const", "enum"})
# The formats whose check jsonschema's FormatChecker makes is `"@" in value`.
_EMAIL_FORMATS = frozenset({"email", "idn-email"})
_TYPES: dict[str, Callable[[object], bool]] = {
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


class Unsupported(Exception):
    """The schema uses something the fast check does not mirror."""


def compile_check(schema: Mapping[str, Any]) -> Check | None:
    """A fast equivalent of `Draft202012Validator(schema).is_valid`, or None."""
    try:
        return _object_check(schema)
    except Unsupported:
        return None


def _keywords(schema: Mapping[str, Any]) -> set[str]:
    return {k for k in schema if k not in _ANNOTATIONS and not k.startswith("x-")}


def _object_check(schema: Mapping[str, Any]) -> Check:
    if not isinstance(schema, Mapping) or _keywords(schema) - _OBJECT_KEYWORDS:
        raise Unsupported
    if schema.get("type", "object") != "object" or schema.get("additionalProperties", True) is not False:
        raise Unsupported
    required = tuple(schema.get("required", ()))
    fields = {name: _field_check(sub) for name, sub in schema.get("properties", {}).items()}
    if not all(isinstance(name, str) for name in required):
        raise Unsupported

    def check(instance: object) -> bool:
        if type(instance) is not dict:
            return False
        for name in required:
            if name not in instance:
                return False
        for name, value in instance.items():
            field = fields.get(name)
            if field is None or not field(value):
                return False
        return True

    return check


def _field_check(schema: object) -> Check:
    if not isinstance(schema, Mapping) or _keywords(schema) - _FIELD_KEYWORDS:
        raise Unsupported
    parts: list[Check] = []
    if "type" in schema:
        kind = schema["type"]
        if not isinstance(kind, str) or kind not in _TYPES:
            raise Unsupported
        parts.append(_TYPES[kind])
    if "minLength" in schema:
        low = _length(schema["minLength"])
        parts.append(lambda v: not isinstance(v, str) or len(v) >= low)
    if "maxLength" in schema:
        high = _length(schema["maxLength"])
        parts.append(lambda v: not isinstance(v, str) or len(v) <= high)
    if "pattern" in schema:
        try:
            search = compile_search(schema["pattern"])
        except PatternError:
            raise Unsupported from None
        parts.append(lambda v: not isinstance(v, str) or search(v))
    if "format" in schema:
        if schema["format"] not in _EMAIL_FORMATS:
            raise Unsupported
        parts.append(lambda v: not isinstance(v, str) or "@" in v)
    if "const" in schema:
        parts.append(_equals_one_of((schema["const"],)))
    if "enum" in schema:
        parts.append(_equals_one_of(tuple(schema["enum"])))

    checks = tuple(parts)

    def check(value: object) -> bool:
        for part in checks:  # noqa: SIM110 - no generator per field per request
            if not part(value):
                return False
        return True

    return check


def _length(value: object) -> int:
    if type(value) is not int or value < 0:
        raise Unsupported
    return value


def _equals_one_of(options: tuple[object, ...]) -> Check:
    """jsonschema's `equal` for scalar options: a bool is never equal to a number."""
    for option in options:
        if option is not None and type(option) not in (str, bool):
            raise Unsupported

    def check(value: object) -> bool:
        return any(_same(value, option) for option in options)

    return check


def _same(value: object, option: object) -> bool:
    if isinstance(option, str):
        return value == option
    return value is option  # True, False and None are singletons

