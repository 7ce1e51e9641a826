"""A sampling step asks the LIMS for each sample's test: a request written to the outbox with the sample."""

from __future__ import annotations

import json

import pytest
from django.test import override_settings

from batchline.audit.models import AuditEntry
from batchline.execution.models import Sample
from batchline.execution.services import ExecutionRefused
from batchline.lims.models import SampleRequest
from batchline.outbox.models import Message
from tests.execution.test_engine import complete, start
from tests.lims.plant import LIMS, blend_samples, claim_blender, make_lims_plant, new_batch, sha, take

pytestmark = pytest.mark.django_db


@pytest.fixture
def plant(db):
    return make_lims_plant()


@pytest.mark.req("IPC-01", "A11-07", "S95-01")
@override_settings(OUTBOX_DESTINATIONS=LIMS)
def test_each_sample_taken_puts_its_request_in_the_outbox_with_what_the_laboratory_needs(plant) -> None:
    people, recipe, _lot = plant
    batch = new_batch(people, recipe, quantity="500")
    top, bottom = blend_samples(people, batch)

    messages = list(Message.objects.filter(destination="lims").order_by("id"))
    assert [(m.kind, m.stream, m.key) for m in messages] == [
        ("sample.requested", "batch:LB-001", "batchline:lims:sample:LB-001-S01"),
        ("sample.requested", "batch:LB-001", "batchline:lims:sample:LB-001-S02"),
    ]
    assert messages[0].content_type == "application/json" and messages[0].state == Message.State.PENDING
    body = json.loads(messages[0].body)
    assert body == {
        "format": "batchline.sample-request/1",
        "sample": "LB-001-S01",
        "kind": "in_process",
        "batch": "LB-001",
        "product": "Lab tablets 100 mg",
        "step": {"key": "blend_ipc", "title": "Sample the blend for its assay", "operation": "Blending"},
        "material": {"code": "", "name": "in-process material of Lab tablets 100 mg"},
        "lot": "",
        "source": {"kind": "equipment", "id": "BLEND-01", "position": "top"},
        "quantity": "5.1",
        "planned_quantity": "5",
        "unit": "g",
        "test": "Blend assay",
        "method": "SOP-QC-021",
        "result": {
            "name": "blend_assay",
            "label": "Blend assay",
            "unit": "%",
            "specification": {"low": "95", "high": "105", "text": "95–105 %"},
            "action": {"low": "97", "high": "103"},
            "result_awaited_by_step": True,
        },
        "samples_in_step": 2,
        "taken_by": "Operator Person",
        "taken_at": body["taken_at"],
        "results_to": "/api/v1/lims/results",
    }
    assert body["taken_at"] == Sample.objects.get(code="LB-001-S01").taken_at.strftime(
        "%Y-%m-%dT%H:%M:%S.%fZ"
    )
    # The request is a record of its own, as sent, audited with the operator who took the sample.
    request = SampleRequest.objects.get(sample=top)
    assert request.content == body and request.message_key == messages[0].key
    assert request.content_sha256 == sha(
        json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    )
    entry = AuditEntry.objects.get(record_type="lims.samplerequest", record_id=str(request.pk))
    assert entry.actor_username == "operator" and entry.action == "create"
    assert SampleRequest.objects.get(sample=bottom).content["source"]["position"] == "bottom"


@pytest.mark.req("IPC-01", "A11-07", "S88-04")
@override_settings(OUTBOX_DESTINATIONS=LIMS)
def test_a_lot_sample_names_its_material_and_lot_and_scaled_limits_are_sent_scaled(plant) -> None:
    people, recipe, lot = plant
    batch = new_batch(people, recipe, quantity="500")  # half the recipe's 1,000 tablets
    claim_blender(people, batch)
    start(people, batch, "api_check")
    container = lot.containers.order_by("code").first()
    take(people, batch, "api_check", container.code, "10")
    body = json.loads(Message.objects.get(key="batchline:lims:sample:LB-001-S01").body)
    assert (body["kind"], body["material"], body["lot"]) == (
        "material",
        {"code": "API-1", "name": "Active ingredient"},
        "L-API-01",
    )
    assert body["source"] == {"kind": "container", "id": container.code, "position": ""}
    assert body["result"]["specification"] == {"low": None, "high": "0.5", "text": "≤ 0.5 %"}
    assert body["result"]["result_awaited_by_step"] is False
    # The API content of the blend scales with the batch: 9.5–10.5 kg at 1,000 tablets, half at 500.
    complete(people, batch, "api_check")
    start(people, batch, "api_content")
    take(people, batch, "api_content", "EQ:BLEND-01", "5")
    scaled = json.loads(Message.objects.get(key="batchline:lims:sample:LB-001-S02").body)["result"]
    assert scaled["specification"] == {"low": "4.75", "high": "5.25", "text": "4.75–5.25 kg"}


@pytest.mark.req("IPC-01", "A11-07")
def test_without_a_lims_destination_the_request_is_recorded_and_nothing_is_queued(plant) -> None:
    people, recipe, _lot = plant
    batch = new_batch(people, recipe)
    blend_samples(people, batch)
    assert not Message.objects.exists()
    assert [r.message_key for r in SampleRequest.objects.order_by("id")] == ["", ""]


@pytest.mark.req("IPC-01", "A11-07", "P11-06")
@override_settings(OUTBOX_DESTINATIONS=LIMS)
def test_a_refused_sample_sends_no_request(plant) -> None:
    people, recipe, _lot = plant
    batch = new_batch(people, recipe)
    claim_blender(people, batch)
    start(people, batch, "blend_ipc")
    with pytest.raises(ExecutionRefused) as refused:
        take(people, batch, "blend_ipc", "EQ:BLEND-01", "5", "middle")  # not one of the recipe's positions
    assert refused.value.verdict.codes == ["POSITION_REQUIRED"]
    assert not Sample.objects.exists() and not SampleRequest.objects.exists() and not Message.objects.exists()
