"""How a form's fields become a CRM's fields: a default per vendor, or a mapping file.

A mapping file sits beside the form's schema, `schemas/<form>.crm.json`, one
section per vendor; a section replaces that vendor's default for the form:

    {
      "hubspot":    {"email": "email", "firstname": {"from": "name", "take": "first_name"}},
      "salesforce": {"Company": {"from": "company", "default": "[not provided]"}},
      "pipedrive":  {"person.name": "name", "lead.title": {"template": "Web lead: {name}"}},
      "webhook":    {"contact": "email"}
    }

A target's source is one of:
- `"email"`: a field of the form (left out when the visitor left it empty);
- `"$submission_id"`, `"$form"`, `"$received_at"`, `"$schema"`: what Leadline knows;
  `"$stamp"`: the proxy's verdict on the spam stamp (`valid`, `missing`, `invalid`;
  left out when the proxy did not check, SPAM_STAMP=off);
- `{"from": "name", "take": "first_name" | "last_name"}`: the name split at its
  last space (one word is the last name);
- `{"template": "{name} at {company}"}`: text with fields (and `{$form}`…) filled in;
- `{"value": …}`: a constant;
and any of them may add `"default": …` (used when the value is empty) and
`"max_length": N` (text cut to N characters).

Pipedrive's targets name their object: `person.<field>`, `lead.<field>` or
`note.content`. Without a webhook section the webhook gets every field as sent.
`load_mappings` checks everything against the form's schema at start and
reports one line per problem; `apply` is pure.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from leadline.errors import ConfigError
from leadline.schemas import SCHEMA_DIR, FormSchema
from worker.crm.base import Lead

MAPPING_SUFFIX = ".crm.json"
BUILTINS = ("$submission_id", "$form", "$received_at", "$schema", "$stamp")
TAKES = ("first_name", "last_name")
VENDORS = ("webhook", "hubspot", "salesforce", "pipedrive")
_SOURCE_KEYS = frozenset({"from", "take", "template", "value", "default", "max_length"})
_TARGET = {
    "hubspot": re.compile(r"^[a-z0-9_]{1,100}$"),
    "salesforce": re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,79}$"),
    "pipedrive": re.compile(r"^(person\.[a-z0-9_]{1,64}|lead\.[a-z0-9_]{1,64}|note\.content)$"),
    "webhook": re.compile(r"^[A-Za-z0-9_.-]{1,100}$"),
}
_TARGET_HINT = {
    "hubspot": "a HubSpot property's internal name (lowercase letters, digits, _)",
    "salesforce": "a Salesforce field's API name (such as Company or Lead_Score__c)",
    "pipedrive": "person.<field>, lead.<field> or note.content",
    "webhook": "a JSON key (letters, digits, _ . -)",
}


class ConfigProblems(ConfigError):
    """Several settings problems at once: one line each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("CRM mapping", "; ".join(problems))
        self.problems = problems

    def __str__(self) -> str:
        return "\n".join(self.problems)


@dataclass(frozen=True, slots=True)
class Source:
    field: str = ""  # a form field, or one of BUILTINS
    take: str = ""  # first_name | last_name
    template: str = ""
    value: Any = None
    default: Any = None
    max_length: int | None = None

    def fields_used(self) -> list[str]:
        if self.template:
            return [name for _, name, _, _ in string.Formatter().parse(self.template) if name]
        return [self.field] if self.field else []

    def resolve(self, lead: Lead) -> Any:
        if self.template:
            values = {name: _text(_lookup(lead, name)) for name in self.fields_used()}
            result: Any = self.template.format_map(values).strip()
        elif self.field:
            result = _lookup(lead, self.field)
            if self.take:
                result = split_name(_text(result))[0 if self.take == "first_name" else 1]
        else:
            result = self.value
        if _empty(result):
            result = self.default
        if isinstance(result, str) and self.max_length is not None:
            result = result[: self.max_length].rstrip()
        return result


@dataclass(frozen=True, slots=True)
class FormMapping:
    """target -> source, for one form and one vendor; empty means 'every field as sent'."""

    targets: Mapping[str, Source] = field(default_factory=dict)

    def apply(self, lead: Lead) -> dict[str, Any]:
        if not self.targets:
            return dict(lead.fields)
        out: dict[str, Any] = {}
        for target, source in self.targets.items():
            value = source.resolve(lead)
            if not _empty(value):
                out[target] = value
        return out


def split_name(name: str) -> tuple[str, str]:
    """`"Ada King Lovelace"` -> `("Ada King", "Lovelace")`; one word is the last name."""
    first, _, last = " ".join(name.split()).rpartition(" ")
    return first, last


def _lookup(lead: Lead, name: str) -> Any:
    builtin = {"$submission_id": lead.submission_id, "$form": lead.form,
               "$received_at": lead.received_at, "$schema": lead.schema_id, "$stamp": lead.stamp}
    return builtin[name] if name in builtin else lead.fields.get(name)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _name_source(take: str, max_length: int | None = None) -> Source:
    return Source(field="name", take=take, max_length=max_length)


# The defaults the README names for the lead form; for another form each target
# whose field the form lacks is left out.
DEFAULTS: dict[str, dict[str, Source]] = {
    "webhook": {},
    "hubspot": {
        "email": Source(field="email"),
        "firstname": _name_source("first_name"),
        "lastname": _name_source("last_name"),
        "company": Source(field="company"),
        "message": Source(field="message"),
        "leadline_submission_id": Source(field="$submission_id"),
    },
    "salesforce": {
        "Email": Source(field="email"),
        # Salesforce's own lengths: a longer value would refuse the whole lead.
        "FirstName": _name_source("first_name", 40),
        "LastName": _name_source("last_name", 80),
        # Salesforce requires a company on a Lead.
        "Company": Source(field="company", default="[not provided]", max_length=255),
        "Description": Source(field="message", max_length=32000),
    },
    "pipedrive": {
        "person.name": Source(field="name"),
        "person.email": Source(field="email"),
        "lead.title": Source(template="Web lead: {name}", default="Web lead", max_length=255),
        "note.content": Source(field="message"),
    },
}


def default_mapping(vendor: str, form: FormSchema) -> FormMapping:
    known = set(form.properties) | set(BUILTINS)
    kept = {target: source for target, source in DEFAULTS[vendor].items()
            if all(name in known for name in source.fields_used())}
    return FormMapping(kept)


def load_mappings(vendor: str, forms: Mapping[str, FormSchema],
                  directory: Path = SCHEMA_DIR) -> dict[str, FormMapping]:
    """Each form's mapping for `vendor`; every problem in every file, one line each."""
    if vendor not in VENDORS:
        raise ConfigError("CRM", f"{vendor!r} is not one of {', '.join(VENDORS)}")
    mappings: dict[str, FormMapping] = {}
    problems: list[str] = []
    for name, form in forms.items():
        path = directory / f"{name}{MAPPING_SUFFIX}"
        if not path.exists():
            mappings[name] = default_mapping(vendor, form)
            continue
        where = path.name
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            problems.append(f"{where}: not readable JSON: {exc}")
            continue
        if not isinstance(document, dict):
            problems.append(f"{where}: must be a JSON object with a section per CRM ({', '.join(VENDORS)})")
            continue
        problems += [f"{where}: {key!r} is not a CRM (use {', '.join(VENDORS)})"
                     for key in document if key not in VENDORS]
        section = document.get(vendor)
        if section is None:
            mappings[name] = default_mapping(vendor, form)
            continue
        mapping, found = parse_section(vendor, section, form, f"{where}: {vendor}")
        problems += found
        mappings[name] = mapping
    if problems:
        raise ConfigProblems(problems)
    return mappings


def parse_section(vendor: str, section: object, form: FormSchema,
                  where: str) -> tuple[FormMapping, list[str]]:
    """A vendor section of a mapping file, checked against the form; pure."""
    if not isinstance(section, dict) or not section:
        return FormMapping(), [f"{where}: must be an object of target field -> source"]
    problems: list[str] = []
    targets: dict[str, Source] = {}
    for target, spec in section.items():
        here = f"{where}.{target}"
        if not _TARGET[vendor].match(target):
            problems.append(f"{here}: not {_TARGET_HINT[vendor]}")
            continue
        source, found = _parse_source(spec, form, here)
        problems += found
        if source is not None:
            targets[target] = source
    return FormMapping(targets), problems


def _parse_source(spec: object, form: FormSchema, where: str) -> tuple[Source | None, list[str]]:
    known = set(form.properties) | set(BUILTINS)
    fields_hint = ", ".join([*form.properties, *BUILTINS])
    if isinstance(spec, str):
        spec = {"from": spec}
    if not isinstance(spec, dict):
        return None, [f"{where}: must be a field name or an object such as {{\"from\": \"name\"}}"]
    problems = [f"{where}: unknown key {key!r} (use {', '.join(sorted(_SOURCE_KEYS))})"
                for key in spec if key not in _SOURCE_KEYS]
    kinds = [key for key in ("from", "template", "value") if key in spec]
    if len(kinds) != 1:
        return None, [*problems, f"{where}: needs exactly one of from, template or value"]
    source_field = spec.get("from", "")
    template = spec.get("template", "")
    take = spec.get("take", "")
    max_length = spec.get("max_length")
    if "from" in spec and (not isinstance(source_field, str) or source_field not in known):
        problems.append(f"{where}: {source_field!r} is not a field of form {form.name!r} ({fields_hint})")
    if "template" in spec:
        if not isinstance(template, str):
            problems.append(f"{where}: a template is text such as \"{{name}} at {{company}}\"")
            template = ""
        else:
            try:
                used = [n for _, n, _, _ in string.Formatter().parse(template) if n is not None]
            except ValueError as exc:
                problems.append(f"{where}: the template is malformed: {exc}")
                used = []
            problems += [f"{where}: the template names {n!r}, which is not a field of form {form.name!r}"
                         for n in used if n not in known]
    if take and (take not in TAKES or "from" not in spec):
        problems.append(f"{where}: take must be first_name or last_name, with from")
    if max_length is not None and (not isinstance(max_length, int) or isinstance(max_length, bool)
                                   or max_length < 1):
        problems.append(f"{where}: max_length must be a whole number of at least 1")
    if problems:
        return None, problems
    return Source(field=source_field if isinstance(source_field, str) else "", take=take,
                  template=template, value=spec.get("value"), default=spec.get("default"),
                  max_length=max_length), []
