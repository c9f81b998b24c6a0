"""The forms' JSON Schemas, read from `schemas/<form>.schema.json`.

A file that cannot be used is logged with its name and skipped, so one broken
schema costs its own form, never the whole build.

The editor's words (`title`, `description`, `x-pattern-message`,
`x-const-message`, and `x-submit-label` at the root) may be given per
language in `x-i18n`, at the schema's root and on each property:

    "x-i18n": {"de": {"title": "Ihr Name", "x-pattern-message": "darf nicht leer sein"}}

A page takes its language's words (its full tag first, `de-AT`, then the
primary subtag, `de`), else the schema's own. `x-i18n` is an annotation: the
proxy's validator and its fast check ignore it.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from .texts import primary

log = logging.getLogger(__name__)

SUFFIX = ".schema.json"
FORM_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
# Must equal leadline.schemas.HONEYPOT_FIELD (a test checks): the proxy drops
# submissions that fill it. Kept here so the plugin needs no import from the app.
HONEYPOT_FIELD = "website"
FIELD_TYPES = {"string", "boolean", "integer", "number"}
# The keywords the browser checks (leadform.js/rules.js); the plugin embeds
# exactly these, so the page and the proxy judge a submission by the same rules.
RULE_KEYS = ("type", "const", "enum", "minLength", "maxLength", "pattern", "format",
             "minimum", "maximum", "x-pattern-message", "x-const-message")
I18N = "x-i18n"
# The words an editor may give per language, in `x-i18n`.
WORDS = ("title", "description", "x-pattern-message", "x-const-message", "x-submit-label")


def words(node: dict[str, Any], key: str, lang: str) -> Any:
    """`node[key]` in the page's language: `x-i18n` by full tag, then primary subtag, then as is."""
    given = node.get(I18N)
    if isinstance(given, dict):
        for tag in (lang.strip().lower(), primary(lang)):
            local = given.get(tag)
            if isinstance(local, dict) and key in local:
                return local[key]
    return node.get(key)


@dataclass(frozen=True, slots=True)
class Form:
    name: str
    schema: dict[str, Any]

    @property
    def properties(self) -> dict[str, dict[str, Any]]:
        props: dict[str, dict[str, Any]] = self.schema.get("properties", {})
        return props

    @property
    def required(self) -> list[str]:
        return list(self.schema.get("required", []))

    def text(self, key: str, lang: str, field: str | None = None) -> Any:
        """The schema's (or a field's) `key` in the page's language, None when not given."""
        return words(self.schema if field is None else self.properties[field], key, lang)

    def rules(self, lang: str = "") -> dict[str, Any]:
        """The schema subset the browser checks before anything leaves the page,
        its messages in the page's language."""
        def subset(prop: dict[str, Any]) -> dict[str, Any]:
            return {k: words(prop, k, lang) if k.startswith("x-") else prop[k]
                    for k in RULE_KEYS if k in prop}

        return {
            "required": self.required,
            "properties": {name: subset(prop) for name, prop in self.properties.items()},
        }


def load(directory: Path) -> dict[str, Form]:
    """Every usable form in `directory`, by name."""
    if not directory.is_dir():
        log.error("leadform: schema folder %s does not exist; no form can be rendered", directory)
        return {}
    forms: dict[str, Form] = {}
    for path in sorted(directory.glob(f"*{SUFFIX}")):
        form = _read(path)
        if form is not None:
            forms[form.name] = form
    if not forms:
        log.error("leadform: no usable *%s file in %s", SUFFIX, directory)
    return forms


def _read(path: Path) -> Form | None:
    name = path.name[: -len(SUFFIX)]
    if not FORM_NAME.match(name):
        log.error("leadform: %s: a form name is a-z, 0-9, - and _; skipped", path.name)
        return None
    try:
        schema = json.loads(path.read_text(encoding="utf-8"))
        Draft202012Validator.check_schema(schema)
    except (OSError, ValueError, SchemaError) as exc:
        reason = str(exc).splitlines()[0]
        log.error("leadform: %s is not a valid JSON Schema (%s); skipped", path.name, reason)
        return None
    props = schema.get("properties")
    if schema.get("type") != "object" or not isinstance(props, dict) or not props:
        log.error("leadform: %s must describe an object with properties; skipped", path.name)
        return None
    if HONEYPOT_FIELD in props:
        log.error("leadform: %s: %r is the honeypot's name; skipped", path.name, HONEYPOT_FIELD)
        return None
    bad = _bad_i18n(schema)
    if bad:
        log.error("leadform: %s: %s; skipped", path.name, bad)
        return None
    for field, prop in props.items():
        if prop.get("type") not in FIELD_TYPES:
            log.error("leadform: %s: field %r has type %r; a form field is one of %s; skipped",
                      path.name, field, prop.get("type"), ", ".join(sorted(FIELD_TYPES)))
            return None
    return Form(name, schema)


def _bad_i18n(schema: dict[str, Any]) -> str | None:
    """What is wrong with the schema's `x-i18n` objects, or None."""
    nodes = [("the schema", schema)]
    nodes += [(f"field {name!r}", prop) for name, prop in schema["properties"].items()
              if isinstance(prop, dict)]
    for where, node in nodes:
        given = node.get(I18N)
        if given is None:
            continue
        if not isinstance(given, dict):
            return f"{I18N} of {where} must be an object of languages"
        for lang, local in given.items():
            if not isinstance(local, dict) or not all(isinstance(v, str) for v in local.values()):
                return f"{I18N}[{lang!r}] of {where} must be an object of strings"
            unknown = sorted(set(local) - set(WORDS))
            if unknown:
                return f"{I18N}[{lang!r}] of {where} has {unknown[0]!r}; it may give {', '.join(WORDS)}"
    return None
