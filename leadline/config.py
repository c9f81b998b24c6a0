"""Parsing of settings from the environment.

Each parser takes the setting's name so that a bad value stops the program
with one line naming it (`ConfigError`), never a traceback.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from leadline.errors import ConfigError

DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(setting: str, text: str) -> float:
    """`"30s"`, `"2m"`, `"1.5h"`, `"250ms"` or a bare number of seconds -> seconds."""
    match = _DURATION.match(text)
    if not match:
        raise ConfigError(setting, f"{text!r} is not a duration such as 500ms, 30s, 2m, 1h or 1d")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def parse_durations(setting: str, text: str) -> tuple[float, ...]:
    """A comma-separated list of positive durations, such as `5s,30s,2m`."""
    parts = [p for p in text.split(",") if p.strip()]
    if not parts:
        raise ConfigError(setting, "needs at least one duration, such as 5s,30s,2m")
    delays = tuple(parse_duration(setting, p) for p in parts)
    if any(d <= 0 for d in delays):
        raise ConfigError(setting, "every delay must be longer than zero")
    return delays


def format_duration(seconds: float) -> str:
    """The shortest exact spelling, for queue names and logs: 300 -> "5m"."""
    ms = round(seconds * 1000)
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def parse_int(setting: str, text: str, *, minimum: int | None = None) -> int:
    try:
        value = int(text.strip())
    except ValueError:
        raise ConfigError(setting, f"{text!r} is not a whole number") from None
    if minimum is not None and value < minimum:
        raise ConfigError(setting, f"must be at least {minimum}, got {value}")
    return value


def parse_float(setting: str, text: str, *, minimum: float = 0.0) -> float:
    try:
        value = float(text.strip())
    except ValueError:
        raise ConfigError(setting, f"{text!r} is not a number") from None
    if not value >= minimum:  # also refuses NaN
        raise ConfigError(setting, f"must be at least {minimum}, got {text!r}")
    return value


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def parse_choice(setting: str, text: str, choices: Sequence[str]) -> str:
    """One of `choices`, whatever its case (`Flag` -> `flag`), as `choices` spells it."""
    wanted = text.strip().lower()
    for choice in choices:
        if choice.lower() == wanted:
            return choice
    raise ConfigError(setting, f"{text!r} is not one of {', '.join(choices)}")


def parse_log_level(setting: str, text: str) -> str:
    return parse_choice(setting, text, LOG_LEVELS)


def parse_bool(setting: str, text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(setting, f"{text!r} is not one of true/false/yes/no/on/off/1/0")


def amqp_urls(text: str) -> list[str]:
    """The entries of an `AMQP_URL`: one URL, or the nodes of a cluster separated by commas."""
    return [entry.strip() for entry in text.split(",") if entry.strip()]


def redact_url(text: str) -> str:
    """The URL (or each URL of a list) without its password, for messages and logs."""
    return ",".join(_redact_one(url) for url in amqp_urls(text))


def _redact_one(url: str) -> str:
    parts = urlsplit(url)
    try:
        password, port = parts.password, parts.port
    except ValueError:  # a malformed port: say nothing of what follows the scheme
        return f"{parts.scheme}://***" if parts.scheme else "***"
    if password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{port}" if port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def node_address(url: str) -> str:
    """`host:port` of one broker URL: how logs and the `node` metric label name a node."""
    parts = urlsplit(url)
    port = parts.port or (5671 if parts.scheme == "amqps" else 5672)
    return f"{parts.hostname}:{port}"


def parse_amqp_url(setting: str, text: str) -> str:
    """One broker URL, or several separated by commas (the nodes of one cluster).

    Every entry is checked; the answer is the entries joined by commas, without
    blanks or repeats. The entries must name one vhost: the nodes of a cluster
    share their vhosts, and a client must reach the same queues on any of them.
    """
    urls = list(dict.fromkeys(amqp_urls(text)))
    if not urls:
        raise ConfigError(setting, "needs an amqp:// or amqps:// URL (several, comma-separated, "
                          "for the nodes of a cluster)")
    first_vhost: str | None = None
    for i, url in enumerate(urls, start=1):
        where = f"entry {i} of {len(urls)} " if len(urls) > 1 else ""
        parts = urlsplit(url)
        try:
            parts.port  # noqa: B018 - parsing it is the check
        except ValueError:
            raise ConfigError(setting, f"{where}has no valid port: {redact_url(url)!r}") from None
        if parts.scheme not in {"amqp", "amqps"} or not parts.hostname or " " in url:
            raise ConfigError(setting, f"{where}must be an amqp:// or amqps:// URL with a host, "
                              f"got {redact_url(url)!r}")
        vhost = parts.path[1:] or "/"
        if first_vhost is None:
            first_vhost = vhost
        elif vhost != first_vhost:
            raise ConfigError(setting, f"entry 1 names vhost {first_vhost!r} but entry {i} names "
                              f"{vhost!r}: the nodes of one cluster share their vhosts, give every "
                              "entry the same one")
    return ",".join(urls)


def parse_http_url(setting: str, text: str) -> str:
    parts = urlsplit(text.strip())
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ConfigError(setting, f"must be an http:// or https:// URL with a host, got {text!r}")
    return text.strip()


@dataclass(frozen=True, slots=True)
class Rate:
    """`count` requests per `per_seconds`; a token bucket of that size."""

    count: int
    per_seconds: float


_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*(s|sec|second|m|min|minute|h|hour)\s*$")
_RATE_UNITS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60,
               "h": 3600, "hour": 3600}


def parse_rate(setting: str, text: str) -> Rate | None:
    """`30/min`, `5/s`, `100/10s`... or `off` -> None."""
    if text.strip().lower() == "off":
        return None
    match = _RATE.match(text)
    if not match or int(match.group(1)) < 1:
        raise ConfigError(setting, f"{text!r} is not a rate such as 30/min, 5/s or off")
    multiplier = int(match.group(2)) if match.group(2) else 1
    return Rate(int(match.group(1)), float(multiplier * _RATE_UNITS[match.group(3)]))


def parse_origins(setting: str, text: str) -> frozenset[str]:
    """Comma-separated origins (`https://example.com`), or `*` for any."""
    origins = frozenset(o.strip().rstrip("/") for o in text.split(",") if o.strip())
    for origin in origins - {"*"}:
        parts = urlsplit(origin)
        if parts.scheme not in {"http", "https"} or not parts.netloc or parts.path:
            raise ConfigError(setting, f"{origin!r} is not an origin such as https://example.com")
    return origins


_PREFIX = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")


def parse_prefix(setting: str, text: str) -> str:
    """The queue-name prefix (`QUEUE_PREFIX`), such as `leadline` or `leadline-staging`."""
    if not _PREFIX.match(text.strip()):
        raise ConfigError(setting, f"{text!r} must be lowercase letters, digits, - or _, 1-40 long")
    return text.strip()


def get(environ: Mapping[str, str], name: str, default: str) -> str:
    """The raw value, the default when unset or empty."""
    value = environ.get(name, "")
    return value if value.strip() else default
