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


def test_amqp_url_takes_the_nodes_of_a_cluster_and_normalises_the_list() -> None:
    text = " amqp://u:p@a:5672/leads , amqps://u:p@b.example/leads,,amqp://u:p@a:5672/leads "
    assert config.parse_amqp_url("AMQP_URL", text) == "amqp://u:p@a:5672/leads,amqps://u:p@b.example/leads"
    assert config.amqp_urls("amqp://a/,amqp://b/") == ["amqp://a/", "amqp://b/"]


@pytest.mark.parametrize(("text", "says"), [
    ("amqp://u:s3cret@a:5672/,http://u:s3cret@b/", "entry 2 of 2 must be an amqp:// or amqps:// URL"),
    ("amqp://u:s3cret@a:5672/,amqp://u:s3cret@b:56x2/", "entry 2 of 2 has no valid port"),
    ("amqp://u:s3cret@a:5672/,amqp:///", "entry 2 of 2 must be an amqp:// or amqps:// URL with a host"),
    (" , ", "needs an amqp:// or amqps:// URL"),
    ("amqp://u:s3cret@a/leads,amqp://u:s3cret@b/", "entry 1 names vhost 'leads' but entry 2 names '/'"),
])
def test_a_bad_amqp_url_entry_is_named_in_one_line_without_its_password(text: str, says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        config.parse_amqp_url("AMQP_URL", text)
    message = str(caught.value)
    assert message.startswith("AMQP_URL: ")
    assert says in message
    assert "s3cret" not in message
    assert "\n" not in message


def test_redact_url_hides_the_password_of_every_node() -> None:
    text = "amqp://guest:one@a:5672/v,amqps://guest:two@b/v,amqp://c/"
    assert config.redact_url(text) == "amqp://guest:***@a:5672/v,amqps://guest:***@b/v,amqp://c/"
    assert config.redact_url("amqp://u:pw@h:bad/") == "amqp://***"


def test_node_address_is_host_and_port_with_the_scheme_default() -> None:
    assert config.node_address("amqp://u:p@10.0.0.5/v") == "10.0.0.5:5672"
    assert config.node_address("amqps://u:p@mq.example.com/v") == "mq.example.com:5671"
    assert config.node_address("amqp://127.0.0.1:5681/") == "127.0.0.1:5681"
