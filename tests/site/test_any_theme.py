"""The plugin on a site that is not ours: Pelican's default theme, the plugin's
own script, styles and thank-you page, and the blocks a theme may override."""

from __future__ import annotations

from pathlib import Path

import pytest
from pelican.plugins.leadform import assets

from tests.site.newsite import new_site
from tests.site.test_leadform_plugin import Tags

PLUGIN_FILES = ["css/leadform.css", "js/leadform.js", "js/machine.js", "js/outbox.js", "js/rules.js",
                "js/store.js", "js/words.js"]
NAMES = assets.plan().names  # the published (content-hashed) name of each
JS, CSS = f"/leadform/{NAMES['js/leadform.js']}", f"/leadform/{NAMES['css/leadform.css']}"


def head_of(html: str) -> str:
    return html.split("</head>", 1)[0]


def test_the_default_theme_gets_the_form_with_its_script_and_styles_in_the_head(tmp_path: Path) -> None:
    site = new_site(tmp_path)
    assert site.returncode == 0, site.log
    html = site.html("pages/contact.html")
    page = Tags(html)
    [form] = page.find("form", **{"data-leadform": "lead"})
    assert form["data-state"] == "idle"
    assert page.find("p", role="status") != []
    head = Tags(head_of(html))
    assert [s["src"] for s in head.find("script", type="module")] == [JS]
    assert len(head.find("link", rel="stylesheet", href=CSS)) == 1
    assert head.find("link", href="/theme/css/main.css") != []  # notmyidea's own look stays
    for name in PLUGIN_FILES:
        assert (site.out / "leadform" / NAMES[name]).stat().st_size > 0, name
        assert not (site.out / "leadform" / name).exists(), f"an unhashed {name} a page could mix"


def test_pages_without_a_form_get_no_script(tmp_path: Path) -> None:
    site = new_site(tmp_path, content={"pages/contact.md": "Title: Contact\n\nMail us.\n",
                                       "pages/offer.md": "Title: Offer\n\n<!-- leadform: lead -->\n"})
    assert site.returncode == 0, site.log
    assert "/leadform/js/" not in site.html("pages/contact.html")
    assert JS in site.html("pages/offer.html")


def test_the_thank_you_page_is_the_plugins_own_in_the_themes_frame(tmp_path: Path) -> None:
    site = new_site(tmp_path)
    assert site.returncode == 0, site.log
    thanks = site.html("thanks/lead/index.html")
    assert "Thank you" in thanks
    assert "/theme/css/main.css" in thanks  # it extends notmyidea's base.html
    assert "/leadform/js/" not in thanks


def test_relative_urls_link_the_assets_from_where_each_page_is(tmp_path: Path) -> None:
    site = new_site(tmp_path, settings="RELATIVE_URLS = True\n")
    assert site.returncode == 0, site.log
    head = Tags(head_of(site.html("pages/contact.html")))
    assert [s["src"] for s in head.find("script", type="module")] == [".." + JS]


def test_a_form_in_an_article_is_linked_on_the_index_that_shows_it_too(tmp_path: Path) -> None:
    article = "Title: News\nDate: 2026-01-01\nCategory: news\n\nHello.\n\n<!-- leadform: lead -->\n"
    site = new_site(tmp_path, content={"news.md": article})
    assert site.returncode == 0, site.log
    for path in ("news.html", "index.html"):
        html = site.html(path)
        assert 'data-leadform="lead"' in html, path
        assert html.count(JS) == 1, path


def test_a_theme_overrides_one_block_of_the_thank_you_page(tmp_path: Path) -> None:
    overrides = tmp_path / "overrides"
    overrides.mkdir()
    (overrides / "leadform_thanks.html").write_text(
        '{% extends "!leadform/leadform_thanks.html" %}'
        "{% block leadform_thanks %}<h1>Merci !</h1>{% endblock %}", encoding="utf-8")
    site = new_site(tmp_path, settings=f"THEME_TEMPLATES_OVERRIDES = [{str(overrides)!r}]\n")
    assert site.returncode == 0, site.log
    thanks = site.html("thanks/lead/index.html")
    assert "Merci !" in thanks
    assert "Thank you ·" in thanks  # the block it left alone
    assert "We have your request" not in thanks


def test_a_theme_with_styles_of_its_own_empties_the_styles_block(tmp_path: Path) -> None:
    overrides = tmp_path / "overrides"
    overrides.mkdir()
    (overrides / "leadform_assets.html").write_text(
        '{% extends "!leadform/leadform_assets.html" %}{% block leadform_styles %}{% endblock %}',
        encoding="utf-8")
    site = new_site(tmp_path, settings=f"THEME_TEMPLATES_OVERRIDES = [{str(overrides)!r}]\n")
    assert site.returncode == 0, site.log
    head = head_of(site.html("pages/contact.html"))
    assert "/leadform/css/" not in head
    assert head.count(JS) == 1


def test_static_dir_moves_the_assets_and_a_bad_one_is_logged(tmp_path: Path) -> None:
    moved = new_site(tmp_path / "moved", settings='LEADFORM["static_dir"] = "static/forms"\n')
    assert moved.returncode == 0, moved.log
    assert f"/static/forms/{NAMES['js/leadform.js']}" in moved.html("pages/contact.html")
    assert (moved.out / "static" / "forms" / NAMES["js/leadform.js"]).exists()
    bad = new_site(tmp_path / "bad", settings='LEADFORM["static_dir"] = "../outside"\n')
    assert bad.returncode == 0, bad.log
    assert "static_dir" in bad.log
    assert JS in bad.html("pages/contact.html")
    assert not (tmp_path / "bad" / "outside").exists()


@pytest.mark.parametrize(("html", "expected"), [
    ('<html><head><title>x</title></head><body><form data-leadform="lead"></form></body></html>',
     '<html><head><title>x</title>TAGS\n</head><body><form data-leadform="lead"></form></body></html>'),
    ('<p>no head</p><FORM class="leadform" data-leadform="lead"></FORM>',
     '<p>no head</p>TAGS\n<FORM class="leadform" data-leadform="lead"></FORM>'),
])
def test_assets_go_at_the_end_of_the_head_or_before_the_form(html: str, expected: str) -> None:
    assert assets.needs_assets(html)
    assert assets.insert_assets(html, "TAGS") == expected


def test_a_page_that_has_the_assets_or_no_form_needs_none() -> None:
    assert not assets.needs_assets("<html><head></head><body><p>text</p></body></html>")
    assert not assets.needs_assets(f'<head>{assets.MARKER}</head><form data-leadform="lead">')
