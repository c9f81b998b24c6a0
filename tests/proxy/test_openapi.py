"""`GET /openapi.json`: the document built from the loaded schemas, read without
a server, and served by the real app."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from leadline.patterns import compile_search
from leadline.schemas import CODES, load_schemas
from proxy import bodies
from proxy.openapi import document
from proxy.settings import Settings
from tests.proxy.conftest import Client
from tests.support.procs import ROOT

FORMS = load_schemas()
DOC = document(FORMS, Settings())
HTTP_TABLE = {"202", "303", "400", "403", "404", "408", "413", "415", "422", "429", "503"}


def resolve(node: dict[str, Any]) -> dict[str, Any]:
    """Follow a local `$ref`."""
    while "$ref" in node:
        found: Any = DOC
        for part in node["$ref"].removeprefix("#/").split("/"):
            found = found[part]
        node = found
    return node


def submit(form: str = "lead") -> dict[str, Any]:
    operation: dict[str, Any] = DOC["paths"][f"/api/forms/{form}"]["post"]
    return operation


def test_the_document_is_openapi_3_1_with_one_submit_operation_per_form() -> None:
    assert DOC["openapi"].startswith("3.1.")
    forms = [p for p in DOC["paths"] if p.startswith("/api/forms/")]
    assert forms == [f"/api/forms/{name}" for name in sorted(FORMS)]
    assert submit()["operationId"] == "submit_lead"


def test_the_json_body_is_the_forms_schema_or_a_filled_honeypot() -> None:
    content = submit()["requestBody"]["content"]
    assert set(content) == {bodies.JSON, bodies.FORM}
    valid, bot = (resolve(option) for option in content[bodies.JSON]["schema"]["anyOf"])
    schema = FORMS["lead"].schema
    assert valid["required"] == schema["required"]
    assert valid["additionalProperties"] is False
    for name, prop in schema["properties"].items():
        documented = valid["properties"][name]
        # The same rules; only a format the proxy asserts loosely is kept as an annotation.
        assert {k: v for k, v in documented.items() if k != "x-format"} == {
            k: v for k, v in prop.items() if k != "format"}
        assert documented.get("format", documented.get("x-format")) == prop.get("format")
    assert valid["properties"]["website"]["enum"] == [None, ""]
    assert bot["required"] == ["website"]


def test_every_answer_of_the_http_table_is_described_with_its_headers() -> None:
    responses = submit()["responses"]
    assert set(responses) == HTTP_TABLE
    for status in ("429", "503"):
        assert responses[status]["headers"]["Retry-After"]["required"] is True, status
    for status in ("202", "303", "415", "422", "503"):
        assert responses[status]["headers"]["Idempotency-Key"]["required"] is True, status
    assert responses["400"]["headers"]["Idempotency-Key"].get("required") is not True  # a bad key: none
    assert responses["303"]["headers"]["Location"]["required"] is True
    assert "content" not in responses["303"]


def test_idempotency_key_traceparent_and_the_stamp_are_request_headers_and_lang_a_query() -> None:
    params = {resolve(p)["name"]: resolve(p) for p in submit()["parameters"]}
    assert set(params) == {"Idempotency-Key", "traceparent", "X-Leadline-Stamp", "lang"}
    assert all(p["required"] is False for p in params.values())
    assert {p["in"] for name, p in params.items() if name != "lang"} == {"header"}
    assert params["lang"]["in"] == "query"
    assert "1:<bits>:<ts>:<nonce>" in params["X-Leadline-Stamp"]["description"]
    assert '"code": "stamp"' in submit()["responses"]["422"]["description"]
    key = compile_search(params["Idempotency-Key"]["schema"]["pattern"])
    assert key("3f2504e0-4f89-41d3-9a0c-0305e82c3301")
    assert not key("short")
    assert not key("has space in it")
    assert "pattern" not in params["traceparent"]["schema"]  # a bad one is replaced, never refused


def test_the_422_body_lists_field_errors_each_with_its_code() -> None:
    invalid = resolve(submit()["responses"]["422"]["content"][bodies.JSON]["schema"])
    item = invalid["properties"]["errors"]["items"]
    assert item["required"] == ["field", "code", "message"]
    assert item["properties"]["code"]["enum"] == list(CODES)


def test_the_probes_the_preflight_and_the_document_itself_are_described() -> None:
    paths = DOC["paths"]
    assert set(paths["/readyz"]["get"]["responses"]) == {"200", "503"}
    assert "text/plain" in paths["/metrics"]["get"]["responses"]["200"]["content"]
    assert "/healthz" in paths
    assert "/openapi.json" in paths
    assert set(paths["/api/forms/lead"]["options"]["responses"]) == {"204", "403"}


def test_the_document_follows_the_schema_folder(tmp_path: Path) -> None:
    lead = json.loads((ROOT / "schemas" / "lead.schema.json").read_text())
    newsletter = {"type": "object", "properties": {"email": {"type": "string", "format": "email"},
                                                   "weekly": {"type": "boolean"}},
                  "required": ["email"], "additionalProperties": False}
    (tmp_path / "lead.schema.json").write_text(json.dumps(lead))
    (tmp_path / "newsletter.schema.json").write_text(json.dumps(newsletter))
    doc = document(load_schemas(tmp_path), Settings(max_body_bytes=4096))
    assert [p for p in doc["paths"] if p.startswith("/api/")] == ["/api/forms/lead", "/api/forms/newsletter"]
    assert "4096" in doc["paths"]["/api/forms/newsletter"]["post"]["responses"]["413"]["description"]
    weekly = doc["components"]["schemas"]["newsletter.form"]["properties"]["weekly"]
    assert weekly["type"] == "string"  # a checkbox on the wire: ticked or not, both fine
    assert compile_search(weekly["pattern"])("on")
    assert compile_search(weekly["pattern"])("")
    assert not compile_search(weekly["pattern"])("maybe")


checkbox_words = st.one_of(
    st.text(max_size=6),
    st.builds(lambda pad, word, end: pad + word + end, st.sampled_from(["", " ", "\t", "\x1c", "\u3000"]),
              st.sampled_from(["true", "TRUE", "On", "yes", "1", "false", "off", "No", "0", "", "2", "y"]),
              st.sampled_from(["", " ", "\n", "\x1f"])),
)


@given(checkbox_words)
def test_the_form_encoded_checkbox_is_described_as_the_proxy_reads_it(value: str) -> None:
    props = DOC["components"]["schemas"]["lead.form"]["properties"]
    documented = compile_search(props["consent"]["pattern"])(value)
    assert documented == (bodies._typed("boolean", [value]) is True)


@pytest.mark.broker
async def test_the_app_serves_the_document_of_the_forms_it_loaded(client: Client) -> None:
    async with client.get("/openapi.json") as answer:
        assert answer.status == 200
        assert answer.content_type == bodies.JSON
        served = await answer.json()
    assert served == json.loads(json.dumps(DOC))
