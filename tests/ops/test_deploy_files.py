"""What can be checked of the container files without a Docker engine: they
parse, and the commands, settings and ports they name exist in the code."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
DOCKERFILE = (ROOT / "Dockerfile").read_text()
CODE = "\n".join(p.read_text() for d in ("leadline", "proxy", "worker") for p in (ROOT / d).rglob("*.py"))


def _module_exists(module: str) -> bool:
    path = ROOT.joinpath(*module.split("."))
    return (path / "__main__.py").exists() or path.with_suffix(".py").exists()


@pytest.mark.parametrize("name", ["proxy", "worker", "crm"])
def test_compose_commands_name_modules_that_exist(name: str) -> None:
    command = COMPOSE["services"][name]["command"]
    assert command[:2] == ["python", "-m"]
    assert _module_exists(command[2]), f"{name}: no module {command[2]}"


@pytest.mark.parametrize("name", ["proxy", "worker", "crm"])
def test_compose_environment_names_settings_the_code_reads(name: str) -> None:
    service = COMPOSE["services"][name]
    env = {**COMPOSE["x-app"]["environment"], **service.get("environment", {})}
    for setting in env:
        assert f'"{setting}"' in CODE, f"{name}: the code reads no setting named {setting}"


def test_compose_ports_are_the_designed_ones() -> None:
    services = COMPOSE["services"]
    assert services["proxy"]["ports"] == ["8080:8080"]
    assert services["worker"]["ports"] == ["9100:9100"]
    assert services["crm"]["ports"] == ["8090:8090"]
    assert services["site"]["ports"] == ["8000:8000"]
    assert services["rabbitmq"]["image"].startswith("rabbitmq:4")


def test_dockerfile_is_slim_pinned_non_root_with_a_healthcheck() -> None:
    assert re.search(r"python:3\.\d+\.\d+-slim", DOCKERFILE), "the base image is pinned to a patch release"
    assert "requirements-runtime.lock" in DOCKERFILE
    assert re.search(r"^USER 10001$", DOCKERFILE, re.M)
    healthcheck = r'^HEALTHCHECK .*\n\s+CMD \["python", "-m", "leadline.healthcheck"\]'
    assert re.search(healthcheck, DOCKERFILE, re.M)
    assert _module_exists("leadline.healthcheck")
    for source in re.findall(r"^COPY (?!--)(\S+)", DOCKERFILE, re.M):
        if source != ".":
            assert (ROOT / source).exists(), f"Dockerfile copies {source}, which is not in the repo"


def test_runtime_lock_pins_what_the_services_import() -> None:
    lock = (ROOT / "requirements-runtime.lock").read_text()
    for package in ("aiohttp", "aiormq", "jsonschema", "orjson", "prometheus_client", "uvloop"):
        assert re.search(rf"^{package}==[\d.]+$", lock, re.M | re.I), package
    full = (ROOT / "requirements.lock").read_text()
    for line in lock.splitlines():
        assert line in full, f"{line} differs between the runtime and the full lock"
