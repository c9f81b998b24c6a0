"""The editor's path, end to end: someone else's Pelican site on the default
theme, the plugin installed from this repository into a fresh virtual
environment (`pip install <repository>`, nothing else of ours on its path),
built, served, and its form sent from Chromium through a real proxy and
worker on the test's vhost into the fake CRM.

The fresh environment reuses the wheels `./dev` already downloaded (pip's
cache, the versions pinned by requirements.lock as constraints), so it costs
seconds, not a download; the time is printed.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from tests.browser.conftest import Stack, StaticSite
from tests.browser.test_delivery import FORM, delivered_once, fill
from tests.site.conftest import Build
from tests.site.newsite import new_site
from tests.support.ports import free_port
from tests.support.procs import ROOT

pytestmark = [pytest.mark.browser, pytest.mark.broker, pytest.mark.slow]


def fresh_venv(where: Path) -> Path:
    """A new virtual environment with this repository pip-installed into it; its python."""
    subprocess.run([sys.executable, "-m", "venv", str(where)], check=True, timeout=120)
    python = where / "bin" / "python"
    done = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "-c", str(ROOT / "requirements.lock"), str(ROOT), "markdown"],
        capture_output=True, text=True, timeout=420, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return python


def say(request: pytest.FixtureRequest, line: str) -> None:
    """One line on the terminal, past pytest's capture (a module fixture has no capsys)."""
    capture = request.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled():
        print(line)


@pytest.fixture(scope="module")
def other_site(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> tuple[Build, int]:
    root = tmp_path_factory.mktemp("other-site")
    started = time.monotonic()
    python = fresh_venv(root / "venv")
    installed = time.monotonic() - started
    port = free_port()
    site = new_site(root / "site", python=str(python), endpoint=f"http://127.0.0.1:{port}/api/forms")
    built = time.monotonic() - started - installed
    assert site.returncode == 0, site.log
    say(request, f"\nfresh venv + pip install <repository>: {installed:.1f} s; Pelican build: {built:.1f} s")
    return site, port


@pytest.fixture(scope="module")
def other_stack(other_site: tuple[Build, int], amqp_url: str,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[StaticSite, Stack]]:
    site, port = other_site
    with StaticSite(site.out) as served:
        stack = Stack(amqp_url, port, served.url, tmp_path_factory.mktemp("other-logs")).start()
        try:
            stack.proxy_up()
            yield served, stack
        finally:
            stack.stop()


def test_the_fresh_environment_loads_the_plugin_from_its_own_site_packages(
        other_site: tuple[Build, int]) -> None:
    site, _ = other_site
    venv = site.out.parent.parent / "venv"
    found = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import pelican.plugins.leadform as m; print(m.__file__)"],
        capture_output=True, text=True, timeout=60, check=True, cwd=site.out.parent).stdout.strip()
    assert found.startswith(str(venv)), found
    assert "site-packages" in found


def test_a_visitor_sends_the_form_of_a_default_theme_site_into_the_crm(
        browser: Browser, other_stack: tuple[StaticSite, Stack]) -> None:
    served, stack = other_stack
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{served.url}/pages/contact.html")
    expect(page.locator("link[href='/theme/css/main.css']")).to_have_count(1)  # notmyidea's own look
    email = fill(page, email=f"editor+{uuid.uuid4().hex[:10]}@example.com")
    page.click(f"{FORM} button[type=submit]")
    form = page.locator(FORM)
    expect(page.get_by_role("status")).to_contain_text("Thank you")
    lead = delivered_once(stack, email)
    assert lead["lead"]["email"] == email
    assert lead["lead"]["name"] == "Ada Lovelace"
    expect(form).to_have_attribute("data-state", "sent", timeout=15_000)
    expect(page.get_by_role("status")).to_contain_text("reached our team")
    context.close()


def test_without_javascript_the_form_posts_to_the_plugins_thank_you_page(
        browser: Browser, other_stack: tuple[StaticSite, Stack]) -> None:
    served, stack = other_stack
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(f"{served.url}/pages/contact.html")
    email = fill(page, email=f"nojs+{uuid.uuid4().hex[:10]}@example.com")
    page.click(f"{FORM} button[type=submit]")
    page.wait_for_url(re.compile(rf"^{re.escape(served.url)}/thanks/lead/(en/)?$"), timeout=15_000)
    expect(page.get_by_role("heading", name="Thank you")).to_be_visible()
    delivered_once(stack, email)
    context.close()
