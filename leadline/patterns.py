"""JSON Schema's `pattern` as the standard reads it: an ECMA-262 regular
expression, matched anywhere in the value (with the `u` flag, as the page's
`new RegExp(pattern, 'u')` reads it).

Python's `re` reads the same text differently: its `\\s` also takes \\x1c-\\x1f
and \\x85, its `$` also matches before a final newline, its `\\d` takes every
script's digits. The page (ECMA, in the browser) and the proxy must judge a
submission alike, so the proxy and the worker match patterns with regress,
an ECMA-262 engine, too. schemathesis found the difference (an e-mail with
\\x1c in it: fine for the page, refused by the proxy).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Any

import regress

Search = Callable[[str], bool]


class PatternError(ValueError):
    """A pattern that is not an ECMA-262 regular expression."""


@functools.lru_cache(maxsize=512)
def compile_search(pattern: str) -> Search:
    """`search(value)`: whether `pattern` matches anywhere in `value`."""
    try:
        find = regress.Regex(pattern, "u").find
    except regress.RegressError as exc:
        raise PatternError(f"{pattern!r} is not an ECMA-262 regular expression ({exc})") from None

    def search(value: str) -> bool:
        return find(value) is not None

    return search


def patterns_in(schema: Any) -> Iterator[str]:
    """Every `pattern` keyword's value in a schema, at any depth."""
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key == "pattern" and isinstance(value, str):
                yield value
            elif key in ("properties", "$defs", "patternProperties", "dependentSchemas"):
                for sub in value.values() if isinstance(value, dict) else ():
                    yield from patterns_in(sub)
            else:
                yield from patterns_in(value)
    elif isinstance(schema, list):
        for item in schema:
            yield from patterns_in(item)
