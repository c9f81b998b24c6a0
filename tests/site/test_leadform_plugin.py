"""The leadform plugin, through real Pelican builds of the landing site."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from typing import Any

import pytest
from pelican.plugins.leadform import assets

from leadline.schemas import HONEYPOT_FIELD, load_schemas
from tests.site.conftest import Build, Builder, build_repo_site
from tests.support.procs import ROOT

PLUGIN = ROOT / "site" / "pelican" / "plugins" / "leadform"
SCHEMA = json.loads((ROOT / "schemas" / "lead.schema.json").read_text())
# 15 KiB until issue 13 added the stamp (stamp.js, about 3 KB) and the service worker's wiring.
BUDGET = 20 * 1024


class Tags(HTMLParser):
    """Every start tag as (name, attrs), plus the text of <script> and <label> elements."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.texts: dict[int, str] = {}
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        if self.tags:
            index = len(self.tags) - 1
            self.texts[index] = self.texts.get(index, "") + data

    def find(self, tag: str, **attrs: str) -> list[dict[str, str | None]]:
        return [a for t, a in self.tags if t == tag and all(a.get(k) == v for k, v in attrs.items())]

    def text_of(self, tag: str, **attrs: str) -> str:
        for i, (t, a) in enumerate(self.tags):
            if t == tag and all(a.get(k) == v for k, v in attrs.items()):
                return self.texts.get(i, "")
        raise AssertionError(f"no <{tag} {attrs}>")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Build:
    """The repository's own site, built once for the tests that only read it."""
    return build_repo_site(tmp_path_factory.mktemp("site"))


@pytest.fixture(scope="module")
def page(site: Build) -> Tags:
    assert site.returncode == 0, site.log
    return Tags(site.html())


def field(page: Tags, name: str) -> tuple[str, dict[str, str | None]]:
    for tag, attrs in page.tags:
        if tag in {"input", "textarea", "select"} and attrs.get("name") == name:
            return tag, attrs
    raise AssertionError(f"no control named {name!r}")


def test_the_landing_page_builds_cleanly_as_the_site_index(site: Build) -> None:
    assert site.returncode == 0, site.log
    assert (site.out / "index.html").exists()
    assert (site.out / "privacy" / "index.html").exists()


def test_the_form_has_one_control_per_schema_property_plus_the_honeypot(page: Tags) -> None:
    names = [a.get("name") for t, a in page.tags if t in {"input", "textarea", "select"}]
    assert names == [*SCHEMA["properties"], HONEYPOT_FIELD]


def test_the_form_posts_to_the_endpoint_and_starts_idle_with_a_status_line(page: Tags) -> None:
    [form] = page.find("form", **{"data-leadform": "lead"})
    assert form["action"] == "http://127.0.0.1:8080/api/forms/lead?lang=en"
    assert form["method"] == "post"
    assert form["data-state"] == "idle"
    [status] = page.find("p", role="status")
    assert status["aria-live"] == "polite"


@pytest.mark.parametrize(("name", "tag", "kind"), [
    ("name", "input", "text"), ("email", "input", "email"), ("company", "input", "text"),
    ("message", "textarea", None), ("consent", "input", "checkbox"),
])
def test_control_types_follow_the_schema(page: Tags, name: str, tag: str, kind: str | None) -> None:
    found, attrs = field(page, name)
    assert (found, attrs.get("type")) == (tag, kind)


def test_required_and_length_limits_come_from_the_schema(page: Tags) -> None:
    for name, prop in SCHEMA["properties"].items():
        _, attrs = field(page, name)
        required = name in SCHEMA["required"]
        assert ("required" in attrs) is required, name
        assert attrs.get("maxlength") == (str(prop["maxLength"]) if "maxLength" in prop else None), name
        assert attrs.get("minlength") == (str(prop["minLength"]) if "minLength" in prop else None), name
        assert attrs.get("autocomplete") == prop.get("x-autocomplete"), name
    assert field(page, "consent")[1]["value"] == "true"  # what the proxy reads as true


def test_labels_and_help_come_from_title_and_description(page: Tags) -> None:
    assert "Your name" in page.text_of("label", **{"for": "leadform-lead-name"})
    assert "Company" in page.text_of("label", **{"for": "leadform-lead-company"})
    assert "(optional)" in "".join(page.texts.values())
    help_id = "leadform-lead-email-help"
    assert page.text_of("p", id=help_id) == SCHEMA["properties"]["email"]["description"]
    assert help_id in (field(page, "email")[1]["aria-describedby"] or "")
    assert page.text_of("h2", id="leadform-lead-title") == SCHEMA["title"]


def test_html_patterns_keep_the_schema_meaning_of_matching_anywhere(page: Tags) -> None:
    """An HTML pattern must match the whole value; a JSON Schema one matches anywhere."""
    import re

    pattern = field(page, "name")[1]["pattern"] or ""
    assert re.fullmatch(pattern, "Ada Lovelace")
    assert not re.fullmatch(pattern, "   ")


def test_the_honeypot_is_hidden_out_of_the_tab_order_and_named_as_the_proxy_expects(page: Tags) -> None:
    assert HONEYPOT_FIELD == "website"
    _, attrs = field(page, HONEYPOT_FIELD)
    assert attrs["tabindex"] == "-1"
    assert attrs["autocomplete"] == "off"
    assert "required" not in attrs
    [box] = page.find("div", **{"class": "leadform-hp"})
    assert box["aria-hidden"] == "true"


def test_the_embedded_rules_are_the_schema_subset_the_proxy_validates(page: Tags) -> None:
    rules = json.loads(page.text_of("script", **{"class": "leadform-rules"}))
    assert rules["required"] == SCHEMA["required"]
    assert list(rules["properties"]) == list(SCHEMA["properties"])
    for name, prop in SCHEMA["properties"].items():
        shown = {"title", "description", "x-autocomplete", "x-widget", "x-i18n"}  # the inputs' business
        kept = {k: v for k, v in prop.items() if k not in shown}
        assert rules["properties"][name] == kept
    # The same file the proxy loads.
    assert load_schemas()["lead"].schema["properties"] == SCHEMA["properties"]


def test_the_page_loads_the_form_script_as_a_module_and_its_styles_once(page: Tags) -> None:
    """The theme includes leadform_assets.html itself, so the plugin adds nothing."""
    scripts = page.find("script", type="module")
    names = assets.plan().names
    js, css = f"/leadform/{names['js/leadform.js']}", f"/leadform/{names['css/leadform.css']}"
    assert [s["src"] for s in scripts] == [js]
    assert page.find("link", rel="stylesheet", href=css) != []
    assert len(page.find("link", href=css)) == 1


def test_a_thank_you_page_is_written_for_each_form(site: Build) -> None:
    thanks = Tags(site.html("thanks/lead/index.html"))
    assert "Thank you" in "".join(thanks.texts.values())
    assert not thanks.find("script", type="module")  # nothing to run there


def test_the_form_script_and_styles_fit_the_budget(site: Build) -> None:
    files = [*(site.out / "leadform" / "js").glob("*.js"), *(site.out / "leadform" / "css").glob("*.css")]
    sizes = {f.name: f.stat().st_size for f in files}
    assert sum(sizes.values()) < BUDGET, sizes


def test_leadform_endpoint_in_the_environment_overrides_the_settings(build: Builder) -> None:
    done = build(env={"LEADFORM_ENDPOINT": "https://forms.example.com/v1/{form}/submit"})
    assert done.returncode == 0, done.log
    [form] = Tags(done.html()).find("form", **{"data-leadform": "lead"})
    assert form["action"] == "https://forms.example.com/v1/lead/submit?lang=en"


def test_an_unknown_form_is_logged_with_page_and_name_and_the_build_goes_on(build: Builder) -> None:
    page = "Title: Offer\nSlug: offer\n\n<!-- leadform: newsletter -->\n"
    done = build(content={"pages/offer.md": page})
    assert done.returncode == 0, done.log
    assert "offer.md" in done.log
    assert "'newsletter'" in done.log
    assert "ERROR" in done.log
    assert "<form" not in done.html("offer/index.html")
    assert "<form" in done.html()  # the other page still has its form


def test_bad_settings_are_logged_and_replaced_by_defaults(build: Builder) -> None:
    done = build(settings_extra='LEADFORM = {"endpoint": "ftp:/nope", "submit_label": 3, "colour": "red"}\n'
                               f'LEADFORM["schema_dir"] = {str(ROOT / "schemas")!r}\n')
    assert done.returncode == 0, done.log
    log = " ".join(done.log.split())
    for named in ("ftp:/nope", "'colour'", "submit_label"):
        assert named in log
    [form] = Tags(done.html()).find("form", **{"data-leadform": "lead"})
    assert form["action"] == "http://127.0.0.1:8080/api/forms/lead?lang=en"


def test_a_missing_schema_folder_is_an_error_not_a_crash(build: Builder, tmp_path: Any) -> None:
    done = build(settings_extra=f'LEADFORM["schema_dir"] = {str(tmp_path / "none")!r}\n')
    assert done.returncode == 0, done.log
    assert "does not exist" in " ".join(done.log.split())
    assert "<form" not in done.html()


def test_fatal_errors_mode_stops_the_build_on_an_unknown_form(build: Builder) -> None:
    done = build(content={"pages/offer.md": "Title: Offer\n\n<!-- leadform: nope -->\n"}, fatal=True)
    assert done.returncode != 0


def test_a_broken_schema_costs_only_its_own_form(build: Builder, tmp_path: Any) -> None:
    schemas = tmp_path / "schemas"
    schemas.mkdir()
    (schemas / "lead.schema.json").write_text(json.dumps(SCHEMA))
    (schemas / "broken.schema.json").write_text("{not json")
    done = build(settings_extra=f'LEADFORM["schema_dir"] = {str(schemas)!r}\n')
    assert done.returncode == 0, done.log
    assert "broken.schema.json" in done.log
    assert (done.out / "thanks" / "lead" / "index.html").exists()
    assert not (done.out / "thanks" / "broken").exists()


def test_compact_drops_comment_lines_and_indentation_but_not_slashes_in_code() -> None:
    from pelican.plugins.leadform.assets import compact_css, compact_js

    js = "// why\nconst url = 'http://x//y'; // kept: not a whole line\n  if (a) {\n    b();\n  }\n"
    assert compact_js(js) == "const url = 'http://x//y'; // kept: not a whole line\nif (a) {\nb();\n}\n"
    assert compact_css("/* a\n b */\n.x {\n  color: red; /* c */\n}\n") == ".x {\ncolor: red;\n}\n"


def test_shipped_files_are_the_compacted_plugin_sources(site: Build) -> None:
    shipped = (site.out / "leadform" / assets.plan().names["js/outbox.js"]).read_text()
    source = (PLUGIN / "static" / "js" / "outbox.js").read_text()
    assert source.startswith("//")
    assert not shipped.startswith("//")
    assert len(shipped) < len(source)
