"""The form's script and styles: the one place they are built and linked.

`static/` next to this file holds them as people write them: `js/leadform.js`
(the entry point, an ES module) imports the other modules (`machine.js`,
`rules.js`, `outbox.js`, `store.js`), and `css/leadform.css` styles the form
with fallbacks for every custom property, so it looks right on any theme.
`publish()` copies the whole folder into the site (`LEADFORM["static_dir"]`,
default `leadform/`), each `.js` and `.css` file compacted on the way and
published under a name that carries a hash of its bytes
(`js/outbox.1a2b3c4d.js`), so a CDN can keep it forever and never serve an
old script to a new page or the other way round. A module's imports
(`from './outbox.js'`) are rewritten to the hashed names before its own hash
is taken, dependencies first: a change in `store.js` changes the name of
`outbox.js`, which imports it, and of `leadform.js`. Pages link the hashed
names (`leadform.asset("js/leadform.js")` in templates); no unhashed copy is
written. A new module only has to be put in `static/js/` and imported.

Compacting is safe by construction for code that keeps to two rules, which
these files do: no multi-line strings or template literals in JavaScript, and
no `/*` or `*/` inside CSS strings. Only whole-line `//` comments are dropped,
so a `//` inside a string or URL is never touched.

Every page with a form gets the tags of `leadform_assets.html` before its
`</head>`, unless its theme placed them itself (the template's marker is
there): themes that want control include that template where they like.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
from dataclasses import dataclass, field
from pathlib import Path

STATIC = Path(__file__).resolve().parent / "static"
# leadform_assets.html starts with this line; a page that has it is left alone.
MARKER = "<!-- leadform:assets -->"
FORM = 'data-leadform="'

HASH_LEN = 8
# A hashed name as publish() writes it: what cache rules may keep forever.
HASHED = re.compile(rf"\.[0-9a-f]{{{HASH_LEN}}}\.(?:js|css)$")
# Static and dynamic imports and re-exports with a relative specifier; the
# files keep to one quote style per specifier, so this is exact for them.
_IMPORT = re.compile(r"""(\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)(['"])(\.{1,2}/[^'"\s]+)\2""")
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


class AssetError(Exception):
    """The static files cannot be published as they are (an import cycle, a missing module)."""


@dataclass(frozen=True)
class Published:
    """What publish() wrote: bytes before and after compacting, and `names`,
    each source path relative to `static/` ("js/outbox.js") -> its published
    path ("js/outbox.1a2b3c4d.js"); files other than .js and .css keep theirs."""

    before: int
    after: int
    names: dict[str, str]
    files: dict[str, bytes] = field(default_factory=dict, repr=False)


def hashed_name(rel: str, data: bytes) -> str:
    """`js/outbox.js` + its bytes -> `js/outbox.<8 hex of SHA-256>.js`."""
    stem, dot, ext = rel.rpartition(".")
    return f"{stem}.{hashlib.sha256(data).hexdigest()[:HASH_LEN]}{dot}{ext}"


def imports_of(rel: str, text: str) -> list[str]:
    """The modules (relative to `static/`) a module imports by relative specifier."""
    here = posixpath.dirname(rel)
    return [posixpath.normpath(posixpath.join(here, m.group(3))) for m in _IMPORT.finditer(text)]


def _rewrite(rel: str, text: str, names: dict[str, str]) -> str:
    here = posixpath.dirname(rel)

    def swap(m: re.Match[str]) -> str:
        target = posixpath.normpath(posixpath.join(here, m.group(3)))
        spec = posixpath.relpath(names[target], here or ".")
        spec = spec if spec.startswith("../") else "./" + spec
        return f"{m.group(1)}{m.group(2)}{spec}{m.group(2)}"

    return _IMPORT.sub(swap, text)


def plan(source: Path = STATIC) -> Published:
    """Everything publish() writes, in memory: pure, so names are known before
    any page is written."""
    texts: dict[str, str] = {}
    files: dict[str, bytes] = {}
    before = after = 0
    for path in sorted(source.rglob("*")):
        if not path.is_file():
            continue
        rel = path.relative_to(source).as_posix()
        squeeze = COMPACTORS.get(path.suffix)
        if squeeze is None:
            files[rel] = path.read_bytes()
            continue
        text = path.read_text(encoding="utf-8")
        texts[rel] = squeeze(text)
        before += len(text.encode())
    names = {rel: rel for rel in files}

    def place(rel: str, seen: tuple[str, ...]) -> None:
        if rel in names:
            return
        if rel in seen:
            raise AssetError(f"import cycle: {' -> '.join((*seen, rel))}")
        text = texts[rel]
        for dep in imports_of(rel, text) if rel.endswith(".js") else []:
            if dep not in texts:
                raise AssetError(f"{rel} imports {dep}, which is not in {source}")
            place(dep, (*seen, rel))
        data = (_rewrite(rel, text, names) if rel.endswith(".js") else text).encode()
        names[rel] = hashed_name(rel, data)
        files[names[rel]] = data

    for rel in texts:
        place(rel, ())
    after = sum(len(files[names[rel]]) for rel in texts)
    return Published(before, after, names, files)


def publish(target: Path, source: Path = STATIC) -> Published:
    """Write `source` into `target`, scripts and styles compacted under hashed
    names; unhashed copies an older build left there are removed, so no page
    can link a script that does not match its modules."""
    done = plan(source)
    for rel, data in done.files.items():
        out = target / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        if not out.exists() or out.read_bytes() != data:
            out.write_bytes(data)
    for rel, name in done.names.items():
        if name != rel:
            (target / rel).unlink(missing_ok=True)
    return done


def needs_assets(html: str) -> bool:
    """A page with a form whose theme did not link the script and styles."""
    return FORM in html and MARKER not in html


def insert_assets(html: str, tags: str) -> str:
    """`tags` at the end of the page's head; before the first form when there is no head."""
    where = _HEAD_END.search(html) or _FORM_START.search(html)
    at = where.start() if where else 0
    return html[:at] + tags.strip() + "\n" + html[at:]
