"""The form in the page's language: built-in texts (texts.py), the editor's own
(`x-i18n` in the schema), `?lang=` on the action, thank-you pages per language."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from pelican.plugins.leadform import forms, texts

from leadline.schemas import CODES, load_schemas
from tests.site.conftest import Builder
from tests.site.test_leadform_plugin import SCHEMA, Tags
from tests.support.procs import ROOT

KONTAKT = "Title: Kontakt\nSlug: kontakt\nLang: de\n\n<!-- leadform: lead -->\n"
LIANXI = "Title: 联系我们\nSlug: lianxi\nLang: zh-Hans\n\n<!-- leadform: lead -->\n"
CONTACT_FR = "Title: Contact\nSlug: contact-fr\nLang: fr\n\n<!-- leadform: lead -->\n"
PLACEHOLDERS = {"this", "limit", "values", "value", "type", "count", "message", "field", "reason",
                "status", "title", "site"}


def form_of(html: str) -> tuple[Tags, dict[str, str | None]]:
    page = Tags(html)
    [form] = page.find("form", **{"data-leadform": "lead"})
    return page, form


def embedded(page: Tags, cls: str) -> Any:
    return json.loads(page.text_of("script", **{"class": cls}))


@pytest.mark.parametrize(("tag", "code"), [
    ("de", "de"), ("de-AT", "de"), ("DE_ch", "de"), ("zh", "zh"), ("zh-Hans", "zh"), ("zh-CN", "zh"),
    ("en-GB", "en"), ("fr", "en"), ("", "en"), (None, "en"),
])
def test_a_language_tag_is_reduced_to_its_primary_subtag_else_english(tag: str | None, code: str) -> None:
    assert texts.reduce(tag) == code


def walk(value: Any, path: str = "") -> dict[str, str]:
    if isinstance(value, dict):
        return {k: v for key, sub in value.items() for k, v in walk(sub, f"{path}/{key}").items()}
    return {path: value}


@pytest.mark.parametrize("lang", ["de", "zh"])
def test_every_language_has_every_text_and_only_known_placeholders(lang: str) -> None:
    english, other = walk(texts.TEXTS["en"]), walk(texts.TEXTS[lang])
    assert set(other) == set(english)
    for key, text in other.items():
        assert isinstance(text, str), key
        assert text.strip(), key
        assert set(re.findall(r"\{(\w+)\}", text)) <= PLACEHOLDERS, key
        words = re.sub(r"\{\w+\}|[\W\d]", "", text)
        assert text != english[key] or not words or key.endswith("optional"), f"{key} left in English"


def test_every_error_code_of_the_proxy_has_words() -> None:
    """A field's problem by code (C1); those no field owns (`additional`, `stamp`) in `other`."""
    for lang in texts.LANGS:
        errors, other = texts.TEXTS[lang]["errors"], texts.TEXTS[lang]["other"]
        assert set(CODES) - {"additional", "stamp"} <= set(errors), lang
        assert {"additional", "stamp", "invalid"} <= set(other), lang


def test_a_german_page_gets_german_texts_and_the_editors_german_words(build: Builder) -> None:
    done = build(content={"pages/kontakt.md": KONTAKT})
    assert done.returncode == 0, done.log
    page, form = form_of(done.html("de/kontakt/index.html"))
    assert form["lang"] == "de"
    assert form["action"] == "http://127.0.0.1:8080/api/forms/lead?lang=de"
    de = SCHEMA["properties"]
    assert page.text_of("h2", id="leadform-lead-title") == SCHEMA["x-i18n"]["de"]["title"]
    assert de["name"]["x-i18n"]["de"]["title"] in page.text_of("label", **{"for": "leadform-lead-name"})
    assert page.text_of("p", id="leadform-lead-email-help") == de["email"]["x-i18n"]["de"]["description"]
    assert page.text_of("button", type="submit").strip() == "Anfrage senden"  # the schema's x-submit-label
    said = embedded(page, "leadform-texts")
    assert said["say"] == texts.TEXTS["de"]["say"]
    assert said["errors"] == texts.TEXTS["de"]["errors"]
    rules = embedded(page, "leadform-rules")["properties"]
    assert rules["email"]["x-pattern-message"] == de["email"]["x-i18n"]["de"]["x-pattern-message"]
    assert rules["consent"]["x-const-message"] == de["consent"]["x-i18n"]["de"]["x-const-message"]
    # The rest of the rules as the proxy has them.
    assert rules["email"]["pattern"] == de["email"]["pattern"]
    # The English landing page keeps its own words.
    _, english = form_of(done.html())
    assert english["lang"] == "en"


def test_a_chinese_page_by_zh_hans_gets_chinese_texts(build: Builder) -> None:
    done = build(content={"pages/lianxi.md": LIANXI})
    assert done.returncode == 0, done.log
    page, form = form_of(done.html("zh-Hans/lianxi/index.html"))
    assert (form["lang"], form["action"]) == ("zh", "http://127.0.0.1:8080/api/forms/lead?lang=zh")
    assert page.text_of("h2", id="leadform-lead-title") == "联系我们的团队"
    assert texts.TEXTS["zh"]["chrome"]["optional"] in "".join(page.texts.values())
    assert page.text_of("button", type="submit").strip() == "发送请求"
    assert embedded(page, "leadform-texts")["say"]["sent"] == texts.TEXTS["zh"]["say"]["sent"]


def test_a_language_without_built_in_texts_gets_english(build: Builder) -> None:
    done = build(content={"pages/contact-fr.md": CONTACT_FR})
    assert done.returncode == 0, done.log
    page, form = form_of(done.html("fr/contact-fr/index.html"))
    assert form["action"].endswith("?lang=en")  # type: ignore[union-attr]
    assert embedded(page, "leadform-texts")["say"] == texts.TEXTS["en"]["say"]


def without_i18n() -> dict[str, Any]:
    plain = {k: v for k, v in SCHEMA.items() if k != "x-i18n"}
    plain["properties"] = {name: {k: v for k, v in prop.items() if k != "x-i18n"}
                           for name, prop in SCHEMA["properties"].items()}
    return plain


def test_without_x_i18n_a_german_page_gets_the_schemas_words_and_the_built_in_button(
        build: Builder, tmp_path: Path) -> None:
    schemas = tmp_path / "schemas"
    schemas.mkdir()
    (schemas / "lead.schema.json").write_text(json.dumps(without_i18n()))
    done = build(settings_extra=f'LEADFORM["schema_dir"] = {str(schemas)!r}\n',
                 content={"pages/kontakt.md": KONTAKT})
    assert done.returncode == 0, done.log
    page, _ = form_of(done.html("de/kontakt/index.html"))
    assert page.text_of("h2", id="leadform-lead-title") == SCHEMA["title"]
    # LEADFORM["submit_label"] is for pages in DEFAULT_LANG; this one gets the built-in words.
    assert page.text_of("button", type="submit").strip() == "Senden"
    _, english = form_of(done.html())
    assert Tags(done.html()).text_of("button", type="submit").strip() == "Send my request"
    assert english["lang"] == "en"


def test_thank_you_pages_are_written_per_language_and_in_default_lang(build: Builder) -> None:
    done = build(settings_extra='DEFAULT_LANG = "de"\n')
    assert done.returncode == 0, done.log
    headings = {lang: texts.TEXTS[lang]["thanks"]["heading"] for lang in texts.LANGS}
    assert headings["en"] == "Thank you!"
    for lang, heading in headings.items():
        html = done.html(f"thanks/lead/{lang}/index.html")
        assert f'<html lang="{lang}">' in html, lang
        assert Tags(html).text_of("h1").strip() == heading
    default = done.html("thanks/lead/index.html")
    assert '<html lang="de">' in default
    assert "Vielen Dank!" in default
    assert "Sprechen Sie mit unserem Team" in default  # the form's title, from x-i18n


def test_thanks_url_may_place_the_language_itself() -> None:
    from pelican.plugins.leadform import settings

    given = settings.read({"LEADFORM": {"thanks_url": "{lang}/thanks/{form}/"}, "DEFAULT_LANG": "de-AT"})
    assert given.thanks("lead") == ("de/thanks/lead/", "de/thanks/lead/index.html")
    assert given.thanks("lead", "zh") == ("zh/thanks/lead/", "zh/thanks/lead/index.html")
    page = settings.read({"LEADFORM": {"thanks_url": "thanks-{form}.html"}})
    assert page.thanks("lead", "de") is None  # no place for a language: the proxy lands on the page itself
    assert settings.read({}).action("lead", "zh") == "http://127.0.0.1:8080/api/forms/lead?lang=zh"
    query = settings.read({"LEADFORM": {"endpoint": "/f?x=1&form={form}"}})
    assert query.action("lead", "de") == "/f?x=1&form=lead&lang=de"


def test_the_proxy_loads_a_schema_with_x_i18n_and_judges_it_as_without(tmp_path: Path) -> None:
    """x-i18n is an annotation: the validator, its fast path and the 422's words ignore it."""
    (tmp_path / "lead.schema.json").write_text(json.dumps(without_i18n()))
    with_i18n, without = load_schemas()["lead"], load_schemas(tmp_path)["lead"]
    assert "x-i18n" in with_i18n.schema
    assert with_i18n.has_fast_check
    assert without.has_fast_check
    samples: list[dict[str, Any]] = [{}, {"name": " ", "email": "x", "consent": False},
                                     {"name": "Ada", "email": "a@b.co", "consent": True}]
    for data in samples:
        assert with_i18n.errors(data) == without.errors(data)
        assert with_i18n.is_valid(data) == without.is_valid(data)


@pytest.mark.parametrize(("i18n", "why"), [
    ([], "must be an object of languages"),
    ({"de": "Hallo"}, "must be an object of strings"),
    ({"de": {"title": 3}}, "must be an object of strings"),
    ({"de": {"pattern": "x"}}, "'pattern'"),
])
def test_a_bad_x_i18n_is_logged_with_the_file_and_the_form_skipped(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, i18n: Any, why: str) -> None:
    schema = json.loads((ROOT / "schemas" / "lead.schema.json").read_text())
    schema["properties"]["name"]["x-i18n"] = i18n
    (tmp_path / "lead.schema.json").write_text(json.dumps(schema))
    assert forms.load(tmp_path) == {}
    assert "lead.schema.json" in caplog.text
    assert why in caplog.text


@pytest.mark.parametrize(("content", "path", "skip", "footer", "privacy"), [
    ({"pages/kontakt.md": KONTAKT}, "de/kontakt/index.html",
     "Zum Inhalt springen", "Fußzeile", "Datenschutz"),
    ({"pages/lianxi.md": LIANXI}, "zh-Hans/lianxi/index.html", "跳到正文", "页脚", "隐私"),
    ({"pages/contact-fr.md": CONTACT_FR}, "fr/contact-fr/index.html", "Skip to content", "Footer", "Privacy"),
    ({}, "thanks/lead/de/index.html", "Zum Inhalt springen", "Fußzeile", "Datenschutz"),
])
def test_the_themes_own_words_follow_the_pages_language(build: Builder, content: dict[str, str], path: str,
                                                        skip: str, footer: str, privacy: str) -> None:
    """The skip link is the first thing a screen reader says: in the page's language, as the form."""
    done = build(content=content)
    assert done.returncode == 0, done.log
    page = Tags(done.html(path))
    assert page.text_of("a", **{"class": "skip"}).strip() == skip
    [nav] = page.find("nav", **{"aria-label": footer})
    assert nav is not None
    assert privacy in "".join(page.texts.values())
