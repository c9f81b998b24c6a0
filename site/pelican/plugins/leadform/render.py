"""One form's HTML, from its schema: the inputs, the plain-HTML checks that
work without JavaScript, and the embedded rules the outbox checks at submit."""

from __future__ import annotations

import json
from html import escape
from typing import Any

from .forms import HONEYPOT_FIELD, Form
from .settings import Settings

# Longer strings than this get a textarea even without `x-widget: textarea`.
LONG_TEXT = 500
INPUT_WIDGETS = {"text", "email", "tel", "url", "search"}


def _attrs(**values: str | int | bool | None) -> str:
    out = []
    for key, value in values.items():
        name = key.rstrip("_").replace("_", "-")
        if value is None or value is False:
            continue
        out.append(f" {name}" if value is True else f' {name}="{escape(str(value))}"')
    return "".join(out)


def html_pattern(pattern: str) -> str:
    """A JSON Schema pattern (found anywhere in the value) as an HTML `pattern`
    (which must match the whole value): `[\\s\\S]*` on both sides keeps the meaning."""
    return f"[\\s\\S]*(?:{pattern})[\\s\\S]*"


def _field(form: Form, name: str, prop: dict[str, Any]) -> str:
    fid = f"leadform-{form.name}-{name}"
    required = name in form.required or prop.get("const") is True
    label = escape(str(prop.get("title") or name.replace("_", " ").capitalize()))
    mark = "" if required else ' <span class="optional">(optional)</span>'
    help_text = prop.get("description")
    described = f"{fid}-error" + (f" {fid}-help" if help_text else "")
    common: dict[str, Any] = {"id": fid, "name": name, "required": required,
                              "aria_describedby": described}
    kind = prop.get("type")
    widget = prop.get("x-widget")
    cls = "field"
    if kind == "boolean":
        cls += " field-check"
        control = f"<input{_attrs(type='checkbox', value='true', **common)}>"
        parts = [control, f'<label for="{fid}">{label}{mark}</label>']
    else:
        if "enum" in prop:
            options = "".join(f'<option value="{escape(str(v))}">{escape(str(v))}</option>'
                              for v in prop["enum"])
            control = f'<select{_attrs(**common)}><option value="">Choose…</option>{options}</select>'
        else:
            text_attrs: dict[str, Any] = {
                "minlength": prop.get("minLength"), "maxlength": prop.get("maxLength"),
                "autocomplete": prop.get("x-autocomplete"),
            }
            long_text = widget == "textarea" or prop.get("maxLength", 0) > LONG_TEXT
            if kind == "string" and long_text:
                control = f'<textarea{_attrs(rows=5, **common, **text_attrs)}></textarea>'
            elif kind == "string":
                fmt = {"email": "email", "uri": "url"}.get(prop.get("format", ""), "text")
                itype = widget if widget in INPUT_WIDGETS else fmt
                pattern = html_pattern(prop["pattern"]) if "pattern" in prop else None
                control = f"<input{_attrs(type=itype, **common, **text_attrs, pattern=pattern)}>"
            else:
                num = _attrs(type="number", step=1 if kind == "integer" else "any",
                             min=prop.get("minimum"), max=prop.get("maximum"), **common)
                control = f"<input{num}>"
        parts = [f'<label for="{fid}">{label}{mark}</label>', control]
    if help_text:
        parts.append(f'<p class="help" id="{fid}-help">{escape(str(help_text))}</p>')
    parts.append(f'<p class="error" id="{fid}-error"></p>')
    return f'<div class="{cls}" data-field="{escape(name)}">{"".join(parts)}</div>'


def render(form: Form, settings: Settings) -> str:
    """The whole `<form>`; `data-state` and `role="status"` are the page's contract."""
    fid = f"leadform-{form.name}"
    title = form.schema.get("title")
    intro = form.schema.get("description")
    head = f'<h2 id="{fid}-title">{escape(str(title))}</h2>' if title else ""
    if intro:
        head += f'<p class="leadform-intro">{escape(str(intro))}</p>'
    fields = "".join(_field(form, name, prop) for name, prop in form.properties.items())
    # Bots fill every input; people never see this one (hidden, out of the tab order).
    trap_attrs = _attrs(id=f"{fid}-{HONEYPOT_FIELD}", type="text", name=HONEYPOT_FIELD,
                        tabindex=-1, autocomplete="off")
    trap = (f'<div class="leadform-hp" aria-hidden="true"><label for="{fid}-{HONEYPOT_FIELD}">'
            f"Leave this empty</label><input{trap_attrs}></div>")
    # JSON inside <script>: "<" escaped so no value can close the element.
    rules = json.dumps(form.rules(), separators=(",", ":"), ensure_ascii=False).replace("<", "\\u003c")
    labelled = f' aria-labelledby="{fid}-title"' if title else ""
    return (
        f'<form class="leadform" id="{fid}" data-leadform="{form.name}" data-state="idle"'
        f' data-stamp-bits="{settings.stamp_bits}" data-sw="{escape(settings.sw_url)}"'
        f' action="{escape(settings.action(form.name))}" method="post" accept-charset="utf-8"{labelled}>'
        f"{head}{fields}{trap}"
        f'<button type="submit">{escape(settings.submit_label)}</button>'
        f'<p class="leadform-status" role="status" aria-live="polite" id="{fid}-status"></p>'
        f'<script type="application/json" class="leadform-rules">{rules}</script>'
        "</form>"
    )
