"""The form's script and styles: the one place they are built and linked.

`static/` next to this file holds them as people write them: `js/leadform.js`
(the entry point, an ES module) imports the other modules (`machine.js`,
`rules.js`, `outbox.js`, `store.js`), and `css/leadform.css` styles the form
with fallbacks for every custom property, so it looks right on any theme.
`publish()` copies the whole folder into the site (`LEADFORM["static_dir"]`,
default `leadform/`), each `.js` and `.css` file compacted on the way; a new
module only has to be put in `static/js/` and imported.

Compacting is safe by construction for code that keeps to two rules, which
these files do: no multi-line strings or template literals in JavaScript, and
no `/*` or `*/` inside CSS strings. Only whole-line `//` comments are dropped,
so a `//` inside a string or URL is never touched.

Every page with a form gets the tags of `leadform_assets.html` before its
`</head>`, unless its theme placed them itself (the template's marker is
there): themes that want control include that template where they like.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

STATIC = Path(__file__).resolve().parent / "static"
# leadform_assets.html starts with this line; a page that has it is left alone.
MARKER = "<!-- leadform:assets -->"
FORM = 'data-leadform="'

_CSS_COMMENT = re.compile(r"/\*.*?\*/", re.S)
_HEAD_END = re.compile(r"</head\s*>", re.I)
_FORM_START = re.compile(r"<form\b", re.I)


def compact_js(text: str) -> str:
    lines = (line.strip() for line in text.splitlines())
    return "\n".join(line for line in lines if line and not line.startswith("//")) + "\n"


def compact_css(text: str) -> str:
    lines = (line.strip() for line in _CSS_COMMENT.sub("", text).splitlines())
    return "\n".join(line for line in lines if line) + "\n"


COMPACTORS = {".js": compact_js, ".css": compact_css}


def publish(target: Path, source: Path = STATIC) -> tuple[int, int]:
    """Copy `source` into `target`, compacting scripts and styles; (bytes before, after)."""
    before = after = 0
    for path in sorted(source.rglob("*")):
        if not path.is_file():
            continue
        out = target / path.relative_to(source)
        out.parent.mkdir(parents=True, exist_ok=True)
        squeeze = COMPACTORS.get(path.suffix)
        if squeeze is None:
            shutil.copyfile(path, out)
            continue
        text = path.read_text(encoding="utf-8")
        small = squeeze(text)
        out.write_text(small, encoding="utf-8")
        before, after = before + len(text.encode()), after + len(small.encode())
    return before, after


def needs_assets(html: str) -> bool:
    """A page with a form whose theme did not link the script and styles."""
    return FORM in html and MARKER not in html


def insert_assets(html: str, tags: str) -> str:
    """`tags` at the end of the page's head; before the first form when there is no head."""
    where = _HEAD_END.search(html) or _FORM_START.search(html)
    at = where.start() if where else 0
    return html[:at] + tags.strip() + "\n" + html[at:]
