"""The proxy's settings: one frozen object, read from the environment once.

Every parser names its setting, so a bad value stops start-up with one line
(`ConfigError`) that says which setting and why.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass

from leadline import config
from leadline.config import Rate
from leadline.errors import ConfigError
from leadline.topology import DEFAULT_PREFIX
from leadline.tracing import TracingSettings

SERVICE_NAME = "leadline-proxy"  # OTEL_SERVICE_NAME wins
NO_TRACING = TracingSettings(service_name=SERVICE_NAME)
DEFAULT_ORIGINS = "http://127.0.0.1:8000,http://localhost:8000"
DEFAULT_THANKS_PATH = "/thanks/{form}/"
# The spam stamp (proxy.stamp). 16 bits: about 65,000 hashes in the browser,
# until the page's timing in a throttled Chromium says otherwise.
STAMP_MODES = ("off", "flag", "require")
DEFAULT_STAMP_MODE = "flag"
DEFAULT_STAMP_BITS = 16
# Above 32 bits a phone would hash for hours: that is a typo, not a policy.
MAX_STAMP_BITS = 32
DEFAULT_STAMP_MAX_AGE = "30d"
DEFAULT_RATE = Rate(30, 60.0)
# One process per CPU: measured in `./dev bench proxy` on 2 cores, two
# processes take 1.3x the leads of one, with a lower p99 (group commit keeps
# the broker's share small); the workers share one /metrics.
DEFAULT_WORKERS = "auto"

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# A path on the site's origin: no scheme, no host, no "//" that a browser would
# read as another host, no query; `{form}` and `{lang}` are the placeholders.
_THANKS_PATH = re.compile(r"^/(?!/)[A-Za-z0-9._~/{}-]*$")


@dataclass(frozen=True, slots=True)
class Settings:
    amqp_url: str = config.DEFAULT_AMQP_URL
    queue_prefix: str = DEFAULT_PREFIX
    allowed_origins: frozenset[str] = frozenset(DEFAULT_ORIGINS.split(","))
    rate_limit: Rate | None = DEFAULT_RATE
    trusted_proxies: tuple[IpNetwork, ...] = ()
    max_body_bytes: int = 16384
    publish_timeout: float = 5.0
    thanks_path: str = DEFAULT_THANKS_PATH
    log_level: str = "INFO"
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1  # from the environment: DEFAULT_WORKERS
    tracing: TracingSettings = NO_TRACING
    spam_stamp: str = DEFAULT_STAMP_MODE
    spam_stamp_bits: int = DEFAULT_STAMP_BITS
    spam_stamp_max_age: float = 30 * 86400.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Every setting from `environ`; the first bad one raises `ConfigError`."""

        def get(name: str, default: str) -> str:
            return config.get(environ, name, default)

        return cls(
            amqp_url=config.parse_amqp_url("AMQP_URL", get("AMQP_URL", config.DEFAULT_AMQP_URL)),
            queue_prefix=config.parse_prefix("QUEUE_PREFIX", get("QUEUE_PREFIX", DEFAULT_PREFIX)),
            allowed_origins=_parse_origins(get("ALLOWED_ORIGINS", DEFAULT_ORIGINS)),
            rate_limit=config.parse_rate("RATE_LIMIT", get("RATE_LIMIT", "30/min")),
            trusted_proxies=parse_networks("TRUSTED_PROXIES", get("TRUSTED_PROXIES", "")),
            max_body_bytes=config.parse_int("MAX_BODY_BYTES", get("MAX_BODY_BYTES", "16384"), minimum=256),
            publish_timeout=_positive_duration("PUBLISH_TIMEOUT", get("PUBLISH_TIMEOUT", "5s")),
            thanks_path=parse_thanks_path("THANKS_PATH", get("THANKS_PATH", DEFAULT_THANKS_PATH)),
            log_level=config.parse_log_level("LOG_LEVEL", get("LOG_LEVEL", "INFO")),
            host=get("PROXY_HOST", "127.0.0.1").strip(),
            port=parse_port("PROXY_PORT", get("PROXY_PORT", "8080")),
            workers=parse_workers("PROXY_WORKERS", get("PROXY_WORKERS", DEFAULT_WORKERS)),
            tracing=TracingSettings.from_env(environ, service=SERVICE_NAME),
            spam_stamp=config.parse_choice("SPAM_STAMP", get("SPAM_STAMP", DEFAULT_STAMP_MODE), STAMP_MODES),
            spam_stamp_bits=parse_stamp_bits("SPAM_STAMP_BITS",
                                             get("SPAM_STAMP_BITS", str(DEFAULT_STAMP_BITS))),
            spam_stamp_max_age=_positive_duration("SPAM_STAMP_MAX_AGE",
                                                  get("SPAM_STAMP_MAX_AGE", DEFAULT_STAMP_MAX_AGE)),
        )


def _parse_origins(text: str) -> frozenset[str]:
    origins = config.parse_origins("ALLOWED_ORIGINS", text)
    if not origins:
        raise ConfigError("ALLOWED_ORIGINS", "needs at least one origin, such as https://example.com")
    return origins


def _positive_duration(setting: str, text: str) -> float:
    seconds = config.parse_duration(setting, text)
    if seconds <= 0:
        raise ConfigError(setting, "must be longer than zero")
    return seconds


def parse_stamp_bits(setting: str, text: str) -> int:
    bits = config.parse_int(setting, text, minimum=0)
    if bits > MAX_STAMP_BITS:
        raise ConfigError(setting, f"must be 0 to {MAX_STAMP_BITS} (each bit doubles the page's "
                          f"work), got {bits}")
    return bits


def parse_port(setting: str, text: str) -> int:
    port = config.parse_int(setting, text, minimum=0)
    if port > 65535:
        raise ConfigError(setting, f"must be at most 65535, got {port}")
    return port


MAX_WORKERS = 64


def parse_workers(setting: str, text: str) -> int:
    """A number of processes, or `auto`: one per CPU this process may use."""
    if text.strip().lower() == "auto":
        from proxy.workers import cpu_count

        return cpu_count()
    try:
        workers = int(text.strip())
    except ValueError:
        raise ConfigError(setting, f"{text!r} is neither a number of processes nor auto") from None
    if not 1 <= workers <= MAX_WORKERS:
        raise ConfigError(setting, f"must be auto or 1 to {MAX_WORKERS}, got {workers}")
    return workers


def parse_networks(setting: str, text: str) -> tuple[IpNetwork, ...]:
    """Comma-separated addresses or CIDR blocks (`10.0.0.0/8, 127.0.0.1`)."""
    networks: list[IpNetwork] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        try:
            networks.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise ConfigError(setting, f"{part!r} is not an IP address or network") from None
    return tuple(networks)


def parse_thanks_path(setting: str, text: str) -> str:
    path = text.strip()
    leftover = path.replace("{form}", "").replace("{lang}", "")
    if not _THANKS_PATH.match(path) or "{" in leftover or "}" in leftover:
        raise ConfigError(setting, f"{text!r} must be a path such as /thanks/{{form}}/ "
                          "({form} and {lang} are the only placeholders)")
    return path
