"""Posting to a proxy started as its own process, with the standard library."""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import Any

import orjson


def post(request: urllib.request.Request) -> tuple[int, Any]:
    """(status, JSON body) of one request; an error status is an answer here, not an exception.

    Once the proxy's `/readyz` said 200, every one of its processes takes
    submissions (`proxy.readiness`): a 503 after that is a failure to report,
    so nothing here sends again.
    """
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, orjson.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, orjson.loads(exc.read() or b"null")
