"""Leadline's form plugin for Pelican: `pelican.plugins.leadform`, for any theme.

An editor places a form in a page (Markdown or HTML) with one line:

    <!-- leadform: lead -->

and the plugin renders `schemas/lead.schema.json` there as a form, ships the
form's script and styles (`assets.py`) and links them into every page that has
a form, and writes the form's thank-you page (`thanks/lead/index.html`), where
the proxy sends visitors who submit without JavaScript. See README.md here.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, FileSystemLoader, PrefixLoader
from pelican import signals
from pelican.generators import Generator

from . import assets, forms, serviceworker, settings
from .render import render

log = logging.getLogger(__name__)

CONTEXT_KEY = "leadform"
# The marker, alone on its line; Markdown may wrap it in a paragraph.
MARKER = re.compile(r"(?:<p>\s*)?<!--\s*leadform:\s*([^\s>]*)\s*-->(?:\s*</p>)?")
TEMPLATES = Path(__file__).resolve().parent / "templates"
# A theme extends "!leadform/<template>" to override one block of ours.
TEMPLATE_PREFIX = "!leadform"


class Leadform:
    """What one build needs: the checked settings, the usable forms, and the
    template that links the script and styles (set once the generator exists).

    Templates see it as `leadform` (`{{ leadform.static_dir }}`)."""

    def __init__(self, pelican_settings: dict[str, Any]) -> None:
        self.settings = settings.read(pelican_settings)
        self.forms = forms.load(self.settings.schema_dir)
        self.assets_template: Any = None

    @property
    def static_dir(self) -> str:
        return self.settings.static_dir


def add_templates(generator: Generator) -> None:
    """Every generator's templates: the theme's first, then the plugin's own, so a
    theme's `leadform_*.html` wins and any theme can include ours."""
    ours = FileSystemLoader(str(TEMPLATES))
    generator.env.loader = ChoiceLoader([generator.env.loader, PrefixLoader({TEMPLATE_PREFIX: ours}), ours])


class LeadformGenerator(Generator):  # type: ignore[misc]  # pelican ships no type hints
    """Loads the forms before any content is read; writes one thank-you page per
    form, and the script and styles the pages with a form link to."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.leadform = Leadform(self.settings)
        self.leadform.assets_template = self.get_template("leadform_assets")
        # Content objects share this context; place_forms() finds the forms here.
        self.context[CONTEXT_KEY] = self.leadform

    def generate_output(self, writer: Any) -> None:
        if not self.leadform.forms:
            return
        target = Path(self.output_path) / self.leadform.settings.static_dir
        before, after = assets.publish(target)
        log.info("leadform: script and styles written to %s (%d -> %d bytes)", target, before, after)
        # names: assets.publish's hashed module names once they exist (identity until then).
        sw = serviceworker.write(Path(self.output_path), self.leadform.settings, names={})
        log.info("leadform: service worker written to %s", sw)
        template = self.get_template("leadform_thanks")
        for name, form in self.leadform.forms.items():
            url, save_as = self.leadform.settings.thanks(name)
            writer.write_file(save_as, template, self.context, url=url, form=name,
                              form_title=form.schema.get("title", ""),
                              relative_urls=self.settings["RELATIVE_URLS"])


def get_generators(pelican: Any) -> type[Generator]:
    return LeadformGenerator


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
    # Themes that link the script and styles themselves ask this (`page.leadforms`).
    instance.leadforms = tuple(placed)


def link_assets(path: str, context: dict[str, Any]) -> None:
    """After a page is written: link the script and styles if it has a form and
    its theme did not already include `leadform_assets.html`."""
    state = context.get(CONTEXT_KEY)
    if not path.endswith(".html") or not isinstance(state, Leadform) or state.assets_template is None:
        return
    file = Path(path)
    html = file.read_text(encoding="utf-8")
    if not assets.needs_assets(html):
        return
    file.write_text(assets.insert_assets(html, state.assets_template.render(context)), encoding="utf-8")


def register() -> None:
    signals.generator_init.connect(add_templates)
    signals.get_generators.connect(get_generators)
    signals.content_object_init.connect(place_forms)
    signals.content_written.connect(link_assets)
