"""A real Pelican build into a temporary folder, with settings a test chooses."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.procs import ROOT


@dataclass
class Build:
    out: Path
    returncode: int
    log: str

    def html(self, path: str = "index.html") -> str:
        return (self.out / path).read_text(encoding="utf-8")


Builder = Callable[..., Build]


def build_repo_site(out: Path) -> Build:
    """The repository's own site as `./dev build` builds it, any warning fatal."""
    done = subprocess.run([sys.executable, "-m", "pelican", "content", "-o", str(out), "-s", "pelicanconf.py",
                           "--fatal", "warnings"], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          check=False, env={"PATH": "/usr/bin:/bin", "HOME": str(out)})
    return Build(out, done.returncode, done.stdout + done.stderr)


@pytest.fixture
def build(tmp_path: Path) -> Builder:
    """`build(settings_extra="...", content={...}, env={...})` -> Build.

    Extra settings are appended to a copy of pelicanconf.py; `content` adds
    pages (path -> Markdown) to a copy of content/.
    """

    def run(settings_extra: str = "", content: dict[str, str] | None = None,
            env: dict[str, str] | None = None, fatal: bool = False) -> Build:
        src = tmp_path / "content"
        subprocess.run(["cp", "-r", str(ROOT / "content"), str(src)], check=True)
        for name, text in (content or {}).items():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            (src / name).write_text(text, encoding="utf-8")
        conf = tmp_path / "pelicanconf.py"
        base = (ROOT / "pelicanconf.py").read_text(encoding="utf-8")
        # The copy lives elsewhere: point HERE back at the repository.
        base = base.replace("HERE = Path(__file__).resolve().parent", f"HERE = Path({str(ROOT)!r})")
        conf.write_text(base + "\n" + settings_extra, encoding="utf-8")
        out = tmp_path / "output"
        environ = {k: v for k, v in os.environ.items() if k != "LEADFORM_ENDPOINT"}
        args = [sys.executable, "-m", "pelican", str(src), "-o", str(out), "-s", str(conf)]
        done = subprocess.run([*args, *(["--fatal", "errors"] if fatal else [])], cwd=ROOT,
                              env={**environ, "COLUMNS": "400", **(env or {})},
                              capture_output=True, text=True, timeout=120, check=False)
        return Build(out, done.returncode, done.stdout + done.stderr)

    return run
