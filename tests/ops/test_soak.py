"""The 500-lead version of `./dev soak`: chaos and all, nothing lost, nothing twice."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.broker, pytest.mark.slow]


def test_500_leads_through_crashes_drops_and_a_flaky_crm_lose_nothing() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.soak", "--leads", "500", "--rate", "50", "--quiet-timeout", "120"],
        cwd=ROOT, capture_output=True, text=True, timeout=400, check=False)
    report = done.stdout
    assert done.returncode == 0, report + done.stderr[-3000:]

    def figure(label: str) -> int:
        match = re.search(rf"^\s+{label}\s+(\d+)", report, re.M)
        assert match, f"no {label!r} line in:\n{report}"
        return int(match.group(1))

    assert figure("accepted") == 500
    assert figure("lost") == 0
    assert figure("duplicate CRM records") == 0
    assert figure("misplaced") == 0
    assert figure("in the CRM") + figure("dead-lettered") == 500
    assert len(re.findall(r"^\s+chaos\s+at \d+ accepted", report, re.M)) == 4, "every chaos step ran"
