"""The CRM settings: which connector (`CRM`), its credentials, and building it.

Only the chosen vendor's settings are read, and a missing or malformed one
stops the worker at start with one line naming it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from leadline import config
from leadline.config import Rate
from leadline.errors import ConfigError
from leadline.schemas import SCHEMA_DIR, FormSchema
from leadline.tracing import Tracing
from worker.crm import hubspot, pipedrive, salesforce
from worker.crm.base import Connector
from worker.crm.http import HttpClient
from worker.crm.hubspot import HubSpotConnector
from worker.crm.mapping import load_mappings
from worker.crm.pipedrive import PipedriveConnector
from worker.crm.ratelimit import WindowLimiter
from worker.crm.salesforce import OAuthRefresh, SalesforceConnector
from worker.crm.webhook import WebhookConnector

CRMS = ("webhook", "hubspot", "salesforce", "pipedrive")


@dataclass(frozen=True, slots=True)
class VendorDefaults:
    max_batch: int
    rate: Rate | None  # the lowest documented plan's limit
    concurrency: int | None  # calls at once; None: as many as PREFETCH


DEFAULTS = {
    "webhook": VendorDefaults(1, None, None),
    "hubspot": VendorDefaults(hubspot.MAX_BATCH, hubspot.DEFAULT_RATE, 10),
    # at most 25 long-running requests per org in production: stay well below
    "salesforce": VendorDefaults(salesforce.MAX_BATCH, salesforce.DEFAULT_RATE, 5),
    "pipedrive": VendorDefaults(pipedrive.MAX_BATCH, pipedrive.DEFAULT_RATE, 8),
}


@dataclass(frozen=True, slots=True)
class HubSpotSettings:
    token: str
    api_url: str = hubspot.DEFAULT_API_URL


@dataclass(frozen=True, slots=True)
class SalesforceSettings:
    instance_url: str
    token: str
    api_version: str = salesforce.DEFAULT_API_VERSION
    external_id_field: str = salesforce.DEFAULT_EXTERNAL_ID_FIELD
    refresh: OAuthRefresh | None = None


@dataclass(frozen=True, slots=True)
class PipedriveSettings:
    api_url: str
    token: str
    submission_field: str = ""


VendorSettings = HubSpotSettings | SalesforceSettings | PipedriveSettings | None
RateSetting = Rate | Literal["off"] | None  # None: the vendor's default


def parse_crm(text: str) -> str:
    return config.parse_choice("CRM", text, CRMS)


def parse_rate_setting(text: str) -> RateSetting:
    if not text.strip():
        return None
    rate = config.parse_rate("CRM_RATE_LIMIT", text)
    return "off" if rate is None else rate


def _required(env: Mapping[str, str], name: str, crm: str, hint: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ConfigError(name, f"is required with CRM={crm}: {hint}")
    return value


def parse_vendor(crm: str, env: Mapping[str, str]) -> VendorSettings:
    if crm == "hubspot":
        return HubSpotSettings(
            token=_required(env, "HUBSPOT_TOKEN", crm, "a private app's access token"),
            api_url=config.parse_http_url("HUBSPOT_API_URL",
                                          config.get(env, "HUBSPOT_API_URL", hubspot.DEFAULT_API_URL)))
    if crm == "salesforce":
        version = config.get(env, "SALESFORCE_API_VERSION", salesforce.DEFAULT_API_VERSION).strip()
        if not (version.startswith("v") and version[1:].replace(".", "", 1).isdigit()):
            raise ConfigError("SALESFORCE_API_VERSION", f"{version!r} is not a version such as v61.0")
        field = config.get(env, "SALESFORCE_EXTERNAL_ID_FIELD", salesforce.DEFAULT_EXTERNAL_ID_FIELD).strip()
        if not field.replace("_", "").isalnum():
            raise ConfigError("SALESFORCE_EXTERNAL_ID_FIELD", f"{field!r} is not a field's API name")
        refresh = None
        refresh_token = env.get("SALESFORCE_REFRESH_TOKEN", "").strip()
        if refresh_token:
            refresh = OAuthRefresh(
                login_url=config.parse_http_url("SALESFORCE_LOGIN_URL", config.get(
                    env, "SALESFORCE_LOGIN_URL", salesforce.DEFAULT_LOGIN_URL)),
                client_id=_required(env, "SALESFORCE_CLIENT_ID", crm, "the connected app's consumer key, "
                                    "to use SALESFORCE_REFRESH_TOKEN"),
                client_secret=_required(env, "SALESFORCE_CLIENT_SECRET", crm, "the connected app's consumer "
                                        "secret, to use SALESFORCE_REFRESH_TOKEN"),
                refresh_token=refresh_token)
        token = env.get("SALESFORCE_TOKEN", "").strip()
        if not token and refresh is None:
            raise ConfigError("SALESFORCE_TOKEN", "is required with CRM=salesforce: an OAuth access token "
                              "(or SALESFORCE_REFRESH_TOKEN with SALESFORCE_CLIENT_ID and _SECRET)")
        return SalesforceSettings(
            instance_url=config.parse_http_url("SALESFORCE_INSTANCE_URL", _required(
                env, "SALESFORCE_INSTANCE_URL", crm, "your org's URL, such as https://acme.my.salesforce.com")),
            token=token, api_version=version, external_id_field=field, refresh=refresh)
    if crm == "pipedrive":
        field = env.get("PIPEDRIVE_SUBMISSION_FIELD", "").strip()
        if field and not (len(field) == 40 and all(c in "0123456789abcdef" for c in field)):
            raise ConfigError("PIPEDRIVE_SUBMISSION_FIELD",
                              f"{field!r} is not a custom field's 40-character key")
        return PipedriveSettings(
            api_url=config.parse_http_url("PIPEDRIVE_API_URL", _required(
                env, "PIPEDRIVE_API_URL", crm, "your company's URL, such as https://acme.pipedrive.com")),
            token=_required(env, "PIPEDRIVE_TOKEN", crm, "a personal API token"),
            submission_field=field)
    return None


def check_batch_size(crm: str, size: int | None) -> int | None:
    if size is None:
        return None
    largest = DEFAULTS[crm].max_batch
    if not 1 <= size <= largest:
        raise ConfigError("CRM_BATCH_SIZE", f"{crm} takes 1 to {largest} leads per call, got {size}")
    return size


def effective_rate(crm: str, setting: RateSetting) -> Rate | None:
    if setting is None:
        return DEFAULTS[crm].rate
    return None if setting == "off" else setting


def build_connector(*, crm: str, vendor: VendorSettings, crm_url: str, timeout: float, rate: RateSetting,
                    max_connections: int, forms: Mapping[str, FormSchema],
                    mapping_dir: Path = SCHEMA_DIR, tracing: Tracing | None = None) -> Connector:
    """The connector for `crm`, its mappings loaded and checked (`ConfigProblems` lists them all)."""
    mappings = load_mappings(crm, forms, mapping_dir)
    http = HttpClient(timeout=timeout, limiter=WindowLimiter(effective_rate(crm, rate)),
                      max_connections=max_connections, tracing=tracing)
    if isinstance(vendor, HubSpotSettings):
        return HubSpotConnector(vendor.api_url, vendor.token, http, mappings)
    if isinstance(vendor, SalesforceSettings):
        return SalesforceConnector(vendor.instance_url, vendor.token, http, mappings,
                                   api_version=vendor.api_version, external_id_field=vendor.external_id_field,
                                   refresh=vendor.refresh)
    if isinstance(vendor, PipedriveSettings):
        return PipedriveConnector(vendor.api_url, vendor.token, http, mappings,
                                  submission_field=vendor.submission_field)
    return WebhookConnector(crm_url, http, mappings)
