"""Leadline's form plugin for Pelican.

An editor places a form in a page (Markdown or HTML) with one line:

    <!-- leadform: lead -->

and the plugin renders `schemas/lead.schema.json` there as a form, and writes the
form's thank-you page (`thanks/lead/index.html`), where the proxy sends visitors
who submit without JavaScript. See README.md next to this file.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, FileSystemLoader
from pelican import signals
from pelican.generators import Generator

from . import forms, settings
from .render import render

log = logging.getLogger(__name__)

CONTEXT_KEY = "leadform"
# The marker, alone on its line; Markdown may wrap it in a paragraph.
MARKER = re.compile(r"(?:<p>\s*)?<!--\s*leadform:\s*([^\s>]*)\s*-->(?:\s*</p>)?")
TEMPLATES = Path(__file__).resolve().parent / "templates"


class Leadform:
    """What one build needs: the checked settings and the usable forms."""

    def __init__(self, pelican_settings: dict[str, Any]) -> None:
        self.settings = settings.read(pelican_settings)
        self.forms = forms.load(self.settings.schema_dir)


class ThanksGenerator(Generator):  # type: ignore[misc]  # pelican ships no type hints
    """Loads the forms before any content is read; writes one thank-you page per form."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.leadform = Leadform(self.settings)
        # Content objects share this context; place_forms() finds the forms here.
        self.context[CONTEXT_KEY] = self.leadform
        # The theme may override leadform_thanks.html; the plugin's own is the fallback.
        self.env.loader = ChoiceLoader([self.env.loader, FileSystemLoader(str(TEMPLATES))])

    def generate_output(self, writer: Any) -> None:
        template = self.get_template("leadform_thanks")
        for name, form in self.leadform.forms.items():
            url, save_as = self.leadform.settings.thanks(name)
            writer.write_file(save_as, template, self.context, url=url, form=name,
                              form_title=form.schema.get("title", ""),
                              relative_urls=self.settings["RELATIVE_URLS"])


def get_generators(pelican: Any) -> type[Generator]:
    return ThanksGenerator


def place_forms(instance: Any) -> None:
    """Replace each marker in a page or article with its rendered form."""
    content = getattr(instance, "_content", None)
    if not content or "leadform" not in content:
        return
    state = getattr(instance, "_context", {}).get(CONTEXT_KEY)
    if not isinstance(state, Leadform):
        state = Leadform(instance.settings)  # content read without our generator
    placed: list[str] = []

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        form = state.forms.get(name)
        if form is None:
            known = ", ".join(sorted(state.forms)) or "none"
            log.error("leadform: %s places form %r, but there is no usable %s/%s%s (known forms: %s)",
                      instance.source_path, name, state.settings.schema_dir, name, forms.SUFFIX, known)
            return f"<!-- leadform: unknown form {name!r} -->"
        if name in placed:
            log.error("leadform: %s places form %r twice; only the first is rendered",
                      instance.source_path, name)
            return ""
        placed.append(name)
        return render(form, state.settings)

    instance._content = MARKER.sub(replace, content)
    # Templates load the form's script and styles only on pages with a form.
    instance.leadforms = tuple(placed)


def register() -> None:
    signals.get_generators.connect(get_generators)
    signals.content_object_init.connect(place_forms)
