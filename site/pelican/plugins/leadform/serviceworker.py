"""The service worker, `leadform-sw.js` at the output's root.

Its source (`serviceworker/leadform-sw.js`) imports the page's own modules as
`./js/<module>`; written out, each import points at the module as published
(`./<static_dir>/<name>`, relative to the worker, which sits at the site's
root: right under any SITEURL path). `names` maps a module's path under
`static/` to its published name (`assets.publish`'s hashed names; identity
until then). The worker's own name never changes: browsers look for updates
at the URL they registered, so a new deploy's worker replaces the old one
there. Its text carries a digest of the modules it imports, so any change in
them changes the worker's bytes, which is what makes a browser update it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from pathlib import Path

from .assets import compact_js
from .settings import SW_NAME, Settings

SOURCE = Path(__file__).resolve().parent / "serviceworker" / SW_NAME
_IMPORT = re.compile(r"""(from\s+)'\./(js/[\w.-]+\.js)'""")
_SITE = re.compile(r"^const SITE = .*;$", re.M)


def imports(source: str) -> list[str]:
    """The modules the worker imports, as paths under `static/`."""
    return [match.group(2) for match in _IMPORT.finditer(source)]


def render(source: str, settings: Settings, names: Mapping[str, str], published: Path) -> str:
    """The worker's text: imports pointing at the published modules, SITE filled in.

    `published` is the static folder in the output; the digest covers every
    script there, so it changes with any module the worker imports."""
    digest = hashlib.sha256()
    for path in sorted(published.rglob("*.js")):
        digest.update(path.relative_to(published).as_posix().encode() + b"\0" + path.read_bytes())

    def point(match: re.Match[str]) -> str:
        return f"{match.group(1)}'./{settings.static_dir}/{names.get(match.group(2), match.group(2))}'"

    site = json.dumps({"version": digest.hexdigest()[:16], "bits": settings.stamp_bits})
    text = _IMPORT.sub(point, source)
    return compact_js(_SITE.sub(lambda _: f"const SITE = {site};", text, count=1))


def write(output: Path, settings: Settings, names: Mapping[str, str] | None = None) -> Path:
    """Write `leadform-sw.js` into the output's root; its path."""
    published = output / settings.static_dir
    target = output / SW_NAME
    target.write_text(render(SOURCE.read_text(encoding="utf-8"), settings, names or {}, published),
                      encoding="utf-8")
    return target
