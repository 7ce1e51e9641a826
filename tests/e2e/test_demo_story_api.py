"""PCM-0001, the demo's headline batch, executed over the API as the README tells it, to QA release.

Every dispensing is a weighing on the demo's simulated scales (the load placed through the
same path as the booth's Simulator control), every charge the scan of a container weighed out
for the batch, every unit identified by its tag through the equipment gate; the record then
holds every 21 CFR 211.188(b) item with this batch's own data, in the PDF, the JSON and BatchML.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client

from batchline.audit.verify import verify
from batchline.execution.models import Batch, BatchException, BatchStep
from batchline.materials.models import Container, Lot
from batchline.reports import batchml
from batchline.simulation.scales import place, serving
from batchline.web.management.commands.demo import seed
from tests.api.test_api import token_for
from tests.e2e import demo_story as story
from tests.execution.test_engine import age
from tests.reports.test_records import pdf_text

pytestmark = pytest.mark.django_db


class Person:
    """A demo person at the API, with a read-write token of their own."""

    def __init__(self, username: str) -> None:
        from batchline.accounts.models import User

        self.username = username
        self.client = Client(
            headers={"Authorization": f"Bearer {token_for(User.objects.get(username=username))}"}
        )

    def call(self, method: str, path: str, body: dict[str, Any] | None = None, expect: int = 200) -> Any:
        kwargs: dict[str, Any] = (
            {"content_type": "application/json", "data": body} if body is not None else {}
        )
        response = getattr(self.client, method)(f"/api/v1{path}", **kwargs)
        assert response.status_code == expect, (path, response.status_code, response.content[:800])
        return (
            response.json()
            if response.headers.get("Content-Type", "").startswith("application/json")
            else response
        )

    def signature(self) -> dict[str, str]:
        return {"username": self.username, "password": story.PASSWORD}


def steps(person: Person) -> list[dict[str, Any]]:
    return person.call("get", f"/batches/{story.BATCH}/steps")


def run_step(operator: Person, supervisor: Person, key: str, kind: str) -> None:
    """One step of PCM-0001, from start to done, as the operator (and a verifier) does it."""
    base = f"/batches/{story.BATCH}/steps/{key}"
    performer = supervisor if key == "batch_signoff" else operator
    performer.call("post", f"{base}/start")
    body: dict[str, Any] = {}
    if kind == "weigh_dispense":
        material, scale, load, _unit = story.WEIGHINGS[key]
        lot = Lot.objects.get(number=story.SOURCE_LOTS[material])
        source = lot.containers.filter(quantity__gt=0).order_by("code").first()
        place(scale, Decimal(load))
        operator.call("post", f"{base}/dispense", {"source": source.code, "scale": scale})
        held = operator.call("get", f"/batches/{story.BATCH}/containers")
        (weighed,) = [c["container"] for c in held if c["material_code"] == material]
        operator.call("post", f"/batches/{story.BATCH}/dispensed/{weighed}/label", {"reason": ""})
    elif kind == "equipment_id":
        operator.call("post", f"{base}/scan", {"scan": story.UNITS[key]})
    elif key == "take_drums":  # packaging from stock: the carton's label
        carton = Lot.objects.get(number=story.PACKAGING_LOT).containers.get()
        operator.call("post", f"{base}/scan", {"scan": carton.code})
    elif kind == "material_charge":
        held = operator.call("get", f"/batches/{story.BATCH}/containers")
        mine = [c for c in held if c["material_code"] == story.CHARGES[key]]
        assert mine, (key, held)
        for c in mine:
            operator.call("post", f"{base}/scan", {"scan": c["container"]})
    elif kind == "timer":
        age(BatchStep.objects.get(batch__number=story.BATCH, key=key), story.TIMERS[key])
        if key == "drying_hold":  # the dryer's controller reports through the gateway
            story.dryer_reads(key)
    elif kind == "data_entry":
        body["values"] = story.ENTRIES[key]
        if key == "lod":  # loss on drying from the dryer's moisture analyser: the reading is taken
            story.moisture_reads()
            taken = operator.call("post", f"{base}/readings/lod_pct", {}, expect=201)
            assert (taken["source"], taken["reading"]["equipment"]) == ("device", "FBD-01"), taken
    elif kind == "checklist":
        body["checklist"] = [True, True, True]
    elif kind == "sampling":
        if key == "blend_sample":
            taken = []
            for position in story.POSITIONS:
                sample = operator.call(
                    "post",
                    f"{base}/samples",
                    {"source": "BLEND-01", "quantity": "1.8", "position": position},
                    expect=201,
                )
                operator.call(
                    "post", f"/batches/{story.BATCH}/samples/{sample['code']}/label", {"reason": ""}
                )
                taken.append(sample["code"])
            story.laboratory_answers(taken)  # the step waits for the laboratory's results
        else:
            drum = Container.objects.filter(lot__number=story.BATCH).order_by("-code").first()
            sample = operator.call(
                "post", f"{base}/samples", {"source": drum.code, "quantity": "120"}, expect=201
            )
            operator.call("post", f"/batches/{story.BATCH}/samples/{sample['code']}/label", {"reason": ""})
    elif kind == "produce":
        for count in story.DRUMS:
            made = operator.call("post", f"{base}/output", {"quantity": count}, expect=201)
            operator.call("post", f"/batches/{story.BATCH}/output/{made['container']}/label", {"reason": ""})
    elif kind == "labelling":
        operator.call("post", f"{base}/labels/issue", {"quantity": story.LABELS["issued"]})
        operator.call(
            "post",
            f"{base}/labels/reconcile",
            {k: story.LABELS[k] for k in ("applied", "destroyed", "returned")},
        )
        operator.call(
            "post",
            f"{base}/labels/examine",
            {"results": ["pass"] * story.EXAMINATION, "units": "4", "comment": ""},
        )
    if key in story.SIGNS:
        body["signature"] = performer.signature()
    performer.call("post", f"{base}/complete", body)
    if key in story.VERIFIED:
        supervisor.call("post", f"{base}/verify", {"signature": supervisor.signature()})


@pytest.mark.req("S88-05", "WD-01", "WD-03", "WD-04", "WD-05", "EQ-01", "GEN-01", "YLD-01", "YLD-03")
@pytest.mark.req("IPC-01", "LBL-03", "RBE-03", "RBE-06", "RBE-07", "BR-01", "BR-02", "NFR-05")
def test_the_demo_batch_runs_over_the_api_from_dispensing_to_qa_release(monkeypatch, tmp_path) -> None:
    story.demo_scales_on_free_ports(monkeypatch)
    seed()
    operator, supervisor = Person("operator"), Person("supervisor")
    reviewer, approver = Person("reviewer"), Person("approver")
    with serving(report=lambda line: None) as started:
        assert [s.code for s in started] == ["SCALE-01", "SCALE-02"]
        # The steps in the order the screen offers them (each waits for its predecessors).
        for step in steps(operator):
            run_step(operator, supervisor, step["key"], step["kind"])

    batch = Batch.objects.get(number=story.BATCH)
    assert batch.state == "complete"
    assert all(s["state"] == "done" for s in steps(operator))
    # Nothing left over: every container weighed out was charged whole.
    assert operator.call("get", f"/batches/{story.BATCH}/containers") == []
    # The run raised nothing QA must decide: no slip, no value outside its limits.
    assert list(BatchException.objects.filter(batch=batch).values_list("code", "message")) == []

    review = reviewer.call("get", f"/quality/batches/{story.BATCH}/review")
    assert review["complete"] and all(c["ok"] for c in review["checklist"]), review["checklist"]
    assert review["next_stage"] == "production_review"
    for who, stage in ((supervisor, "production_review"), (reviewer, "qa_review"), (approver, "released")):
        signed = who.call(
            "post",
            f"/quality/batches/{story.BATCH}/review",
            {"stage": stage, "comment": "", "signature": who.signature()},
        )
    assert signed["state"] == "qa_released"

    output = Lot.objects.get(number=story.BATCH, produced_by_batch=story.BATCH)
    started_at = BatchStep.objects.get(batch=batch, key="line_clearance").started_at
    assert output.status == "released"
    assert output.expires_at == started_at + dt.timedelta(days=1095)  # 36 months from manufacture
    assert sum(c.quantity for c in output.containers.all()) == Decimal(98500)

    # The record: every 211.188(b) item with this batch's own data, in the PDF…
    auditor = Client()
    assert auditor.post("/login/", {"username": "auditor", "password": story.PASSWORD}).status_code == 302
    pdf = auditor.get(f"/batches/{story.BATCH}/record/pdf/")
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
    flat = re.sub(r"\s+", " ", pdf_text(pdf.content, tmp_path))
    for item, needles in story.RECORD_ITEMS.items():
        for needle in needles:
            assert needle in flat, (item, needle)
    labeling_to_persons = flat.split("8. Labeling control records", 1)[1].split("11. Persons", 1)[0]
    assert "None recorded" not in labeling_to_persons
    # … in the JSON the API gives …
    record = auditor.get(f"/api/v1/batches/{story.BATCH}/record").json()
    assert {s["status"]["state"] for s in record["signatures"] if s.get("status")} <= {"valid"}
    # … and in BatchML, valid against MESA's V0700 schema.
    xml = auditor.get(f"/batches/{story.BATCH}/record/batchml/")
    assert xml.status_code == 200
    assert batchml.validate(xml.content) == []
    # The whole trail, replayed against the live tables, agrees.
    assert verify().ok
