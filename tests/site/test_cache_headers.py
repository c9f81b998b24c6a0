"""Cache headers: `_headers` (Netlify, Cloudflare Pages) read against the built
files, and deploy/nginx-site.conf, read and, where Debian's nginx is installed,
served for real."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from pelican.plugins.leadform import assets, headers

from tests.site.conftest import Build, build_repo_site
from tests.site.test_hashed_assets import linked
from tests.support.ports import free_port
from tests.support.procs import ROOT

NGINX_CONF = ROOT / "deploy" / "nginx-site.conf"
IMMUTABLE = "public, max-age=31536000, immutable"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Build:
    built = build_repo_site(tmp_path_factory.mktemp("site"))
    assert built.returncode == 0, built.log
    return built


def parse(text: str) -> dict[str, dict[str, str]]:
    """`_headers` as {path: {header: value}}; a path named twice is an error."""
    rules: dict[str, dict[str, str]] = {}
    path = None
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not line[0].isspace():
            assert line not in rules, f"{line} has two rules: hosts would merge their headers"
            path = line.strip()
            rules[path] = {}
            continue
        assert path is not None, f"a header before any path: {line!r}"
        name, _, value = line.strip().partition(":")
        rules[path][name.strip()] = value.strip()
    return rules


def test_hashed_assets_are_immutable_pages_and_the_service_worker_revalidated(site: Build) -> None:
    rules = parse((site.out / "_headers").read_text())
    assert rules["/leadform-sw.js"] == {"Cache-Control": "no-cache"}
    pages = sorted(site.out.rglob("*.html"))
    assert len(pages) >= 6  # landing, privacy, the thank-you page in DEFAULT_LANG, en, de, zh
    for page in pages:
        for url in headers.page_urls(page.relative_to(site.out).as_posix()):
            assert rules[url] == {"Cache-Control": "no-cache"}, url
    hashed = [p for p in site.out.rglob("*") if p.is_file() and assets.HASHED.search(p.name)]
    assert len(hashed) >= 7
    for file in hashed:
        assert rules["/" + file.relative_to(site.out).as_posix()] == {"Cache-Control": IMMUTABLE}
    # No rule for a file that is not there (bar the service worker, which another part writes).
    for path, rule in rules.items():
        if rule["Cache-Control"] == IMMUTABLE:
            assert (site.out / path.lstrip("/")).is_file(), path
    # Every script and style a page links is kept long.
    for page in pages:
        for url in linked(page.read_text(encoding="utf-8")):
            assert rules[url]["Cache-Control"] == IMMUTABLE, url


def test_the_pretty_urls_of_a_page_are_named() -> None:
    assert headers.page_urls("index.html") == ["/", "/index.html"]
    assert headers.page_urls("privacy/index.html") == ["/privacy/", "/privacy/index.html"]
    assert headers.page_urls("pages/contact.html") == ["/pages/contact.html", "/pages/contact"]


def locations(conf: str) -> dict[str, str]:
    """nginx `location X { body }` blocks as {X: body} (no nested blocks in this file)."""
    found = re.finditer(r"^[ \t]*location\s+([^\n]+?)\s*\{[ \t]*\n(.*?)\n[ \t]*\}", conf, re.S | re.M)
    return {m.group(1).strip(): m.group(2) for m in found}


def test_the_nginx_config_has_the_same_rules() -> None:
    conf = NGINX_CONF.read_text()
    blocks = locations(conf)
    [hashed] = [b for where, b in blocks.items() if "[0-9a-f]{8}" in where]
    assert f'Cache-Control "{IMMUTABLE}"' in hashed
    assert 'Cache-Control "no-cache"' in blocks["= /leadform-sw.js"]
    assert 'Cache-Control "no-cache"' in blocks["/"]
    # add_header in a location drops the server's: each block repeats the security headers.
    for where, body in blocks.items():
        assert "X-Content-Type-Options nosniff" in body, where
        assert "Referrer-Policy" in body, where
    assert "expires" not in conf  # Cache-Control is said once, by add_header
    pattern = re.search(r'location ~ "([^"]+)"', conf)
    assert pattern is not None
    for name in assets.plan().names.values():
        assert re.search(pattern.group(1), "/leadform/" + name), name
    assert not re.search(pattern.group(1), "/leadform-sw.js")
    assert not re.search(pattern.group(1), "/theme/css/site.css")


@pytest.fixture(scope="module")
def nginx(site: Build, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if binary is None:
        pytest.skip("nginx is not installed (apt-get install nginx-light); its config was checked as text")
    run = tmp_path_factory.mktemp("nginx")
    port = free_port()
    (site.out / "leadform-sw.js").write_text("// the service worker's stand-in\n")
    server = NGINX_CONF.read_text().replace("listen 8000;", f"listen 127.0.0.1:{port};")
    server = server.replace("root /usr/share/nginx/html;", f"root {site.out};")
    (run / "nginx.conf").write_text(
        f"user root;\ndaemon off;\nworker_processes 1;\npid {run}/nginx.pid;\nerror_log {run}/error.log;\n"
        "events { worker_connections 64; }\n"
        f"http {{ access_log off; client_body_temp_path {run}; proxy_temp_path {run}; "
        f"fastcgi_temp_path {run}; uwsgi_temp_path {run}; scgi_temp_path {run};\n"
        "types { text/html html; text/css css; text/javascript js; }\n"
        f"{server}\n}}\n")
    proc = subprocess.Popen([binary, "-c", str(run / "nginx.conf"), "-p", str(run)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(50):
            try:
                urllib.request.urlopen(url + "/", timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None:
                    raise AssertionError((run / "error.log").read_text()) from None
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def cache_control(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as answer:
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
        return str(answer.headers["Cache-Control"])


def test_nginx_serves_the_built_site_with_those_headers(site: Build, nginx: str) -> None:
    rules = parse((site.out / "_headers").read_text())
    for path, rule in rules.items():
        assert cache_control(nginx + path) == rule["Cache-Control"], path
