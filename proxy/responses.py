"""The proxy's answers: small JSON bodies for scripts, small HTML pages for
browsers posting a plain form (the no-JavaScript path)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

import orjson
from aiohttp import web

from leadline.schemas import FieldError

# Short words a client can branch on, next to the HTTP status.
STATUS_WORDS = {
    400: "bad_request", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
    413: "too_large", 415: "unsupported_media_type", 422: "invalid", 429: "rate_limited",
    500: "error", 503: "unavailable",
}
HTML_SECURITY = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
}


def json_answer(status: int, payload: Mapping[str, object],
                headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(payload),
                        content_type="application/json", headers=headers)


def queued(submission_id: str, headers: Mapping[str, str]) -> web.Response:
    return json_answer(202, {"status": "queued", "id": submission_id}, headers)


def refused(status: int, message: str, headers: Mapping[str, str] | None = None,
            *, submission_id: str | None = None) -> web.Response:
    payload: dict[str, object] = {"status": STATUS_WORDS.get(status, "error"), "message": message}
    if submission_id is not None:
        payload["id"] = submission_id
    return json_answer(status, payload, headers)


def invalid(errors: Sequence[FieldError], headers: Mapping[str, str]) -> web.Response:
    return json_answer(422, {"status": "invalid", "errors": [e.as_dict() for e in errors]}, headers)


def see_other(location: str, headers: Mapping[str, str]) -> web.Response:
    return web.Response(status=303, headers={**headers, "Location": location})


def page(status: int, title: str, message: str, *, items: Sequence[tuple[str, str]] = (),
         back: str | None = None, back_text: str = "Back to the form", lang: str = "en",
         headers: Mapping[str, str] | None = None) -> web.Response:
    """A small, self-contained HTML page in `lang` (an HTML language tag); every text is escaped.

    `items`: (label, problem) per field, already worded (proxy.texts)."""
    heading = escape(title)
    listing = "".join(f"<li><strong>{escape(label)}</strong> {escape(problem)}</li>"
                      for label, problem in items)
    listing = f"<ul>{listing}</ul>" if listing else ""
    link = f'<p><a href="{escape(back, quote=True)}">{escape(back_text)}</a></p>' if back else ""
    text = (
        f"<!doctype html><html lang=\"{escape(lang, quote=True)}\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>{heading}</title>"
        "<style>body{font:1rem/1.5 system-ui,sans-serif;max-width:36rem;margin:2rem auto;"
        "padding:0 1rem}</style></head>"
        f"<body><main><h1>{heading}</h1><p role=\"status\">{escape(message)}</p>{listing}{link}"
        "</main></body></html>"
    )
    return web.Response(status=status, text=text, content_type="text/html", charset="utf-8",
                        headers={**(headers or {}), **HTML_SECURITY})
