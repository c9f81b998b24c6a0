"""The console's settings: the token, where it listens, where the metrics are."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from leadline import config
from leadline.errors import ConfigError
from leadline.topology import DEFAULT_RETRY_DELAYS, Topology

TOKEN = "DLQ_CONSOLE_TOKEN"  # noqa: S105 - the name of the setting, not a password
MIN_TOKEN_CHARS = 16
DEFAULT_PORT = 9180
DEFAULT_PROXY_METRICS = "http://127.0.0.1:8080/metrics"
DEFAULT_WORKER_METRICS = "http://127.0.0.1:9100/metrics"
DEFAULT_TOPOLOGY = Topology()


@dataclass(frozen=True, slots=True)
class ConsoleSettings:
    token: str = ""  # the HTTP Basic password; never logged
    amqp_url: str = config.DEFAULT_AMQP_URL
    topology: Topology = DEFAULT_TOPOLOGY
    proxy_metrics_url: str = DEFAULT_PROXY_METRICS
    worker_metrics_url: str = DEFAULT_WORKER_METRICS

    @classmethod
    def from_env(cls, environ: Mapping[str, str], *, amqp_url: str, prefix: str) -> ConsoleSettings:
        """A missing or weak token, or a bad URL, raises `ConfigError` naming the setting."""
        token = environ.get(TOKEN, "")
        if not token.strip():
            raise ConfigError(TOKEN, "is not set: the console needs a password (such as the output "
                              "of `openssl rand -hex 32`)")
        if len(token) < MIN_TOKEN_CHARS:
            raise ConfigError(TOKEN, f"must be at least {MIN_TOKEN_CHARS} characters long")
        delays_text = environ.get("RETRY_DELAYS", "")
        delays = (config.parse_durations("RETRY_DELAYS", delays_text) if delays_text.strip()
                  else DEFAULT_RETRY_DELAYS)
        return cls(
            token=token, amqp_url=amqp_url, topology=Topology(prefix=prefix, retry_delays=delays),
            proxy_metrics_url=config.parse_http_url(
                "PROXY_METRICS_URL", config.get(environ, "PROXY_METRICS_URL", DEFAULT_PROXY_METRICS)),
            worker_metrics_url=config.parse_http_url(
                "WORKER_METRICS_URL", config.get(environ, "WORKER_METRICS_URL", DEFAULT_WORKER_METRICS)),
        )


def parse_listen(host: str, port: str) -> tuple[str, int]:
    number = config.parse_int("--port", port, minimum=0)
    if number > 65535:
        raise ConfigError("--port", f"must be a TCP port (0-65535), got {number}")
    return host.strip() or "127.0.0.1", number
