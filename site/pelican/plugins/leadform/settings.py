"""The one `LEADFORM` settings dict: defaults, checks, the environment override.

A bad value is logged as an error naming the key and replaced by its default:
the build goes on (run `pelican --fatal errors` to make it stop instead).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from . import texts

log = logging.getLogger(__name__)

ENDPOINT_ENV = "LEADFORM_ENDPOINT"
DEFAULTS: dict[str, str] = {
    # Where the form posts; "<endpoint>/<form>", or "{form}" is substituted.
    "endpoint": "http://127.0.0.1:8080/api/forms",
    # The folder of `<form>.schema.json` files (relative: to the working directory).
    "schema_dir": "schemas",
    # The thank-you page the no-JavaScript path lands on, relative to SITEURL.
    "thanks_url": "thanks/{form}/",
    # The button's words on pages in DEFAULT_LANG; "" = the built-in ones
    # (texts.py), which pages in other languages always get unless the
    # schema's x-i18n gives an `x-submit-label`.
    "submit_label": "",
    # Where the form's script and styles go, relative to the output folder.
    "static_dir": "leadform",
}
# The stamp's difficulty (data-stamp-bits): the proxy's SPAM_STAMP_BITS default.
STAMP_BITS = 16
# Past 24 bits a phone works for minutes; the proxy reads 0-64.
MAX_STAMP_BITS = 24
# The service worker, at the site's root (its scope): serviceworker.py writes it.
SW_NAME = "leadform-sw.js"
_ENDPOINT = re.compile(r"^(https?://[^/\s]+)?/[^\s]*$")
# A folder inside the output, as it appears in a URL: no "." or ".." parts.
_STATIC_DIR = re.compile(r"^(?!.*(?:^|/)\.\.?(?:/|$))[A-Za-z0-9._-]+(?:/[A-Za-z0-9._-]+)*$")


@dataclass(frozen=True, slots=True)
class Settings:
    endpoint: str
    schema_dir: Path
    thanks_url: str
    submit_label: str
    static_dir: str = DEFAULTS["static_dir"]
    # The site's DEFAULT_LANG, as Pelican has it (texts.reduce() makes it en/de/zh).
    lang: str = "en"
    stamp_bits: int = STAMP_BITS
    # SITEURL's path ("" at a domain's root): where the site's root is served.
    root_path: str = ""

    @property
    def sw_url(self) -> str:
        """The service worker's URL, same-origin as every page (a worker must be)."""
        return f"{self.root_path}/{SW_NAME}"

    def action(self, form: str, lang: str | None = None) -> str:
        """The URL a form posts to; with `?lang=` (C3) when a language is given."""
        if "{form}" in self.endpoint:
            url = self.endpoint.replace("{form}", form)
        else:
            url = self.endpoint.rstrip("/") + "/" + form
        return url if lang is None else f"{url}{'&' if '?' in url else '?'}lang={lang}"

    def thanks(self, form: str, lang: str | None = None) -> tuple[str, str] | None:
        """(url, save_as) of a form's thank-you page; with `lang`, that language's
        (where the proxy sends a post with `?lang=`: `{lang}` substituted, or
        `<lang>/` appended to a folder), None when the URL cannot hold one."""
        url = self.thanks_url.replace("{form}", form).lstrip("/")
        if "{lang}" in url:
            url = url.replace("{lang}", lang or texts.reduce(self.lang))
        elif lang is not None:
            if url and not url.endswith("/"):
                return None
            url += f"{lang}/"
        return url, url + "index.html" if url.endswith("/") or not url else url


def read(settings: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> Settings:
    """`settings["LEADFORM"]` checked and merged over the defaults."""
    environ = os.environ if environ is None else environ
    given = settings.get("LEADFORM", {})
    if not isinstance(given, Mapping):
        log.error("leadform: LEADFORM must be a dict, got %s; using the defaults", type(given).__name__)
        given = {}
    merged = dict(DEFAULTS)
    bits = _stamp_bits(given.get("stamp_bits", STAMP_BITS))
    for key, value in given.items():
        if key == "stamp_bits":
            continue
        if key not in DEFAULTS:
            log.error("leadform: LEADFORM has an unknown key %r (known: %s); ignored",
                      key, ", ".join(sorted([*DEFAULTS, "stamp_bits"])))
        elif not isinstance(value, str) or not value.strip():
            log.error("leadform: LEADFORM[%r] must be a non-empty string, got %r; using %r",
                      key, value, DEFAULTS[key])
        else:
            merged[key] = value.strip()
    if environ.get(ENDPOINT_ENV):
        merged["endpoint"] = environ[ENDPOINT_ENV].strip()
    if not _ENDPOINT.match(merged["endpoint"]):
        source = ENDPOINT_ENV if environ.get(ENDPOINT_ENV) else "LEADFORM['endpoint']"
        log.error("leadform: %s %r is not an http(s) URL or an absolute path; using %r",
                  source, merged["endpoint"], DEFAULTS["endpoint"])
        merged["endpoint"] = DEFAULTS["endpoint"]
    if not _STATIC_DIR.match(merged["static_dir"].strip("/")):
        log.error("leadform: LEADFORM['static_dir'] %r must be a folder inside the output such as "
                  "'leadform'; using %r", merged["static_dir"], DEFAULTS["static_dir"])
        merged["static_dir"] = DEFAULTS["static_dir"]
    return Settings(
        endpoint=merged["endpoint"],
        schema_dir=Path(merged["schema_dir"]).expanduser(),
        thanks_url=merged["thanks_url"],
        submit_label=merged["submit_label"],
        static_dir=merged["static_dir"].strip("/"),
        lang=str(settings.get("DEFAULT_LANG") or "en"),
        stamp_bits=bits,
        root_path=urlsplit(str(settings.get("SITEURL") or "")).path.rstrip("/"),
    )


def _stamp_bits(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_STAMP_BITS:
        return value
    log.error("leadform: LEADFORM['stamp_bits'] must be a whole number from 0 to %d, got %r; using %d",
              MAX_STAMP_BITS, value, STAMP_BITS)
    return STAMP_BITS
