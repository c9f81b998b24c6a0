"""The cache rules as a `_headers` file, the format Netlify and Cloudflare Pages read.

Hashed assets (their name changes with their bytes) may be kept forever;
HTML pages and the service worker (whose URL must stay stable) are
revalidated on every load, so a new build shows at once and a page never
meets a script of another build. deploy/nginx-site.conf says the same.

Every rule names one path exactly: where two rules match one request, these
hosts merge their headers, and `no-cache` beside `immutable` would undo the
point. A page is named under each URL it is served at (`/privacy/` and
`/privacy/index.html`; `/about.html` and `/about`, Cloudflare's pretty URL).
"""

from __future__ import annotations

from pathlib import Path

from .settings import SW_NAME

FILE = "_headers"
IMMUTABLE = "public, max-age=31536000, immutable"
NO_CACHE = "no-cache"
# sworker's service worker, written to the output root under a stable name.
SERVICE_WORKER = SW_NAME


def page_urls(rel: str) -> list[str]:
    """The URLs an HTML file at `rel` (relative to the output root) is served at."""
    path = "/" + rel
    if rel == "index.html" or rel.endswith("/index.html"):
        return [path[: -len("index.html")], path]
    return [path, path[: -len(".html")]]


def rules(out: Path, hashed: list[str]) -> list[tuple[str, str]]:
    """(path, Cache-Control) for every hashed asset, every HTML page under `out`
    and the service worker, each path once."""
    found: dict[str, str] = {}
    for rel in hashed:
        found["/" + rel] = IMMUTABLE
    found["/" + SERVICE_WORKER] = NO_CACHE
    for page in sorted(out.rglob("*.html")):
        for url in page_urls(page.relative_to(out).as_posix()):
            found.setdefault(url, NO_CACHE)
    return sorted(found.items())


def render(found: list[tuple[str, str]]) -> str:
    lines = ["# Cache rules (Netlify, Cloudflare Pages), written by the leadform plugin:",
             "# hashed scripts and styles forever, pages and the service worker revalidated."]
    for path, value in found:
        lines += [path, f"  Cache-Control: {value}"]
    return "\n".join(lines) + "\n"
