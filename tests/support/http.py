"""Posting to a freshly started proxy as the page's outbox does.

`/readyz` is answered by one of the proxy's processes (PROXY_WORKERS, one per
CPU by default) while another may still be connecting to RabbitMQ: a 503 then
means "not yet", and a client sends again with the same Idempotency-Key.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from typing import Any

import orjson


def post_until_accepted(request: urllib.request.Request, within: float = 15.0) -> tuple[int, Any]:
    """(status, JSON body) of the first answer that is not a 503, resent with the same headers."""
    deadline = time.monotonic() + within
    while True:
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return answer.status, orjson.loads(answer.read())
        except urllib.error.HTTPError as exc:
            if exc.code != 503 or time.monotonic() > deadline:
                return exc.code, orjson.loads(exc.read() or b"null")
        time.sleep(0.1)
