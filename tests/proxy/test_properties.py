"""Properties over HTTP, against the real broker: whatever the body, never a
5xx; a submission is queued exactly when the form's schema accepts it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leadline.schemas import load_schemas
from tests.leadline.test_fastcheck import near_valid, submissions
from tests.proxy.conftest import Client

pytestmark = pytest.mark.broker

LEAD = load_schemas()["lead"]
# One app and broker connection serve every example of a test, on purpose.
reuse_client = settings(max_examples=150, deadline=None,
                        suppress_health_check=[HealthCheck.function_scoped_fixture])
content_types = st.sampled_from(["application/json", "application/x-www-form-urlencoded",
                                 "application/json; charset=latin-1", "text/plain", ""])


def _encode(data: Any) -> bytes:
    # json, not orjson: it also writes integers past 64 bits, which clients may send
    return json.dumps(data).encode()


@reuse_client
@given(body=st.one_of(st.binary(max_size=300), submissions.map(_encode)),
       content_type=content_types,
       key=st.one_of(st.none(), st.text(max_size=20).filter(lambda k: "\r" not in k and "\n" not in k)))
async def test_any_body_is_answered_2xx_or_4xx_never_5xx(
        client: Client, body: bytes, content_type: str, key: str | None) -> None:
    headers = {"Content-Type": content_type}
    if key is not None and key.isascii() and key.isprintable():
        headers["Idempotency-Key"] = key
    async with client.post("/api/forms/lead", data=body, headers=headers,
                           allow_redirects=False) as answer:
        assert 200 <= answer.status < 500, await answer.text()


@reuse_client
@given(data=st.one_of(near_valid, submissions))
async def test_json_is_queued_exactly_when_the_schema_accepts_it(client: Client, data: Any) -> None:
    expected = 202 if _accepted(data) else 422
    async with client.post("/api/forms/lead", data=_encode(data),
                           headers={"Content-Type": "application/json"}) as answer:
        assert answer.status == expected, await answer.text()


def _accepted(data: Any) -> bool:
    """What the proxy promises: a filled honeypot looks queued, an empty one is ignored."""
    if isinstance(data, dict) and "website" in data:
        if data["website"] not in ("", None):
            return True
        data = {k: v for k, v in data.items() if k != "website"}
    return LEAD.is_valid(data)
