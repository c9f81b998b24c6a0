"""Which origins may post, and the CORS headers that tell browsers so.

A request's origin is its `Origin` header, or the origin of its `Referer`
when a browser sent no `Origin`; a request with neither (curl, a server)
carries no browser context to check and is let through. An origin that is
present and not on the allowlist is refused (403) and gets no CORS headers.
"""

from __future__ import annotations

import functools
from urllib.parse import urlsplit

ALLOW_METHODS = "POST, OPTIONS"
ALLOW_HEADERS = "Content-Type, Idempotency-Key, traceparent, X-Leadline-Stamp"
EXPOSE_HEADERS = "Retry-After, Idempotency-Key"
MAX_AGE_SECONDS = "600"

# Marks "the request named an origin we could not read", which is never allowed.
UNREADABLE = "unreadable"


# Pages post from a handful of origins: each is parsed once, not on every request.
@functools.lru_cache(maxsize=1024)
def origin_of_url(url: str) -> str | None:
    """`https://Example.com/page?q` -> `https://example.com`; None if not an http(s) URL."""
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
        port = parts.port
    except ValueError:
        return None
    if parts.scheme.lower() not in {"http", "https"} or not host:
        return None
    return f"{parts.scheme.lower()}://{host}" + (f":{port}" if port is not None else "")


def request_origin(origin: str | None, referer: str | None) -> str | None:
    """The origin the browser says the request comes from, None when it says nothing."""
    if origin is not None:
        return origin_of_url(origin) or UNREADABLE
    if referer:
        return origin_of_url(referer) or UNREADABLE
    return None


class Cors:
    def __init__(self, allowed: frozenset[str]) -> None:
        self.any = "*" in allowed
        self._allowed = frozenset(o for o in (origin_of_url(a) for a in allowed - {"*"}) if o)

    def allows(self, origin: str | None) -> bool:
        if origin is None:
            return True
        if origin == UNREADABLE:
            return False
        return self.any or origin in self._allowed

    @staticmethod
    def response_headers(origin_header: str | None) -> dict[str, str]:
        """For an allowed request: let the page read the answer."""
        headers = {"Vary": "Origin"}
        if origin_header is not None:
            headers["Access-Control-Allow-Origin"] = origin_header
            headers["Access-Control-Expose-Headers"] = EXPOSE_HEADERS
        return headers

    @staticmethod
    def preflight_headers(origin_header: str | None) -> dict[str, str]:
        headers = Cors.response_headers(origin_header)
        headers.update({
            "Access-Control-Allow-Methods": ALLOW_METHODS,
            "Access-Control-Allow-Headers": ALLOW_HEADERS,
            "Access-Control-Max-Age": MAX_AGE_SECONDS,
            "Allow": ALLOW_METHODS,
        })
        return headers
