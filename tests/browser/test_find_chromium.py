"""Which Chromium the browser tests drive: Debian's, else one Playwright
manages, else none, and then they skip with one line on how to get one."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tests.browser import conftest


def fake_playwright(managed: str) -> Any:
    return SimpleNamespace(chromium=SimpleNamespace(executable_path=managed))


def test_debians_chromium_comes_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    debian, managed = tmp_path / "chromium", tmp_path / "managed-chrome"
    debian.touch()
    managed.touch()
    monkeypatch.setattr(conftest, "CHROMIUM", str(debian))
    assert conftest.find_chromium(fake_playwright(str(managed))) == str(debian)


def test_without_it_a_playwright_managed_chromium_is_used(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    managed = tmp_path / "managed-chrome"
    managed.touch()
    monkeypatch.setattr(conftest, "CHROMIUM", str(tmp_path / "none"))
    assert conftest.find_chromium(fake_playwright(str(managed))) == str(managed)


def test_with_neither_there_is_none_and_the_skip_says_how_to_get_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(conftest, "CHROMIUM", str(tmp_path / "none"))
    assert conftest.find_chromium(fake_playwright(str(tmp_path / "not-installed"))) is None
    assert "apt-get install chromium" in conftest.GET_A_BROWSER
    assert "playwright install chromium" in conftest.GET_A_BROWSER
    assert "\n" not in conftest.GET_A_BROWSER
