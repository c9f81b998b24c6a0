"""One form's HTML, from its schema: the inputs, the plain-HTML checks that
work without JavaScript, the embedded rules the outbox checks at submit, and
the texts the script speaks, all in the page's language (texts.py)."""

from __future__ import annotations

import json
from html import escape
from typing import Any

from .forms import HONEYPOT_FIELD, Form
from .settings import Settings
from .texts import reduce, texts

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


def _json(value: Any) -> str:
    """JSON for inside <script>: "<" escaped so no value can close the element."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).replace("<", "\\u003c")


def _field(form: Form, name: str, prop: dict[str, Any], lang: str) -> str:
    fid = f"leadform-{form.name}-{name}"
    chrome = texts(lang)["chrome"]
    required = name in form.required or prop.get("const") is True
    label = escape(str(form.text("title", lang, name) or name.replace("_", " ").capitalize()))
    mark = "" if required else f' <span class="optional">{escape(chrome["optional"])}</span>'
    help_text = form.text("description", lang, name)
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
            choose = f'<option value="">{escape(chrome["choose"])}</option>'
            control = f"<select{_attrs(**common)}>{choose}{options}</select>"
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


def submit_label(form: Form, settings: Settings, lang: str) -> str:
    """The schema's `x-submit-label` for this language, else LEADFORM["submit_label"]
    on pages in the site's language, else the built-in words."""
    local = form.text("x-submit-label", lang)
    if local:
        return str(local)
    if settings.submit_label and reduce(lang) == reduce(settings.lang):
        return settings.submit_label
    return str(texts(lang)["chrome"]["submit"])


def render(form: Form, settings: Settings, lang: str | None = None) -> str:
    """The whole `<form>` for a page in `lang` (its Pelican `lang`; default the
    site's); `data-state` and `role="status"` are the page's contract."""
    lang = lang or settings.lang
    code = reduce(lang)
    fid = f"leadform-{form.name}"
    title = form.text("title", lang)
    intro = form.text("description", lang)
    head = f'<h2 id="{fid}-title">{escape(str(title))}</h2>' if title else ""
    if intro:
        head += f'<p class="leadform-intro">{escape(str(intro))}</p>'
    fields = "".join(_field(form, name, prop, lang) for name, prop in form.properties.items())
    # Bots fill every input; people never see this one (hidden, out of the tab order).
    trap_attrs = _attrs(id=f"{fid}-{HONEYPOT_FIELD}", type="text", name=HONEYPOT_FIELD,
                        tabindex=-1, autocomplete="off")
    trap = (f'<div class="leadform-hp" aria-hidden="true"><label for="{fid}-{HONEYPOT_FIELD}">'
            f"{escape(texts(lang)['chrome']['honeypot'])}</label><input{trap_attrs}></div>")
    # What the script says, in this page's language only.
    said = {k: texts(lang)[k] for k in ("say", "this", "types", "errors", "other")}
    labelled = f' aria-labelledby="{fid}-title"' if title else ""
    return (
        f'<form class="leadform" id="{fid}" data-leadform="{form.name}" data-state="idle" lang="{code}"'
        f' data-stamp-bits="{settings.stamp_bits}" data-sw="{escape(settings.sw_url)}"'
        f' action="{escape(settings.action(form.name, code))}" method="post"'
        f' accept-charset="utf-8"{labelled}>'
        f"{head}{fields}{trap}"
        f'<button type="submit">{escape(submit_label(form, settings, lang))}</button>'
        f'<p class="leadform-status" role="status" aria-live="polite" id="{fid}-status"></p>'
        f'<script type="application/json" class="leadform-rules">{_json(form.rules(lang))}</script>'
        f'<script type="application/json" class="leadform-texts">{_json(said)}</script>'
        "</form>"
    )
