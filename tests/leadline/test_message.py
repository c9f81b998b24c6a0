"""The lead message's properties: the fast encoder writes pamqp's very bytes,
and the timestamps read the same as the standard library's."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from pamqp import frame
from pamqp.commands import Basic
from pamqp.header import ContentHeader

from leadline.message import (
    CONTENT_TYPE,
    H_ATTEMPTS,
    H_FORM,
    H_RECEIVED_AT,
    H_SCHEMA,
    H_TRACEPARENT,
    PERSISTENT,
    LeadProperties,
    _iso_millis,
    lead_properties,
    utc_now_iso,
)

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
_SLOTS = Basic.Properties.__slots__


def _pamqp_bytes(props: Basic.Properties) -> bytes:
    plain = Basic.Properties(**{name: getattr(props, name) for name in _SLOTS})
    return Basic.Properties.marshal(plain)


def _roundtrip(props: Basic.Properties) -> Basic.Properties:
    wire = frame.marshal(ContentHeader(0, 10, props), 1)
    _, _, header = frame.unmarshal(wire)
    assert isinstance(header, ContentHeader)
    return header.properties


def test_a_lead_marshals_to_the_same_bytes_as_pamqp() -> None:
    props = lead_properties(submission_id="7c1f0f4e-8a0b-4c36-9d55-2d8e6f1a0b11", form="lead",
                            schema_id="https://leadline.example/schemas/lead/v1",
                            traceparent=TRACEPARENT)
    assert isinstance(props, LeadProperties)
    assert props.marshal() == _pamqp_bytes(props)


def test_a_lead_reads_back_with_every_header_and_persistent() -> None:
    props = lead_properties(submission_id="sub-00000001", form="lead", schema_id="s/v1",
                            traceparent=TRACEPARENT, received_at="2024-05-01T12:00:00.123Z")
    back = _roundtrip(props)
    assert back.delivery_mode == PERSISTENT
    assert back.content_type == CONTENT_TYPE
    assert back.message_id == "sub-00000001"
    assert back.app_id == "leadline-proxy"
    assert back.headers == {H_FORM: "lead", H_ATTEMPTS: 0, H_SCHEMA: "s/v1",
                            H_TRACEPARENT: TRACEPARENT, H_RECEIVED_AT: "2024-05-01T12:00:00.123Z"}
    assert props.timestamp is not None
    assert back.timestamp == props.timestamp.replace(microsecond=0)


_header_values = st.one_of(st.text(max_size=40), st.integers(-300, 70000), st.booleans(),
                           st.floats(-1e6, 1e6), st.none())


@given(
    headers=st.one_of(st.none(), st.dictionaries(st.text(min_size=1, max_size=140), _header_values,
                                                 max_size=6)),
    message_id=st.one_of(st.none(), st.just(""), st.text(max_size=60)),
    delivery_mode=st.one_of(st.none(), st.sampled_from([1, 2])),
    priority=st.one_of(st.none(), st.integers(0, 9)),
    timestamp=st.one_of(st.none(), st.datetimes(min_value=datetime(1970, 1, 2),
                                                timezones=st.sampled_from(
                                                    [UTC, timezone(timedelta(hours=2))]))),
    correlation_id=st.one_of(st.none(), st.text(max_size=20)),
)
def test_any_properties_marshal_to_the_same_bytes_as_pamqp(
        headers: dict[str, Any] | None, message_id: str | None, delivery_mode: int | None,
        priority: int | None, timestamp: datetime | None, correlation_id: str | None) -> None:
    props = LeadProperties(content_type=CONTENT_TYPE, headers=headers, message_id=message_id,
                           delivery_mode=delivery_mode, priority=priority, timestamp=timestamp,
                           correlation_id=correlation_id, app_id="x")
    assert props.marshal() == _pamqp_bytes(props)


def test_the_received_at_stamp_has_the_isoformat_shape_and_the_current_time() -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    stamp = utc_now_iso()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", stamp)
    parsed = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    assert before <= parsed <= datetime.now(UTC)


@given(st.integers(0, 4_000_000_000 * 10**9))
def test_the_stamp_equals_datetime_isoformat_truncated_to_milliseconds(ns: int) -> None:
    expected = (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=ns // 1000))
    text = expected.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    assert _iso_millis(ns) == text


def test_the_stamp_follows_the_clock_across_seconds() -> None:
    now = time.time_ns()
    assert _iso_millis(now)[:19] != _iso_millis(now + 1_000_000_000)[:19]
