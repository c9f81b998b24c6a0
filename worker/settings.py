"""The worker's settings: one frozen object, read once from an injectable environ."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from leadline import config
from leadline.errors import ConfigError
from leadline.topology import DEFAULT_PREFIX, DEFAULT_RETRY_DELAYS, Topology

DEFAULT_CRM_URL = "http://127.0.0.1:8090/leads"
LOG_LEVELS = frozenset({"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"})


@dataclass(frozen=True, slots=True)
class Settings:
    amqp_url: str = config.DEFAULT_AMQP_URL
    queue_prefix: str = DEFAULT_PREFIX
    crm_url: str = DEFAULT_CRM_URL
    crm_timeout: float = 10.0
    max_attempts: int = 8
    retry_delays: tuple[float, ...] = DEFAULT_RETRY_DELAYS
    prefetch: int = 64
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 9100  # 0 turns the metrics server off
    shutdown_grace: float = 20.0
    log_level: str = "INFO"

    @property
    def topology(self) -> Topology:
        return Topology(prefix=self.queue_prefix, retry_delays=self.retry_delays)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Every setting parsed and checked; a bad one raises `ConfigError` naming it."""
        env = os.environ if environ is None else environ
        d = cls()

        def raw(name: str, default: object) -> str:
            return config.get(env, name, str(default))

        crm_timeout = config.parse_duration("CRM_TIMEOUT", raw("CRM_TIMEOUT", d.crm_timeout))
        if crm_timeout <= 0:
            raise ConfigError("CRM_TIMEOUT", "must be longer than zero")
        port = config.parse_int("WORKER_METRICS_PORT", raw("WORKER_METRICS_PORT", d.metrics_port), minimum=0)
        if port > 65535:
            raise ConfigError("WORKER_METRICS_PORT", f"must be a TCP port (0-65535), got {port}")
        level = raw("LOG_LEVEL", d.log_level).strip().upper()
        if level not in LOG_LEVELS:
            raise ConfigError("LOG_LEVEL", f"{level!r} is not one of {', '.join(sorted(LOG_LEVELS))}")
        delays_text = env.get("RETRY_DELAYS", "")
        return cls(
            amqp_url=config.parse_amqp_url("AMQP_URL", raw("AMQP_URL", d.amqp_url)),
            queue_prefix=config.parse_prefix("QUEUE_PREFIX", raw("QUEUE_PREFIX", d.queue_prefix)),
            crm_url=config.parse_http_url("CRM_URL", raw("CRM_URL", d.crm_url)),
            crm_timeout=crm_timeout,
            max_attempts=config.parse_int("MAX_ATTEMPTS", raw("MAX_ATTEMPTS", d.max_attempts), minimum=1),
            retry_delays=(config.parse_durations("RETRY_DELAYS", delays_text)
                          if delays_text.strip() else d.retry_delays),
            prefetch=config.parse_int("PREFETCH", raw("PREFETCH", d.prefetch), minimum=1),
            metrics_host=raw("WORKER_METRICS_HOST", d.metrics_host).strip(),
            metrics_port=port,
            shutdown_grace=config.parse_duration("SHUTDOWN_GRACE", raw("SHUTDOWN_GRACE", d.shutdown_grace)),
            log_level=level,
        )
