"""Ships the theme's JavaScript and CSS without comments and indentation.

The sources stay commented for people; visitors download only the code. Safe
by construction for code that keeps to two rules, which the theme does:
no multi-line strings or template literals in JavaScript, and no `/*` or `*/`
inside CSS strings. Only whole-line `//` comments are dropped, so a `//` inside
a string or URL is never touched. The browser tests run the compacted files.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from pelican import signals

log = logging.getLogger(__name__)

CSS_COMMENT = re.compile(r"/\*.*?\*/", re.S)


def compact_js(text: str) -> str:
    lines = (line.strip() for line in text.splitlines())
    return "\n".join(line for line in lines if line and not line.startswith("//")) + "\n"


def compact_css(text: str) -> str:
    lines = (line.strip() for line in CSS_COMMENT.sub("", text).splitlines())
    return "\n".join(line for line in lines if line) + "\n"


def compact(pelican: Any) -> None:
    root = Path(pelican.settings["OUTPUT_PATH"]) / pelican.settings["THEME_STATIC_DIR"]
    before = after = 0
    for path in sorted(root.rglob("*")):
        squeeze = {".js": compact_js, ".css": compact_css}.get(path.suffix)
        if squeeze is None or not path.is_file():
            continue
        text = path.read_text(encoding="utf-8")
        small = squeeze(text)
        path.write_text(small, encoding="utf-8")
        before, after = before + len(text.encode()), after + len(small.encode())
    if before:
        log.info("compact: theme JS and CSS %d -> %d bytes", before, after)


def register() -> None:
    signals.finalized.connect(compact)
