"""schemathesis hooks for the live proxy test (`SCHEMATHESIS_HOOKS`).

A form-encoded body carries strings only: a negative case that makes a field
`true`, `null` or a number arrives as the string "true", "null", "5", which
may well be valid. Such a case tests the encoding, not the proxy; it is
dropped. Every other case, form-encoded ones included, goes out as generated.
"""

from __future__ import annotations

from typing import Any

import schemathesis

FORM = "application/x-www-form-urlencoded"


@schemathesis.hook
def filter_case(context: Any, case: Any) -> bool:
    if case.media_type != FORM or not isinstance(case.body, dict):
        return True
    return all(isinstance(value, str) for value in case.body.values())
