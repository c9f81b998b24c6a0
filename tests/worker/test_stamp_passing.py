"""The proxy's stamp verdict reaches the CRM: from a single-lead message's header and from a
batch envelope's per-lead field, through `Lead.stamp` to a mapping's `$stamp`."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import orjson
import pytest
from pamqp.commands import Basic

from leadline import batch
from leadline.message import H_STAMP, lead_properties
from leadline.schemas import load_schemas
from leadline.topology import Topology, declare_all
from tests.worker.conftest import Crm, amqp_channel, make_lead, queues_empty, settings_for, wait_for
from worker.consumer import Worker
from worker.crm.base import Lead
from worker.crm.mapping import load_mappings, parse_section
from worker.crm.settings import build_connector
from worker.intake import read_lead

FORMS = load_schemas()
LEAD_FORM = FORMS["lead"]


def test_read_lead_takes_the_verdict_from_the_header_and_none_without_one() -> None:
    sid, fields = make_lead()
    body = orjson.dumps(fields)
    flagged = read_lead(body, {"x-leadline-form": "lead", H_STAMP: "invalid"}, sid, FORMS)
    plain = read_lead(body, {"x-leadline-form": "lead"}, sid, FORMS)
    assert isinstance(flagged, Lead)
    assert isinstance(plain, Lead)
    assert (flagged.stamp, plain.stamp) == ("invalid", None)


def test_a_batch_entry_keeps_its_verdict_as_its_own_message_and_an_old_envelope_reads_none() -> None:
    sid, fields = make_lead()
    entries = [batch.Entry(sid, "lead", orjson.dumps(fields), stamp="valid"),
               batch.Entry(sid + "b", "lead", orjson.dumps(fields))]
    decoded = batch.decode(batch.encode(entries))
    assert [e.stamp for e in decoded] == ["valid", ""]
    assert "stamp" not in orjson.loads(batch.encode(entries[1:]))["leads"][0]  # unchecked: not recorded
    body, props = batch.single(decoded[0])
    lead = read_lead(body, props.headers or {}, props.message_id, FORMS)
    assert isinstance(lead, Lead)
    assert lead.stamp == "valid"
    old = orjson.dumps({"v": 1, "leads": [{"id": sid, "form": "lead", "fields": fields}]})
    assert batch.decode(old)[0].stamp == ""


def test_a_mapping_may_use_stamp_and_gives_its_default_when_unchecked() -> None:
    mapping, problems = parse_section(
        "hubspot", {"email": "email", "leadline_stamp": {"from": "$stamp", "default": "unchecked"}},
        LEAD_FORM, "lead.crm.json: hubspot")
    assert problems == []
    sid, fields = make_lead()
    assert mapping.apply(Lead(sid, "lead", fields, stamp="missing"))["leadline_stamp"] == "missing"
    assert mapping.apply(Lead(sid, "lead", fields))["leadline_stamp"] == "unchecked"


@pytest.mark.broker
async def test_the_verdict_reaches_the_crm_from_a_message_and_from_a_batch(
        amqp_url: str, topology: Topology, crm: Crm, tmp_path: Path) -> None:
    (tmp_path / "lead.crm.json").write_text(json.dumps(
        {"webhook": {"email": "email", "spam_stamp": "$stamp"}}))
    assert load_mappings("webhook", FORMS, tmp_path)  # the file is one an operator could write
    settings = settings_for(amqp_url, topology, crm)
    connector = build_connector(crm="webhook", vendor=settings.vendor, crm_url=settings.crm_url,
                                timeout=settings.crm_timeout, rate=settings.crm_rate_limit,
                                max_connections=settings.calls_in_flight, forms=FORMS, mapping_dir=tmp_path)
    single_sid, single_fields = make_lead()
    entries = {str(uuid.uuid4()): verdict for verdict in ("valid", "missing", "invalid", "")}
    worker = Worker(settings, connector=connector, forms=FORMS)
    await worker.start()
    try:
        async with amqp_channel(amqp_url) as channel:
            await declare_all(channel, topology)
            props = lead_properties(submission_id=single_sid, form="lead", stamp="invalid")
            sent = [await channel.basic_publish(orjson.dumps(single_fields), exchange=topology.work_exchange,
                                                routing_key=topology.routing_key("lead"), mandatory=True,
                                                properties=props)]
            envelope = [batch.Entry(sid, "lead", orjson.dumps(make_lead()[1]), stamp=verdict)
                        for sid, verdict in entries.items()]
            sent.append(await channel.basic_publish(
                batch.encode(envelope), exchange=topology.work_exchange, routing_key=batch.ROUTING_KEY,
                mandatory=True, properties=batch.properties(len(envelope))))
            assert all(isinstance(c, Basic.Ack) for c in sent)
        await wait_for(lambda: len(crm.state.leads) == 5, 10, "every lead in the CRM")
        await wait_for(lambda: worker.in_flight == 0, 5, "all acked")
    finally:
        await worker.stop()
    assert await queues_empty(amqp_url, topology)
    assert crm.state.leads[single_sid]["lead"]["spam_stamp"] == "invalid"
    for sid, verdict in entries.items():
        assert crm.state.leads[sid]["lead"].get("spam_stamp", "") == verdict
