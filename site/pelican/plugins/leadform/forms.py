"""The forms' JSON Schemas, read from `schemas/<form>.schema.json`.

A file that cannot be used is logged with its name and skipped, so one broken
schema costs its own form, never the whole build.
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

    def rules(self) -> dict[str, Any]:
        """The schema subset the browser checks before anything leaves the page."""
        return {
            "required": self.required,
            "properties": {
                name: {k: prop[k] for k in RULE_KEYS if k in prop}
                for name, prop in self.properties.items()
            },
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
    for field, prop in props.items():
        if prop.get("type") not in FIELD_TYPES:
            log.error("leadform: %s: field %r has type %r; a form field is one of %s; skipped",
                      path.name, field, prop.get("type"), ", ".join(sorted(FIELD_TYPES)))
            return None
    return Form(name, schema)
