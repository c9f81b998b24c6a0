"""`python -m leadline.healthcheck`: the container HEALTHCHECK, without curl in the image.

Exit 0 when `HEALTHCHECK_URL` answers 2xx within 3 seconds, 1 otherwise.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

DEFAULT_URL = "http://127.0.0.1:8080/healthz"


def main() -> int:
    url = os.environ.get("HEALTHCHECK_URL") or DEFAULT_URL
    if not url.startswith(("http://", "https://")):
        print(f"HEALTHCHECK_URL: must be an http(s) URL, got {url!r}", file=sys.stderr)
        return 1
    try:
        with urllib.request.urlopen(url, timeout=3) as answer:  # noqa: S310 - scheme checked above
            return 0 if 200 <= answer.status < 300 else 1
    except (urllib.error.URLError, OSError) as exc:
        print(f"unhealthy: {url}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
