"""Who may look and who may change: HTTP Basic auth, CSRF tokens, security headers.

Pure functions; the middleware in `app` applies them. The password is
compared as SHA-256 digests with `hmac.compare_digest`, so neither its
content nor its length shows in the time an answer takes. A CSRF token is
`<issued>.<HMAC(secret, user, issued)>`: a cross-site page can make the
browser send the Basic credentials, but it cannot read a page to learn the
token. The secret is made at start, so a restart invalidates open forms.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from urllib.parse import urlsplit

REALM = "Leadline dead letters"
CSRF_FIELD = "csrf"
CSRF_MAX_AGE = 12 * 3600.0
CHALLENGE = f'Basic realm="{REALM}", charset="UTF-8"'
SECURITY_HEADERS = {
    "Content-Security-Policy": ("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
                                "frame-ancestors 'none'; base-uri 'none'"),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), interest-cohort=()",
}


def new_secret() -> bytes:
    return secrets.token_bytes(32)


def basic_user(header: str | None, token: str) -> str | None:
    """The user name when `Authorization` carries the right password (any user name), else None."""
    if not header:
        return None
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, colon, password = decoded.partition(":")
    if not colon:
        return None
    given = hashlib.sha256(password.encode()).digest()
    wanted = hashlib.sha256(token.encode()).digest()
    return user if hmac.compare_digest(given, wanted) else None


def csrf_token(secret: bytes, user: str, now: float) -> str:
    issued = str(int(now))
    return f"{issued}.{_mac(secret, user, issued)}"


def csrf_valid(secret: bytes, user: str, token: str | None, now: float) -> bool:
    if not token:
        return False
    issued, _, mac = token.partition(".")
    if not issued.isdigit() or not 0 <= now - int(issued) <= CSRF_MAX_AGE:
        return False
    return hmac.compare_digest(mac.encode(), _mac(secret, user, issued).encode())


def _mac(secret: bytes, user: str, issued: str) -> str:
    digest = hmac.new(secret, f"{user}\n{issued}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def same_origin(origin: str | None, fetch_site: str | None, host: str) -> bool:
    """A change must come from the console's own pages. Browsers say where a request
    comes from in `Sec-Fetch-Site` (whatever proxies do to Host and scheme); without it,
    an `Origin` must name this host. `Origin: null` (a browser under `no-referrer`) and
    a tool sending neither are let through: the CSRF token still has to be right."""
    if fetch_site is not None:
        return fetch_site == "same-origin"
    if origin is None or origin == "null":
        return True
    return urlsplit(origin).netloc == host
