"""The HTTP table (docs/architecture.md), row by row, against the real broker."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

import aiormq
import pytest

from leadline.message import H_ATTEMPTS, H_FORM, H_SCHEMA, H_TRACEPARENT, PERSISTENT
from leadline.topology import Topology
from tests.proxy.conftest import ORIGIN, VALID_LEAD, Client, drain, post_json

pytestmark = pytest.mark.broker

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


async def test_valid_json_is_202_with_the_id_and_published_persistent_with_headers(
        client: Client, amqp: aiormq.abc.AbstractChannel, topology: Topology) -> None:
    key = str(uuid.uuid4())
    status, payload, headers = await post_json(
        client, {**VALID_LEAD, "company": "Analytical Engines"},
        {"Idempotency-Key": key, "traceparent": TRACEPARENT})
    assert (status, payload) == (202, {"status": "queued", "id": key})
    assert headers["Cache-Control"] == "no-store"
    assert headers["X-Content-Type-Options"] == "nosniff"
    [message] = await drain(amqp, topology.work_queue)
    assert message.body == {**VALID_LEAD, "company": "Analytical Engines"}
    assert message.routing_key == "form.lead"
    props = message.properties
    assert props.delivery_mode == PERSISTENT
    assert props.message_id == key
    assert props.content_type == "application/json"
    assert props.headers is not None
    assert props.headers[H_FORM] == "lead"
    assert props.headers[H_ATTEMPTS] == 0
    assert props.headers[H_TRACEPARENT] == TRACEPARENT
    assert str(props.headers[H_SCHEMA]).startswith("https://leadline.example/schemas/lead/")


async def test_missing_idempotency_key_gets_a_generated_uuid_and_a_traceparent(
        client: Client, amqp: aiormq.abc.AbstractChannel, topology: Topology) -> None:
    status, payload, headers = await post_json(client, VALID_LEAD, {"traceparent": "garbage"})
    assert status == 202
    assert uuid.UUID(payload["id"]).version == 4
    assert headers["Idempotency-Key"] == payload["id"]
    [message] = await drain(amqp, topology.work_queue)
    assert message.properties.message_id == payload["id"]
    assert message.properties.headers is not None
    trace = str(message.properties.headers[H_TRACEPARENT])
    assert trace.startswith("00-")
    assert len(trace) == 55


async def test_form_encoded_valid_is_303_to_the_thank_you_page_of_the_posting_origin(
        client: Client, amqp: aiormq.abc.AbstractChannel, topology: Topology) -> None:
    body = "name=Ada&email=ada%40example.com&consent=on&company=&message=&website="
    async with client.post("/api/forms/lead", data=body, allow_redirects=False, headers={
            "Content-Type": "application/x-www-form-urlencoded", "Origin": ORIGIN}) as answer:
        assert answer.status == 303
        assert answer.headers["Location"] == f"{ORIGIN}/thanks/lead/"
    [message] = await drain(amqp, topology.work_queue)
    # the checkbox became true, empty optional fields and the empty honeypot were dropped
    assert message.body == {"name": "Ada", "email": "ada@example.com", "consent": True}


async def test_form_encoded_redirect_uses_the_referer_origin_and_the_configured_path(
        make_client: Callable[..., Awaitable[Client]]) -> None:
    client = await make_client(THANKS_PATH="/merci/{form}.html")
    async with client.post("/api/forms/lead", data="name=Ada&email=a%40b.co&consent=true",
                           allow_redirects=False, headers={
                               "Content-Type": "application/x-www-form-urlencoded",
                               "Referer": f"{ORIGIN}/contact/?x=1"}) as answer:
        assert answer.status == 303
        assert answer.headers["Location"] == f"{ORIGIN}/merci/lead.html"


async def test_form_encoded_from_a_foreign_origin_is_403_never_a_redirect(client: Client) -> None:
    async with client.post("/api/forms/lead", data="name=Ada&email=a%40b.co&consent=on",
                           allow_redirects=False, headers={
                               "Content-Type": "application/x-www-form-urlencoded",
                               "Origin": "https://evil.example"}) as answer:
        assert answer.status == 403
        assert "Location" not in answer.headers


async def test_invalid_json_is_422_with_field_errors_in_plain_words(client: Client) -> None:
    status, payload, _ = await post_json(
        client, {"name": " ", "email": "nope", "consent": False, "extra": 1})
    assert status == 422
    assert payload["status"] == "invalid"
    assert payload["errors"] == [
        {"field": "name", "code": "pattern", "message": "must not be blank"},
        {"field": "email", "code": "format",
         "message": "must be an e-mail address such as ada@example.com"},
        {"field": "consent", "code": "const", "message": "must be ticked so that we may contact you"},
        {"field": "extra", "code": "additional", "message": "is not a field of this form"},
    ]


async def test_invalid_form_post_from_a_browser_is_a_422_html_page_with_errors_and_a_back_link(
        client: Client) -> None:
    async with client.post("/api/forms/lead", data="name=%3Cb%3E&email=x", headers={
            "Content-Type": "application/x-www-form-urlencoded", "Accept": "text/html",
            "Referer": f"{ORIGIN}/contact/"}) as answer:
        assert answer.status == 422
        assert answer.content_type == "text/html"
        page = await answer.text()
    # labelled as on the form (the schema's titles), in the schema's own words
    assert "<strong>Work e-mail</strong> must be an e-mail address" in page
    assert "<strong>I agree that Leadline may contact me about my request.</strong> is required" in page
    assert f'href="{ORIGIN}/contact/"' in page
    assert "<b>" not in page  # what the visitor typed is escaped, never markup


async def test_invalid_form_post_without_html_in_accept_gets_json(client: Client) -> None:
    async with client.post("/api/forms/lead", data="name=Ada", headers={
            "Content-Type": "application/x-www-form-urlencoded"}) as answer:
        assert answer.status == 422
        payload = await answer.json()
    assert {"field": "email", "code": "required", "message": "is required"} in payload["errors"]


@pytest.mark.parametrize("body", [b"{", b"", b"\xff\xfe", b'{"name": NaN}', b'"\\ud800"'])
async def test_malformed_json_is_400(client: Client, body: bytes) -> None:
    async with client.post("/api/forms/lead", data=body,
                           headers={"Content-Type": "application/json"}) as answer:
        assert answer.status == 400
        assert (await answer.json())["status"] == "bad_request"


@pytest.mark.parametrize("key", ["short", "x" * 129, "has space ok?", "ключ-12345678", ""])
async def test_malformed_idempotency_key_is_400(client: Client, key: str) -> None:
    status, payload, _ = await post_json(client, VALID_LEAD, {"Idempotency-Key": key})
    assert status == 400
    assert "Idempotency-Key" in payload["message"]


async def test_unknown_form_is_404(client: Client) -> None:
    status, payload, _ = await post_json(client, VALID_LEAD, form="newsletter")
    assert (status, payload["status"]) == (404, "not_found")


async def test_unknown_path_and_wrong_method_answer_json(client: Client) -> None:
    async with client.get("/nowhere") as answer:
        assert answer.status == 404
        assert (await answer.json())["status"] == "not_found"
    async with client.get("/api/forms/lead") as answer:
        assert answer.status == 405
        assert "POST" in answer.headers["Allow"]


@pytest.mark.parametrize("content_type", ["text/plain", "multipart/form-data; boundary=x", None])
async def test_wrong_content_type_is_415(client: Client, content_type: str | None) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    async with client.post("/api/forms/lead", data=b'{"name":"Ada"}', headers=headers) as answer:
        assert answer.status == 415


async def test_json_with_a_charset_parameter_is_accepted(client: Client) -> None:
    async with client.post("/api/forms/lead", data=b'{"name":"Ada","email":"a@b.co","consent":true}',
                           headers={"Content-Type": "application/json; charset=utf-8"}) as answer:
        assert answer.status == 202


async def test_body_over_the_limit_is_413(make_client: Callable[..., Awaitable[Client]]) -> None:
    client = await make_client(MAX_BODY_BYTES="1024")
    status, payload, _ = await post_json(client, {**VALID_LEAD, "message": "x" * 2000})
    assert (status, payload["status"]) == (413, "too_large")
    status, _, _ = await post_json(client, {**VALID_LEAD, "message": "x" * 900})
    assert status == 202


async def test_foreign_origin_is_403_without_cors_headers(client: Client) -> None:
    status, payload, headers = await post_json(client, VALID_LEAD, {"Origin": "https://evil.example"})
    assert (status, payload["status"]) == (403, "forbidden")
    assert "Access-Control-Allow-Origin" not in headers


async def test_foreign_referer_without_origin_is_403(client: Client) -> None:
    status, _, _ = await post_json(client, VALID_LEAD, {"Referer": "https://evil.example/form"})
    assert status == 403


async def test_allowed_origin_gets_cors_headers_on_every_answer(client: Client) -> None:
    status, _, headers = await post_json(client, VALID_LEAD, {"Origin": ORIGIN})
    assert status == 202
    assert headers["Access-Control-Allow-Origin"] == ORIGIN
    assert headers["Vary"] == "Origin"
    status, _, headers = await post_json(client, {"name": "Ada"}, {"Origin": ORIGIN})
    assert status == 422
    assert headers["Access-Control-Allow-Origin"] == ORIGIN  # the page can read its errors


async def test_requests_without_origin_or_referer_are_allowed(client: Client) -> None:
    status, _, headers = await post_json(client, VALID_LEAD)
    assert status == 202
    assert "Access-Control-Allow-Origin" not in headers


async def test_preflight_from_an_allowed_origin_lists_methods_headers_and_max_age(
        client: Client) -> None:
    async with client.options("/api/forms/lead", headers={
            "Origin": ORIGIN, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,idempotency-key,traceparent"}) as answer:
        assert answer.status == 204
        assert answer.headers["Access-Control-Allow-Origin"] == ORIGIN
        allowed = {h.strip().lower() for h in answer.headers["Access-Control-Allow-Headers"].split(",")}
        assert {"content-type", "idempotency-key", "traceparent"} <= allowed
        assert "POST" in answer.headers["Access-Control-Allow-Methods"]
        assert int(answer.headers["Access-Control-Max-Age"]) > 0
        assert answer.headers["Vary"] == "Origin"


async def test_preflight_from_a_foreign_origin_is_403(client: Client) -> None:
    async with client.options("/api/forms/lead", headers={
            "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}) as answer:
        assert answer.status == 403
        assert "Access-Control-Allow-Origin" not in answer.headers


async def test_wildcard_allowlist_accepts_any_origin(
        make_client: Callable[..., Awaitable[Client]]) -> None:
    client = await make_client(ALLOWED_ORIGINS="*")
    status, _, headers = await post_json(client, VALID_LEAD, {"Origin": "https://anywhere.example"})
    assert status == 202
    assert headers["Access-Control-Allow-Origin"] == "https://anywhere.example"


async def test_rate_limit_answers_429_with_retry_after(
        make_client: Callable[..., Awaitable[Client]]) -> None:
    client = await make_client(RATE_LIMIT="3/min")
    statuses = [(await post_json(client, VALID_LEAD))[0] for _ in range(3)]
    assert statuses == [202, 202, 202]
    status, payload, headers = await post_json(client, VALID_LEAD)
    assert (status, payload["status"]) == (429, "rate_limited")
    assert 1 <= int(headers["Retry-After"]) <= 20


async def test_rate_limit_trusts_x_forwarded_for_only_from_trusted_proxies(
        make_client: Callable[..., Awaitable[Client]]) -> None:
    untrusted = await make_client(RATE_LIMIT="1/min")
    assert (await post_json(untrusted, VALID_LEAD, {"X-Forwarded-For": "10.0.0.1"}))[0] == 202
    # another claimed address does not buy a new bucket
    assert (await post_json(untrusted, VALID_LEAD, {"X-Forwarded-For": "10.0.0.2"}))[0] == 429

    trusted = await make_client(RATE_LIMIT="1/min", TRUSTED_PROXIES="127.0.0.1,::1")
    assert (await post_json(trusted, VALID_LEAD, {"X-Forwarded-For": "10.0.0.1"}))[0] == 202
    assert (await post_json(trusted, VALID_LEAD, {"X-Forwarded-For": "10.0.0.2"}))[0] == 202
    assert (await post_json(trusted, VALID_LEAD, {"X-Forwarded-For": "10.0.0.1"}))[0] == 429


async def test_filled_honeypot_is_202_as_if_queued_and_publishes_nothing(
        client: Client, amqp: aiormq.abc.AbstractChannel, topology: Topology) -> None:
    status, payload, _ = await post_json(client, {**VALID_LEAD, "website": "http://spam.example"})
    assert status == 202
    assert payload["status"] == "queued"
    assert await drain(amqp, topology.work_queue) == []


async def test_empty_honeypot_is_ignored_and_the_lead_is_published(
        client: Client, amqp: aiormq.abc.AbstractChannel, topology: Topology) -> None:
    status, _, _ = await post_json(client, {**VALID_LEAD, "website": ""})
    assert status == 202
    [message] = await drain(amqp, topology.work_queue)
    assert "website" not in message.body


async def test_healthz_readyz_and_metrics(client: Client) -> None:
    await post_json(client, VALID_LEAD)
    await post_json(client, {"name": "Ada"})
    async with client.get("/healthz") as answer:
        assert answer.status == 200
    async with client.get("/readyz") as answer:
        assert answer.status == 200
    async with client.get("/metrics") as answer:
        assert answer.status == 200
        assert answer.content_type == "text/plain"
        text = await answer.text()
    assert 'leadline_proxy_accepted_total{form="lead"} 1.0' in text
    assert 'leadline_proxy_refused_total{reason="invalid"} 1.0' in text
    assert "leadline_proxy_publish_seconds_count 1.0" in text
    assert "leadline_proxy_broker_connected 1.0" in text


async def test_opaque_null_origin_is_403(client: Client) -> None:
    status, _, _ = await post_json(client, VALID_LEAD, {"Origin": "null"})
    assert status == 403


async def test_form_post_without_origin_or_referer_is_queued_with_a_thank_you_page(
        client: Client, amqp: aiormq.abc.AbstractChannel, topology: Topology) -> None:
    async with client.post("/api/forms/lead", data="name=Ada&email=a%40b.co&consent=on",
                           allow_redirects=False, headers={
                               "Content-Type": "application/x-www-form-urlencoded",
                               "Accept": "text/html"}) as answer:
        # nowhere allowlisted to send the visitor back to: say thanks here instead
        assert answer.status == 202
        assert "Thank you" in await answer.text()
    assert len(await drain(amqp, topology.work_queue)) == 1


async def test_an_unexpected_error_is_a_json_500_and_logged(
        client: Client, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    def broken(body: bytes) -> object:
        raise RuntimeError("a bug")

    monkeypatch.setattr("proxy.bodies.decode_json", broken)
    status, payload, headers = await post_json(client, VALID_LEAD)
    assert (status, payload["status"]) == (500, "error")
    assert headers["Cache-Control"] == "no-store"
    assert any(r.message == "unhandled error" and r.exc_info for r in caplog.records)
    # counted, so the alert on the proxy's error ratio sees it
    metrics = await (await client.get("/metrics")).text()
    assert 'leadline_proxy_refused_total{reason="internal"} 1.0' in metrics


async def test_every_request_logs_one_line_with_id_trace_form_status_and_no_email(
        client: Client, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="leadline.proxy.access")
    await post_json(client, {"name": "Ada", "email": "ada.lovelace@example.com"},
                    {"Idempotency-Key": "key-0001-abcd", "traceparent": TRACEPARENT})
    [record] = [r for r in caplog.records if r.name == "leadline.proxy.access"]
    fields = vars(record)
    assert (fields["id"], fields["form"], fields["status"]) == ("key-0001-abcd", "lead", 422)
    assert fields["trace_id"] == TRACEPARENT[3:35]
    assert fields["duration_ms"] >= 0
    assert "ada.lovelace@example.com" not in caplog.text
