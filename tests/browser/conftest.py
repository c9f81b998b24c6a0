"""The built site served locally, the real pipeline behind it, and Chromium.

The site is built once per session with LEADFORM_ENDPOINT pointing at a proxy
port chosen up front, so a test can stop and start the proxy on that port.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Playwright, sync_playwright

from tests.support.ports import free_port
from tests.support.procs import ROOT, Service

CHROMIUM = "/usr/bin/chromium"  # Debian's; .ci/run installs it
GET_A_BROWSER = ("no Chromium for the browser tests: apt-get install chromium (Debian), "
                 "or .venv/bin/python -m playwright install chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


# Pages in other languages, beside the site's own content: the form speaks
# each page's Pelican `Lang` (pelicanconf.py saves them as <lang>/<slug>/).
PAGES_IN = {
    "de": ("de/kontakt/index.html", "Title: Kontakt\nSlug: kontakt\nLang: de\n\n<!-- leadform: lead -->\n"),
    "zh": ("zh/lianxi/index.html", "Title: 联系我们\nSlug: lianxi\nLang: zh\n\n<!-- leadform: lead -->\n"),
}


def build_site(out: Path, endpoint: str) -> None:
    """A real Pelican build, as `./dev build` runs it, of the site's content plus
    a German and a Chinese page with the form."""
    content = out.parent / f"{out.name}-content"
    shutil.copytree(ROOT / "content", content)
    for lang, (_, text) in PAGES_IN.items():
        (content / "pages" / f"form-{lang}.md").write_text(text, encoding="utf-8")
    env = {**os.environ, "LEADFORM_ENDPOINT": endpoint}
    args = [sys.executable, "-m", "pelican", str(content), "-o", str(out), "-s", "pelicanconf.py"]
    done = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def asset(name: str) -> str:
    """The URL path of one of the plugin's files by its source name (`js/rules.js`),
    as the built pages link it: content-hashed (assets.publish)."""
    # Imported here, not at the top: importing Pelican installs its logger class
    # (which drops repeated records) for every logger made after it, and this
    # conftest is read before the modules whose loggers other tests watch.
    from pelican.plugins.leadform import assets

    return f"/leadform/{assets.plan().names[name]}"


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class StaticSite:
    """`output/` on a CDN, played by http.server on a free port."""

    def __init__(self, root: Path) -> None:
        handler = functools.partial(_Quiet, directory=str(root))
        self.root = root
        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> StaticSite:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture(scope="session")
def proxy_port() -> int:
    return free_port()


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory, proxy_port: int) -> Iterator[StaticSite]:
    out = tmp_path_factory.mktemp("site")
    build_site(out, f"http://127.0.0.1:{proxy_port}/api/forms")
    with StaticSite(out) as served:
        yield served


@pytest.fixture(scope="session")
def site_url(site: StaticSite) -> str:
    return site.url


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as answer:
        return json.load(answer)


def wait_for(check: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class Stack:
    """Fake CRM, worker and proxy, for real, as child processes."""

    def __init__(self, amqp_url: str, proxy_port: int, site_url: str, logs: Path) -> None:
        prefix = f"b{uuid.uuid4().hex[:10]}"
        self.crm_url = f"http://127.0.0.1:{free_port()}"
        common = {"AMQP_URL": amqp_url, "QUEUE_PREFIX": prefix}
        self.crm = Service("fakecrm", ["-m", "worker.fakecrm", "--port", self.crm_url.rsplit(":", 1)[1]],
                           {}, logs)
        self.worker = Service("worker", ["-m", "worker"], {**common, "CRM_URL": f"{self.crm_url}/leads",
                                                           "WORKER_METRICS_PORT": "0"}, logs)
        self.proxy_url = f"http://127.0.0.1:{proxy_port}"
        self.proxy_env = {**common, "ALLOWED_ORIGINS": site_url, "RATE_LIMIT": "off"}
        self.logs = logs
        self.proxy: Service | None = None

    def start(self) -> Stack:
        self.crm.start().wait_http(f"{self.crm_url}/_stats")
        self.worker.start()
        return self

    def proxy_up(self) -> None:
        port = self.proxy_url.rsplit(":", 1)[1]
        self.proxy = Service("proxy", ["-m", "proxy", "--port", port], self.proxy_env, self.logs).start()
        self.proxy.wait_http(f"{self.proxy_url}/readyz")

    def proxy_down(self) -> None:
        if self.proxy is not None:
            self.proxy.stop()
            self.proxy = None

    def stop(self) -> None:
        self.proxy_down()
        self.worker.stop()
        self.crm.stop()

    def leads(self, email: str) -> list[dict[str, Any]]:
        """What the CRM stored for this e-mail address."""
        leads: list[dict[str, Any]] = get_json(f"{self.crm_url}/_leads")
        return [lead for lead in leads if lead.get("lead", {}).get("email") == email]

    def calls(self) -> list[dict[str, Any]]:
        """Every call the CRM received, each with the Idempotency-Key as `id`."""
        calls: list[dict[str, Any]] = get_json(f"{self.crm_url}/_calls")
        return calls

    def stats(self) -> dict[str, int]:
        stats: dict[str, int] = get_json(f"{self.crm_url}/_stats")
        return stats


@pytest.fixture(scope="module")
def stack(amqp_url: str, proxy_port: int, site_url: str,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = Stack(amqp_url, proxy_port, site_url, tmp_path_factory.mktemp("logs")).start()
    try:
        yield running
    finally:
        running.stop()


def find_chromium(playwright: Playwright) -> str | None:
    """Debian's Chromium, else one Playwright manages (`playwright install chromium`), else None."""
    if Path(CHROMIUM).exists():
        return CHROMIUM
    managed = playwright.chromium.executable_path
    return managed if managed and Path(managed).exists() else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Without any Chromium, say once how to get one and leave the browser tests out."""
    browser_tests = [item for item in items if item.get_closest_marker("browser")]
    if not browser_tests or Path(CHROMIUM).exists():
        return
    with sync_playwright() as p:
        if find_chromium(p) is not None:
            return
    config.hook.pytest_deselected(items=browser_tests)
    items[:] = [item for item in items if not item.get_closest_marker("browser")]
    terminal = config.pluginmanager.get_plugin("terminalreporter")
    if terminal is not None:
        terminal.write_line(f"{GET_A_BROWSER} ({len(browser_tests)} browser tests left out)")


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def chromium(playwright: Playwright) -> str:
    """The browser's executable; without one the browser tests skip, saying how to get one."""
    found = find_chromium(playwright)
    if found is None:
        pytest.skip(GET_A_BROWSER)
    return found


@pytest.fixture(scope="module")
def browser(playwright: Playwright, chromium: str) -> Iterator[Browser]:
    browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
    yield browser
    browser.close()
