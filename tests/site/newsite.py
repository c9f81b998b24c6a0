"""A Pelican site of someone else's: its own folder, settings and content, any
theme (Pelican's default `notmyidea` unless told), and the plugin loaded the
way such a site loads it: `PLUGINS = ["leadform"]`, nothing from this repository
on any path but the installed package."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.site.conftest import Build
from tests.support.procs import ROOT

LANDING = """Title: Talk to us
Slug: contact

Questions? Write to us.

<!-- leadform: lead -->
"""


def new_site(root: Path, settings: str = "", content: dict[str, str] | None = None,
             python: str = sys.executable, endpoint: str = "http://127.0.0.1:8080/api/forms") -> Build:
    """Write the site under `root` (`pages/contact.md` with the lead form unless
    `content` says otherwise), build it with `python -m pelican`, return the build."""
    (root / "content" / "pages").mkdir(parents=True, exist_ok=True)
    (root / "schemas").mkdir(exist_ok=True)
    schema = json.loads((ROOT / "schemas" / "lead.schema.json").read_text(encoding="utf-8"))
    (root / "schemas" / "lead.schema.json").write_text(json.dumps(schema), encoding="utf-8")
    for name, text in (content or {"pages/contact.md": LANDING}).items():
        (root / "content" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "content" / name).write_text(text, encoding="utf-8")
    # What an editor adds to a pelicanconf.py of their own (README, "For editors").
    conf = root / "pelicanconf.py"
    conf.write_text(
        'AUTHOR = "Someone else"\nSITENAME = "Another site"\nSITEURL = ""\nPATH = "content"\n'
        'TIMEZONE = "UTC"\nDEFAULT_LANG = "en"\nFEED_ALL_ATOM = None\nCATEGORY_FEED_ATOM = None\n'
        'PLUGINS = ["leadform"]\n'
        f'LEADFORM = {{"schema_dir": {str(root / "schemas")!r}, "endpoint": {endpoint!r}}}\n'
        + settings, encoding="utf-8")
    out = root / "output"
    environ = {k: v for k, v in os.environ.items() if k not in {"LEADFORM_ENDPOINT", "PYTHONPATH"}}
    done = subprocess.run([python, "-m", "pelican", str(root / "content"), "-o", str(out), "-s", str(conf)],
                          cwd=root, env={**environ, "COLUMNS": "400"}, capture_output=True, text=True,
                          timeout=180, check=False)
    return Build(out, done.returncode, done.stdout + done.stderr)
