"""Pelican settings for the Leadline landing site (`./dev build`, `./dev serve`)."""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent

AUTHOR = "Leadline"
SITENAME = "Leadline"
SITEURL = ""
TIMEZONE = "UTC"
DEFAULT_LANG = "en"

PATH = "content"
PAGE_PATHS = ["pages"]
ARTICLE_PATHS: list[str] = []  # a landing site, not a blog
STATIC_PATHS: list[str] = []
THEME = str(HERE / "themes" / "leadline")
RELATIVE_URLS = False

# The landing page saves itself as index.html; nothing else is generated.
DIRECT_TEMPLATES: list[str] = []
PAGE_URL = "{slug}/"
PAGE_SAVE_AS = "{slug}/index.html"
# A page in another language (metadata `Lang: de`) lives under its language.
PAGE_LANG_URL = "{lang}/{slug}/"
PAGE_LANG_SAVE_AS = "{lang}/{slug}/index.html"
ARCHIVES_SAVE_AS = AUTHORS_SAVE_AS = AUTHOR_SAVE_AS = ""
CATEGORIES_SAVE_AS = CATEGORY_SAVE_AS = TAGS_SAVE_AS = TAG_SAVE_AS = ""
FEED_ALL_ATOM = None
CATEGORY_FEED_ATOM = None
TRANSLATION_FEED_ATOM = None
AUTHOR_FEED_ATOM = None
AUTHOR_FEED_RSS = None
DISPLAY_PAGES_ON_MENU = False

# The form plugin, pelican.plugins.leadform (site/pelican/plugins/leadform),
# installed like any namespace plugin: `./dev` installs this repository into
# .venv (editable), as `pip install <repository>` does for any other site.
PLUGINS = ["leadform"]

# The environment variable LEADFORM_ENDPOINT overrides "endpoint" at build time;
# see the plugin's README.md. Errors in these settings are logged and the
# defaults used: `pelican --fatal errors` stops instead.
LEADFORM = {
    "endpoint": "http://127.0.0.1:8080/api/forms",
    "schema_dir": str(HERE / "schemas"),
    "thanks_url": "thanks/{form}/",
    "submit_label": "Send my request",
}
