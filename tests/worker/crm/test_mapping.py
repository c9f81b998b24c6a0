"""Field mapping: the defaults the README names, mapping files, and one line per problem."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from leadline.schemas import load_schemas
from worker.crm.base import Lead
from worker.crm.mapping import ConfigProblems, FormMapping, load_mappings, split_name

FORMS = load_schemas()
LEAD = Lead("5f0c6c1e-0d7e-4c59-9a43-5a1f5a0c1d2e", "lead",
            {"name": "Ada King Lovelace", "email": "ada@example.com", "company": "Analytical Engines",
             "message": "Hello", "consent": True}, received_at="2026-12-01T08:00:00.000Z")


@pytest.mark.parametrize(("name", "parts"), [
    ("Ada Lovelace", ("Ada", "Lovelace")),
    ("Ada King Lovelace", ("Ada King", "Lovelace")),
    ("Ada", ("", "Ada")),
    ("  Ada   Lovelace ", ("Ada", "Lovelace")),
    ("", ("", "")),
])
def test_a_name_splits_at_its_last_space_and_one_word_is_the_last_name(
    name: str, parts: tuple[str, str]
) -> None:
    assert split_name(name) == parts


def test_hubspot_default_mapping_of_the_lead_form() -> None:
    mapping = load_mappings("hubspot", FORMS, Path("/nonexistent-no-files"))["lead"]
    assert mapping.apply(LEAD) == {
        "email": "ada@example.com", "firstname": "Ada King", "lastname": "Lovelace",
        "company": "Analytical Engines", "message": "Hello", "leadline_submission_id": LEAD.submission_id}


def test_salesforce_default_mapping_fills_company_when_empty_and_keeps_salesforce_lengths() -> None:
    mapping = load_mappings("salesforce", FORMS, Path("/nonexistent-no-files"))["lead"]
    lead = Lead("sid", "lead", {"name": "A" * 50 + " " + "B" * 90, "email": "a@b.co", "consent": True})
    assert mapping.apply(lead) == {"Email": "a@b.co", "FirstName": "A" * 40, "LastName": "B" * 80,
                                   "Company": "[not provided]"}
    assert mapping.apply(LEAD)["Description"] == "Hello"


def test_pipedrive_default_mapping_names_person_lead_and_note() -> None:
    mapping = load_mappings("pipedrive", FORMS, Path("/nonexistent-no-files"))["lead"]
    assert mapping.apply(LEAD) == {"person.name": "Ada King Lovelace", "person.email": "ada@example.com",
                                   "lead.title": "Web lead: Ada King Lovelace", "note.content": "Hello"}


def test_the_webhook_gets_every_field_as_sent_without_a_mapping() -> None:
    assert load_mappings("webhook", FORMS, Path("/nonexistent-no-files"))["lead"].apply(LEAD) == LEAD.fields


def test_a_mapping_file_replaces_the_vendors_default_with_templates_constants_and_defaults(
    tmp_path: Path,
) -> None:
    (tmp_path / "lead.crm.json").write_text(json.dumps({"hubspot": {
        "email": "email",
        "lastname": {"from": "name", "take": "last_name"},
        "company": {"from": "company", "default": "unknown", "max_length": 8},
        "hs_lead_status": {"value": "NEW"},
        "message": {"template": "{message} (via {$form}, consent: {consent})"},
    }}))
    mapping = load_mappings("hubspot", FORMS, tmp_path)["lead"]
    assert mapping.apply(LEAD) == {"email": "ada@example.com", "lastname": "Lovelace", "company": "Analytic",
                                   "hs_lead_status": "NEW", "message": "Hello (via lead, consent: yes)"}
    no_company = Lead("s", "lead", {"name": "Ada", "email": "a@b.co", "consent": True})
    assert mapping.apply(no_company)["company"] == "unknown"
    # other vendors keep their defaults
    assert "LastName" in load_mappings("salesforce", FORMS, tmp_path)["lead"].targets


def test_every_problem_of_a_mapping_file_is_one_line_naming_file_vendor_and_target(tmp_path: Path) -> None:
    (tmp_path / "lead.crm.json").write_text(json.dumps({
        "hubspot": {
            "firstname": "nmae",
            "Last Name": "name",
            "company": {"from": "company", "take": "middle"},
            "message": {"template": "{mesage}"},
            "x": {"from": "name", "value": 1},
            "y": {"from": "name", "colour": "red"},
            "z": {"from": "name", "max_length": 0},
        },
        "zoho": {},
    }))
    with pytest.raises(ConfigProblems) as caught:
        load_mappings("hubspot", FORMS, tmp_path)
    lines = str(caught.value).splitlines()
    assert lines == caught.value.problems
    assert len(lines) == 8
    assert all(line.startswith("lead.crm.json: ") for line in lines)
    text = "\n".join(lines)
    assert "'zoho' is not a CRM" in text
    assert "hubspot.firstname: 'nmae' is not a field of form 'lead'" in text
    assert "hubspot.Last Name: not a HubSpot property's internal name" in text
    assert "hubspot.company: take must be first_name or last_name" in text
    assert "hubspot.message: the template names 'mesage'" in text
    assert "hubspot.x: needs exactly one of from, template or value" in text
    assert "hubspot.y: unknown key 'colour'" in text
    assert "hubspot.z: max_length must be a whole number of at least 1" in text


def test_a_mapping_file_that_is_not_json_is_one_clear_line(tmp_path: Path) -> None:
    (tmp_path / "lead.crm.json").write_text("{nope")
    with pytest.raises(ConfigProblems) as caught:
        load_mappings("salesforce", FORMS, tmp_path)
    [line] = caught.value.problems
    assert line.startswith("lead.crm.json: not readable JSON")


def test_an_empty_mapping_means_every_field() -> None:
    assert FormMapping().apply(LEAD) == LEAD.fields
