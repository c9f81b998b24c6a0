"""The worker's settings: one frozen object, read once from an injectable environ."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from leadline import config
from leadline.errors import ConfigError
from leadline.topology import DEFAULT_PREFIX, DEFAULT_RETRY_DELAYS, Topology
from leadline.tracing import TracingSettings
from worker.crm.settings import (
    DEFAULTS,
    RateSetting,
    VendorSettings,
    check_batch_size,
    parse_crm,
    parse_rate_setting,
    parse_vendor,
)

DEFAULT_CRM_URL = "http://127.0.0.1:8090/leads"
# Deliveries held per worker: at least this; a batching connector holds a full
# batch for every call it may make at once (so the calls a rate limit allows
# are full ones), up to the most.
MIN_PREFETCH = 64
MAX_DEFAULT_PREFETCH = 2000
NO_TRACING = TracingSettings()


@dataclass(frozen=True, slots=True)
class Settings:
    amqp_url: str = config.DEFAULT_AMQP_URL
    queue_prefix: str = DEFAULT_PREFIX
    crm: str = "webhook"
    crm_url: str = DEFAULT_CRM_URL
    crm_timeout: float = 10.0
    crm_rate_limit: RateSetting = None  # None: the vendor's lowest documented plan
    crm_batch_size: int | None = None  # None: the vendor's largest batch
    crm_batch_linger: float = 0.1
    crm_concurrency: int | None = None  # None: the vendor's default
    crm_probe_interval: float = 30.0
    vendor: VendorSettings = None
    max_attempts: int = 8
    retry_delays: tuple[float, ...] = DEFAULT_RETRY_DELAYS
    prefetch: int | None = None  # None: MIN_PREFETCH, or two batches when that is more
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 9100  # 0 turns the metrics server off
    shutdown_grace: float = 20.0
    log_level: str = "INFO"
    tracing: TracingSettings = NO_TRACING  # the standard OTEL_* variables; off unless an endpoint

    @property
    def topology(self) -> Topology:
        return Topology(prefix=self.queue_prefix, retry_delays=self.retry_delays)

    @property
    def batch_size(self) -> int:
        return self.crm_batch_size or DEFAULTS[self.crm].max_batch

    @property
    def deliveries_in_flight(self) -> int:
        """PREFETCH: deliveries held at once; by default enough to keep every call in flight full."""
        if self.prefetch:
            return self.prefetch
        if self.batch_size == 1:
            return MIN_PREFETCH
        calls = self.crm_concurrency or DEFAULTS[self.crm].concurrency or 1
        return min(MAX_DEFAULT_PREFETCH, max(MIN_PREFETCH, self.batch_size * calls))

    @property
    def calls_in_flight(self) -> int:
        """CRM_CONCURRENCY: CRM calls at once."""
        return self.crm_concurrency or DEFAULTS[self.crm].concurrency or self.deliveries_in_flight

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
        level = config.parse_log_level("LOG_LEVEL", raw("LOG_LEVEL", d.log_level))
        delays_text = env.get("RETRY_DELAYS", "")
        crm = parse_crm(raw("CRM", d.crm))
        optional = {name: env.get(name, "").strip()
                    for name in ("CRM_BATCH_SIZE", "CRM_CONCURRENCY", "PREFETCH")}
        return cls(
            amqp_url=config.parse_amqp_url("AMQP_URL", raw("AMQP_URL", d.amqp_url)),
            queue_prefix=config.parse_prefix("QUEUE_PREFIX", raw("QUEUE_PREFIX", d.queue_prefix)),
            crm=crm,
            crm_url=config.parse_http_url("CRM_URL", raw("CRM_URL", d.crm_url)),
            crm_timeout=crm_timeout,
            crm_rate_limit=parse_rate_setting(env.get("CRM_RATE_LIMIT", "")),
            crm_batch_size=check_batch_size(crm, _optional_int("CRM_BATCH_SIZE", optional["CRM_BATCH_SIZE"])),
            crm_batch_linger=config.parse_duration("CRM_BATCH_LINGER",
                                                   raw("CRM_BATCH_LINGER", d.crm_batch_linger)),
            crm_concurrency=_optional_int("CRM_CONCURRENCY", optional["CRM_CONCURRENCY"]),
            crm_probe_interval=_positive("CRM_PROBE_INTERVAL",
                                         raw("CRM_PROBE_INTERVAL", d.crm_probe_interval)),
            vendor=parse_vendor(crm, env),
            max_attempts=config.parse_int("MAX_ATTEMPTS", raw("MAX_ATTEMPTS", d.max_attempts), minimum=1),
            retry_delays=(config.parse_durations("RETRY_DELAYS", delays_text)
                          if delays_text.strip() else d.retry_delays),
            prefetch=_optional_int("PREFETCH", optional["PREFETCH"]),
            metrics_host=raw("WORKER_METRICS_HOST", d.metrics_host).strip(),
            metrics_port=port,
            shutdown_grace=config.parse_duration("SHUTDOWN_GRACE", raw("SHUTDOWN_GRACE", d.shutdown_grace)),
            log_level=level,
            tracing=TracingSettings.from_env(env, service="leadline-worker"),
        )


def _optional_int(setting: str, text: str) -> int | None:
    return config.parse_int(setting, text, minimum=1) if text else None


def _positive(setting: str, text: str) -> float:
    seconds = config.parse_duration(setting, text)
    if seconds <= 0:
        raise ConfigError(setting, "must be longer than zero")
    return seconds
