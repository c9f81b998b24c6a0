"""Leadline's form plugin for Pelican: `pelican.plugins.leadform`, for any theme.

An editor places a form in a page (Markdown or HTML) with one line:

    <!-- leadform: lead -->

and the plugin renders `schemas/lead.schema.json` there as a form, ships the
form's script and styles (`assets.py`) and links them into every page that has
a form under content-hashed names, and writes the form's thank-you pages
(`thanks/lead/index.html` in DEFAULT_LANG, `thanks/lead/<en|de|zh>/index.html`),
where the proxy sends visitors who submit without JavaScript, and a `_headers`
file with the cache rules for static hosts (`headers.py`). Each form speaks
its page's language (`texts.py`). See README.md here.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, FileSystemLoader, PrefixLoader
from markupsafe import Markup
from pelican import signals
from pelican.generators import Generator

from . import assets, forms, headers, serviceworker, settings, texts
from .render import render

log = logging.getLogger(__name__)

CONTEXT_KEY = "leadform"
# The marker, alone on its line; Markdown may wrap it in a paragraph.
MARKER = re.compile(r"(?:<p>\s*)?<!--\s*leadform:\s*([^\s>]*)\s*-->(?:\s*</p>)?")
TEMPLATES = Path(__file__).resolve().parent / "templates"
# A theme extends "!leadform/<template>" to override one block of ours.
TEMPLATE_PREFIX = "!leadform"


class Leadform:
    """What one build needs: the checked settings, the usable forms, the
    published names of the script and styles, and the template that links them
    (set once the generator exists).

    Templates see it as `leadform` (`{{ leadform.asset("js/leadform.js") }}`,
    `{{ leadform.theme_asset("css/site.css") }}`, `{{ leadform.static_dir }}`)."""

    def __init__(self, pelican_settings: dict[str, Any], output_path: str | None = None) -> None:
        self.settings = settings.read(pelican_settings)
        self.forms = forms.load(self.settings.schema_dir)
        self.assets_template: Any = None
        self.published = assets.plan()
        # Source path under static/ ("js/outbox.js") -> published path
        # ("js/outbox.1a2b3c4d.js"), relative to static_dir.
        self.asset_names: dict[str, str] = self.published.names
        self.output_path = Path(output_path) if output_path else None
        self.theme_static = Path(str(pelican_settings.get("THEME", ""))) / "static"
        self.theme_static_dir = str(pelican_settings.get("THEME_STATIC_DIR", "theme")).strip("/")
        # The theme files asked for by hashed name: source path -> published path.
        self.theme_names: dict[str, str] = {}

    @property
    def static_dir(self) -> str:
        return self.settings.static_dir

    def asset(self, rel: str) -> str:
        """The published path of one of the plugin's files, relative to the site
        root: `asset("js/leadform.js")` -> "leadform/js/leadform.1a2b3c4d.js"."""
        name = self.asset_names.get(rel)
        if name is None:
            log.error("leadform: there is no asset %r (known: %s)", rel, ", ".join(sorted(self.asset_names)))
            name = rel
        return f"{self.static_dir}/{name}"

    def theme_asset(self, rel: str) -> str:
        """A file of the theme's `static/` under a hashed name, for themes that want
        CDN-safe names for their own CSS and JS: the hashed copy is written beside
        Pelican's (`theme/css/site.<hash>.css`) and its path returned."""
        name = self.theme_names.get(rel)
        if name is None:
            source = self.theme_static / rel
            if not source.is_file():
                log.error("leadform: theme_asset(%r): the theme has no static/%s", rel, rel)
                return f"{self.theme_static_dir}/{rel}"
            data = source.read_bytes()
            name = assets.hashed_name(rel, data)
            if self.output_path is not None:
                out = self.output_path / self.theme_static_dir / name
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_bytes(data)
            self.theme_names[rel] = name
        return f"{self.theme_static_dir}/{name}"

    def hashed_paths(self) -> list[str]:
        """Every hashed file of this build, relative to the output root."""
        # The plugin's files are published only when there is a form to use them.
        ours = [f"{self.static_dir}/{n}" for r, n in self.asset_names.items() if n != r and self.forms]
        return sorted(ours + [f"{self.theme_static_dir}/{n}" for n in self.theme_names.values()])


# Builds in progress, by output folder: finalized() writes their _headers.
_BUILDS: dict[str, Leadform] = {}


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
        self.leadform = Leadform(self.settings, self.output_path)
        self.leadform.assets_template = self.get_template("leadform_assets")
        # Content objects share this context; place_forms() finds the forms here.
        self.context[CONTEXT_KEY] = self.leadform
        _BUILDS[str(Path(self.output_path).resolve())] = self.leadform

    def generate_output(self, writer: Any) -> None:
        if not self.leadform.forms:
            return
        target = Path(self.output_path) / self.leadform.settings.static_dir
        done = assets.publish(target)
        log.info("leadform: script and styles written to %s (%d -> %d bytes)",
                 target, done.before, done.after)
        # Unhashed, at the root; its imports point at the hashed modules.
        sw = serviceworker.write(Path(self.output_path), self.leadform.settings, names=done.names)
        log.info("leadform: service worker written to %s", sw)
        template = self.get_template("leadform_thanks")
        site_lang = self.leadform.settings.lang
        for name, form in self.leadform.forms.items():
            written: set[str] = set()
            for lang in (None, *texts.LANGS):
                where = self.leadform.settings.thanks(name, lang)
                if where is None or where[1] in written:
                    continue
                written.add(where[1])
                page_lang = lang or site_lang
                writer.write_file(where[1], template, self.context, url=where[0], form=name,
                                  form_title=form.text("title", page_lang) or "",
                                  leadform_lang=texts.reduce(page_lang),
                                  thanks=thanks_texts(page_lang, form.text("title", page_lang),
                                                      str(self.settings.get("SITENAME", ""))),
                                  relative_urls=self.settings["RELATIVE_URLS"])


def thanks_texts(lang: str, form_title: object, sitename: str) -> dict[str, Markup]:
    """The thank-you page's words in `lang`, the form's title and the site's name
    put in (escaped: they come from files, not from us)."""
    words = texts.texts(lang)["thanks"]
    body = words["body_titled"] if form_title else words["body"]
    site = re.sub(r"<[^>]*>", "", sitename)  # as the templates' |striptags
    return {"title": Markup.escape(words["title"]), "heading": Markup.escape(words["heading"]),
            "body": Markup.escape(body).replace("{title}", Markup.escape(str(form_title or ""))),
            "back": Markup.escape(words["back"]).replace("{site}", Markup.escape(site))}


def write_headers(pelican: Any) -> None:
    """After the whole build (every page written): `_headers` at the output root (headers.py)."""
    state = _BUILDS.pop(str(Path(pelican.output_path).resolve()), None)
    if state is None or not (state.forms or state.theme_names):
        return
    out = Path(pelican.output_path)
    # Pelican copied the theme's files as they are; a page of ours links only the
    # hashed copies, and an unhashed one left beside them could be cached stale.
    for rel in state.theme_names:
        (out / state.theme_static_dir / rel).unlink(missing_ok=True)
    text = headers.render(headers.rules(out, state.hashed_paths()))
    (out / headers.FILE).write_text(text, encoding="utf-8")


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
        return render(form, state.settings, getattr(instance, "lang", None))

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
    signals.finalized.connect(write_headers)
