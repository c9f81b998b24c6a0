from __future__ import annotations

import pytest

from leadline import config
from leadline.errors import ConfigError


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30.0), ("2m", 120.0), ("1.5h", 5400.0), ("250ms", 0.25), ("1d", 86400.0), ("7", 7.0)],
)
def test_durations_read_in_every_unit(text: str, seconds: float) -> None:
    assert config.parse_duration("X", text) == seconds


def test_retry_delays_list_keeps_order_and_refuses_zero() -> None:
    assert config.parse_durations("RETRY_DELAYS", "5s, 30s,2m") == (5.0, 30.0, 120.0)
    with pytest.raises(ConfigError, match="RETRY_DELAYS: every delay must be longer than zero"):
        config.parse_durations("RETRY_DELAYS", "5s,0s")


def test_bad_duration_error_names_the_setting_in_one_line() -> None:
    with pytest.raises(ConfigError) as caught:
        config.parse_durations("RETRY_DELAYS", "5s,soon")
    assert str(caught.value).startswith("RETRY_DELAYS: 'soon' is not a duration")
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(("seconds", "text"), [(30, "30s"), (120, "2m"), (0.5, "500ms"), (3600, "1h"),
                                               (90, "90s"), (86400, "1d")])
def test_format_duration_is_the_shortest_exact_spelling(seconds: float, text: str) -> None:
    assert config.format_duration(seconds) == text


def test_rate_limits_parse_or_turn_off() -> None:
    assert config.parse_rate("RATE_LIMIT", "30/min") == config.Rate(30, 60.0)
    assert config.parse_rate("RATE_LIMIT", "100/10s") == config.Rate(100, 10.0)
    assert config.parse_rate("RATE_LIMIT", "off") is None
    with pytest.raises(ConfigError, match="RATE_LIMIT"):
        config.parse_rate("RATE_LIMIT", "lots")


def test_origins_must_be_bare_origins() -> None:
    assert config.parse_origins("ALLOWED_ORIGINS", "https://a.example, http://b.example:8000/") == {
        "https://a.example", "http://b.example:8000"}
    with pytest.raises(ConfigError, match=r"ALLOWED_ORIGINS: 'https://a\.example/page'"):
        config.parse_origins("ALLOWED_ORIGINS", "https://a.example/page")


def test_amqp_url_and_prefix_are_checked() -> None:
    assert config.parse_amqp_url("AMQP_URL", "amqp://u:p@h:5672/v") == "amqp://u:p@h:5672/v"
    with pytest.raises(ConfigError, match="AMQP_URL"):
        config.parse_amqp_url("AMQP_URL", "http://h")
    with pytest.raises(ConfigError, match="QUEUE_PREFIX"):
        config.parse_prefix("QUEUE_PREFIX", "Bad Prefix")


def test_numbers_refuse_nan_and_out_of_range() -> None:
    with pytest.raises(ConfigError, match="CRM_TIMEOUT"):
        config.parse_float("CRM_TIMEOUT", "nan")
    with pytest.raises(ConfigError, match="MAX_ATTEMPTS: must be at least 1"):
        config.parse_int("MAX_ATTEMPTS", "0", minimum=1)
