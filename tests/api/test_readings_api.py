"""Inputs read from a machine over the API (issue 15, item 4): the reading taken with where it came
from, a refused reading recorded for QA, a value typed instead only with a reason and a second
person, and a correction of such a value likewise; the record shows each value's source."""

from __future__ import annotations

from typing import Any

import pytest

from batchline.audit.models import AuditEntry
from batchline.execution.models import BatchException, StepValue
from batchline.signatures.models import Signature
from tests.api.test_api import api
from tests.conftest import PASSWORD
from tests.gateway.test_instrument_readings import OPC, lod, stored  # noqa: F401 (the fixture)

pytestmark = pytest.mark.django_db


def sig(user: str, password: str = PASSWORD) -> dict[str, str]:
    return {"username": user, "password": password}


def reading_api(user: Any, batch: Any, path: str, body: Any = None) -> Any:
    return api(user, "post", f"/batches/{batch.number}/steps/lod/readings/{path}", body)


def writes_since(mark: int) -> list[str]:
    """What was written after audit entry ``mark``, besides the API token the call made."""
    return [
        f"{e.action} {e.record_type}"
        for e in AuditEntry.objects.filter(id__gt=mark).order_by("id")
        if e.record_type != "accounts.apitoken"
    ]


def last_entry() -> int:
    return AuditEntry.objects.order_by("-id").values_list("id", flat=True).first() or 0


@pytest.mark.req("IPC-04", "S95-06", "NFR-05", "DI-01")
def test_a_reading_taken_over_the_api_answers_the_value_with_its_device_tag_times_and_quality(lod) -> None:  # noqa: F811
    people, batch = lod
    op = people["operator"]
    stored("ns=2;s=LOD", 2.2, ago=2)
    taken = reading_api(op, batch, "moisture")
    assert taken.status_code == 201, taken.content
    value = taken.json()
    assert (value["name"], value["source"], value["text"], value["number"], value["unit"]) == (
        "moisture",
        "device",
        "2.2",
        "2.2",
        "%",
    )
    assert value["in_specification"] is True and value["entered_by"]["username"] == "operator"
    r = value["reading"]
    where = {"equipment": "FBD-01", "protocol": "opcua", "endpoint": OPC, "tag": "ns=2;s=LOD"}
    assert {k: r[k] for k in where} == where
    assert (r["raw"], r["raw_unit"], r["quality"]) == ("2.2", "%", "good")
    assert r["source_time"] < r["gateway_time"] and r["gateway_time"].endswith("Z") and len(r["key"]) == 32
    (entry,) = AuditEntry.objects.filter(record_type="execution.instrumentreading")
    assert entry.via == "api" and entry.actor_username == "operator"

    # The step takes its other device input itself at completion; the record shows both readings.
    stored("ns=2;s=Inlet", 334.15)  # K from the PLC, °C in the recipe
    done = api(op, "post", f"/batches/{batch.number}/steps/lod/complete", {"signature": sig("operator")})
    assert done.status_code == 200 and done.json()["state"] == "done", done.content
    record = api(people["approver"], "get", f"/batches/{batch.number}/record").json()
    values = {v["name"]: v for s in record["steps"] if s["key"] == "lod" for v in s["values"]}
    assert values["moisture"] == value
    inlet = values["inlet_final"]
    assert (inlet["source"], inlet["text"], inlet["unit"]) == ("device", "61", "°C")
    assert (inlet["reading"]["tag"], inlet["reading"]["raw"], inlet["reading"]["raw_unit"]) == (
        "ns=2;s=Inlet",
        "334.15",
        "K",
    )
    review = api(people["approver"], "get", f"/quality/batches/{batch.number}/review").json()
    (critical,) = review["critical_values"]
    assert (critical["name"], critical["source"], critical["reading"]) == ("moisture", "device", r)


@pytest.mark.req("IPC-04", "S95-06", "P11-06", "NFR-05")
def test_a_reading_that_cannot_be_taken_is_refused_over_the_api_with_its_code_and_recorded(lod) -> None:  # noqa: F811
    people, batch = lod
    op = people["operator"]
    mark = last_entry()
    none_yet = reading_api(op, batch, "moisture")
    assert none_yet.status_code == 409 and none_yet.json()["code"] == "READING_NOT_USABLE"
    assert "nothing was read from it in the last day" in none_yet.json()["reasons"][0]["message"]
    stored("ns=2;s=LOD", 2.0, ago=310)
    old = reading_api(op, batch, "moisture")
    assert old.status_code == 409 and old.json()["code"] == "READING_NOT_CURRENT"
    typed_input = reading_api(op, batch, "remark")
    assert typed_input.status_code == 409 and typed_input.json()["code"] == "NOT_FROM_DEVICE"
    # Nothing written but the refusals themselves, each kept for QA with its code.
    assert not StepValue.objects.filter(step__batch=batch).exclude(step__key="dryer").exists()
    assert {x.split()[1] for x in writes_since(mark)} <= {"execution.batchexception", "execution.batch"}
    refused = set(BatchException.objects.filter(batch=batch).values_list("code", flat=True))
    assert refused >= {"REFUSED_READING_NOT_USABLE", "REFUSED_READING_NOT_CURRENT", "REFUSED_NOT_FROM_DEVICE"}

    stored("ns=2;s=LOD", 2.4)
    assert reading_api(op, batch, "moisture").status_code == 201
    again = reading_api(op, batch, "moisture")
    assert again.status_code == 409 and again.json()["code"] == "READING_TAKEN"
    assert StepValue.objects.filter(step__batch=batch, name="moisture").count() == 1


@pytest.mark.req("IPC-04", "A11-08", "DI-05", "NFR-05")
def test_a_value_typed_instead_over_the_api_needs_a_reason_and_a_witness_and_is_marked_manual(lod) -> None:  # noqa: F811
    people, batch = lod
    op = people["operator"]
    body = {"text": "2.3", "reason": "NIR probe fouled", "witness": sig("supervisor")}

    def nothing_recorded() -> bool:
        return not StepValue.objects.filter(step__batch=batch, name="moisture").exists()

    bare = reading_api(op, batch, "moisture/manual", {"text": "2.3"})
    assert bare.status_code == 409 and [x["code"] for x in bare.json()["reasons"]] == [
        "REASON_REQUIRED",
        "WITNESS_REQUIRED",
    ]
    unwitnessed = reading_api(op, batch, "moisture/manual", {**body, "witness": None})
    assert unwitnessed.status_code == 409 and unwitnessed.json()["code"] == "WITNESS_REQUIRED"
    assert BatchException.objects.filter(batch=batch, code="REFUSED_WITNESS_REQUIRED").exists()
    oneself = reading_api(op, batch, "moisture/manual", {**body, "witness": sig("operator")})
    assert oneself.status_code == 403 and oneself.json()["code"] == "WITNESS_SAME_PERSON"
    mark = last_entry()
    wrong = reading_api(op, batch, "moisture/manual", {**body, "witness": sig("supervisor", "wrong")})
    assert wrong.status_code == 403 and wrong.json()["code"] == "BAD_CREDENTIALS"
    assert writes_since(mark) == ["signature_failed accounts.user"]
    asked = reading_api(op, batch, "moisture/manual", {**body, "text": "3.5"})
    assert asked.status_code == 409 and asked.json()["code"] == "CONFIRM_OUT_OF_SPECIFICATION"
    assert nothing_recorded()

    typed = reading_api(op, batch, "moisture/manual", body)
    assert typed.status_code == 201, typed.content
    value = typed.json()
    assert (value["source"], value["text"], value["reason"], value["reading"]) == (
        "manual",
        "2.3",
        "NIR probe fouled",
        None,
    )
    (witnessed,) = Signature.objects.filter(record_type="execution.stepvalue", record_id=str(value["id"]))
    assert (witnessed.meaning, witnessed.signer.username, witnessed.witness) == (
        "verified",
        "supervisor",
        True,
    )
    (flag,) = BatchException.objects.filter(batch=batch, code="MANUAL_READING_ENTRY")
    assert "typed by hand instead of read from FBD-01: 2.3 %" in flag.message
    # Typed once: taking the reading now is refused, as is typing it again.
    stored("ns=2;s=LOD", 2.4)
    assert reading_api(op, batch, "moisture").json()["code"] == "READING_TAKEN"


@pytest.mark.req("IPC-04", "DI-05", "A11-08", "NFR-05")
def test_a_correction_of_a_device_value_over_the_api_needs_the_second_person(lod) -> None:  # noqa: F811
    people, batch = lod
    op = people["operator"]
    stored("ns=2;s=LOD", 2.5)
    original = reading_api(op, batch, "moisture").json()
    correct = {
        "name": "moisture",
        "text": "2.6",
        "reason": "probe recalibrated",
        "signature": sig("operator"),
    }
    path = f"/batches/{batch.number}/steps/lod/correct"
    refused = api(op, "post", path, correct)
    assert refused.status_code == 409 and refused.json()["code"] == "WITNESS_REQUIRED", refused.content
    assert StepValue.objects.filter(step__batch=batch, name="moisture").count() == 1
    corrected = api(op, "post", path, {**correct, "witness": sig("supervisor")})
    assert corrected.status_code == 200, corrected.content
    record = api(people["approver"], "get", f"/batches/{batch.number}/record").json()
    lod_step = next(s for s in record["steps"] if s["key"] == "lod")
    moisture = [v for v in lod_step["values"] if v["name"] == "moisture"]
    assert [(v["source"], v["text"]) for v in moisture] == [("device", "2.5"), ("manual", "2.6")]
    assert moisture[0]["reading"] == original["reading"] and moisture[1]["reading"] is None
    assert moisture[1]["corrects"] == original["id"] and moisture[1]["reason"] == "probe recalibrated"
    meanings = Signature.objects.filter(
        record_type="execution.stepvalue", record_id=str(moisture[1]["id"])
    ).values_list("meaning", "signer__username")
    assert sorted(meanings) == [("performed", "operator"), ("verified", "supervisor")]
