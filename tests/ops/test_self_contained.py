"""A clone is all there is: nothing in the repository points outside it, and
every relative link in its Markdown leads to a file it has."""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.support.procs import ROOT

OUTSIDE = re.compile(r"\.\./shared|/work/shared|\bDESIGN\.md\b")
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def tracked_files() -> list[str]:
    done = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip("not a git checkout")
    return [f for f in done.stdout.splitlines() if (ROOT / f).is_file()]


def test_no_file_points_outside_the_repository() -> None:
    pointing = []
    for name in tracked_files():
        if name == "tests/ops/test_self_contained.py":
            continue
        try:
            text = (ROOT / name).read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        pointing += [f"{name}: {m.group(0)}" for m in OUTSIDE.finditer(text)]
    assert pointing == []


def test_relative_links_in_the_markdown_lead_to_files_of_the_repository() -> None:
    broken = []
    for name in (f for f in tracked_files() if f.endswith(".md")):
        text = (ROOT / name).read_text(encoding="utf-8")
        for target in LINK.findall(text):
            if re.match(r"^[a-z]+:", target):
                continue  # https:, mailto:
            if not ((ROOT / name).parent / target).resolve().exists():
                broken.append(f"{name} -> {target}")
    assert broken == []


def test_the_architecture_document_covers_what_the_next_engineer_needs() -> None:
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    for heading in ("## The data flow", "## Guarantees per hop", "## Where each concern lives",
                    "## The public interface"):
        assert heading in text
    for path in re.findall(r"`((?:leadline|proxy|worker|devtools|site|themes|tests|deploy)/[\w./-]+)`", text):
        if "*" not in path and "<" not in path:
            assert (ROOT / path).exists(), path
