"""Sampling, output and labelling over the API: the services the screen uses, with the same gates and audit."""

from __future__ import annotations

import pytest

from batchline.audit.models import AuditEntry
from batchline.execution import services as ex
from batchline.execution.models import BatchException, LabelExamination, Sample, SampleLabelPrint
from tests.api.test_api import api
from tests.conftest import PASSWORD
from tests.execution.steps_plant import make_steps_plant
from tests.execution.test_engine import A, complete, new_batch, start

pytestmark = pytest.mark.django_db


@pytest.fixture
def plant(db):
    return make_steps_plant()


def step_api(user, method, batch, path, body=None):
    return api(user, method, f"/batches/{batch.number}{path}", body)


@pytest.mark.req("NFR-05", "IPC-01", "GEN-01", "LBL-03", "LBL-02")
def test_a_batch_runs_its_sampling_output_and_labelling_steps_over_the_api(plant) -> None:
    people, recipe = plant
    op = people["operator"]
    batch = new_batch(people, recipe, number="R-001", quantity="1000")
    start(people, batch, "blender")
    ex.step_scan(actor=A(op), user=op, batch=batch, step_key="blender", scan="EQ:BLEND-01")
    complete(people, batch, "blender")
    start(people, batch, "lubricate")
    complete(people, batch, "lubricate")
    assert step_api(op, "post", batch, "/steps/sample_blend/start").status_code == 200
    wrong = step_api(
        op,
        "post",
        batch,
        "/steps/sample_blend/samples",
        {"source": "EQ:BLEND-02", "quantity": "5", "position": "top"},
    )
    assert wrong.status_code == 409 and wrong.json()["code"] == "EQUIPMENT_NOT_OF_BATCH"
    for position in ("top", "bottom"):
        r = step_api(
            op,
            "post",
            batch,
            "/steps/sample_blend/samples",
            {"source": "EQ:BLEND-01", "quantity": "5.1", "position": position},
        )
        assert r.status_code == 201, r.content
        code = r.json()["code"]
        assert r.json()["test"] == "Blend uniformity" and r.json()["quantity"] == "5.100000"
        label = step_api(op, "post", batch, f"/samples/{code}/label", {})
        assert label.status_code == 200 and label["Content-Type"] == "application/pdf"
    again = step_api(op, "post", batch, "/samples/R-001-S01/label", {})
    assert again.status_code == 422 and "reason" in again.json()["detail"]
    assert step_api(op, "post", batch, "/samples/R-001-S01/label", {"reason": "smudged"}).status_code == 200
    assert SampleLabelPrint.objects.filter(sample__code="R-001-S01", reprint=True, reason="smudged").exists()
    assert step_api(op, "post", batch, "/steps/sample_blend/complete", {}).status_code == 200

    assert step_api(op, "post", batch, "/steps/output/start").status_code == 200
    bad = step_api(op, "post", batch, "/steps/output/output", {"quantity": "1e400"})
    assert bad.status_code == 409 and bad.json()["code"] == "NOT_A_NUMBER"
    made = step_api(op, "post", batch, "/steps/output/output", {"quantity": "985"})
    assert made.status_code == 201 and made.json()["lot"] == "R-001"
    assert step_api(op, "post", batch, "/steps/output/complete", {}).json()["code"] == "OUTPUT_NOT_LABELLED"
    assert step_api(op, "post", batch, f"/output/{made.json()['container']}/label", {}).status_code == 200
    assert step_api(op, "post", batch, "/steps/output/complete", {}).status_code == 200
    for key in ("yield_calc", "sample_tablets"):
        assert step_api(op, "post", batch, f"/steps/{key}/start").status_code == 200
        if key == "sample_tablets":
            r = step_api(
                op,
                "post",
                batch,
                "/steps/sample_tablets/samples",
                {"source": made.json()["container"], "quantity": "20"},
            )
            assert r.status_code == 201, r.content
            step_api(op, "post", batch, f"/samples/{r.json()['code']}/label", {})
        assert step_api(op, "post", batch, f"/steps/{key}/complete", {}).status_code == 200

    assert step_api(op, "post", batch, "/steps/labels/start").status_code == 200
    assert step_api(op, "post", batch, "/steps/labels/labels/issue", {"quantity": "100"}).status_code == 200
    r = step_api(
        op,
        "post",
        batch,
        "/steps/labels/labels/reconcile",
        {"applied": "96", "destroyed": "2", "returned": "2"},
    )
    assert r.status_code == 200
    short = step_api(op, "post", batch, "/steps/labels/labels/examine", {"results": ["pass"], "units": "5"})
    assert short.status_code == 409 and short.json()["code"] == "EXAMINATION_OPEN"
    assert (
        step_api(
            op, "post", batch, "/steps/labels/labels/examine", {"results": ["pass"] * 3, "units": "6"}
        ).status_code
        == 200
    )
    assert LabelExamination.objects.get().units_examined == 6
    signature = {"username": "operator", "password": PASSWORD}
    assert step_api(op, "post", batch, "/steps/labels/complete", {"signature": signature}).status_code == 200
    record = step_api(op, "get", batch, "/record").json()
    assert record["state"] == "running"  # waiting for the verifier
    assert Sample.objects.filter(step__batch=batch).count() == 3
    assert AuditEntry.objects.filter(record_type="execution.labelissue", via="api").exists()
    # Every refusal is kept for QA, as on the screen.
    assert BatchException.objects.filter(batch=batch, code="REFUSED_EQUIPMENT_NOT_OF_BATCH").exists()


@pytest.mark.req("NFR-05", "P11-07")
def test_a_person_without_the_execute_permission_is_refused_and_nothing_is_written(plant) -> None:
    people, recipe = plant
    batch = new_batch(people, recipe, number="R-001", quantity="1000")
    r = step_api(
        people["approver"],
        "post",
        batch,
        "/steps/sample_blend/samples",
        {"source": "EQ:BLEND-01", "quantity": "5"},
    )
    assert r.status_code == 403
    assert not Sample.objects.exists()


@pytest.mark.req("NFR-05")
def test_the_openapi_document_describes_the_new_endpoints(db) -> None:
    from django.test import Client

    paths = Client().get("/api/v1/openapi.json").json()["paths"]
    for path in (
        "/api/v1/batches/{number}/steps/{key}/samples",
        "/api/v1/batches/{number}/steps/{key}/output",
        "/api/v1/batches/{number}/steps/{key}/labels/issue",
        "/api/v1/batches/{number}/steps/{key}/labels/reconcile",
        "/api/v1/batches/{number}/steps/{key}/labels/examine",
        "/api/v1/batches/{number}/samples/{code}/label",
        "/api/v1/batches/{number}/output/{code}/label",
    ):
        assert path in paths, path


@pytest.mark.req("NFR-05", "A11-05", "P11-06")
@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/steps/blender/labels/examine", {"results": ["pass"], "units": "1"}),
        ("/steps/blender/labels/reconcile", {"applied": "1", "destroyed": "0", "returned": "0"}),
        ("/steps/blender/labels/issue", {"quantity": "1"}),
    ],
)
def test_a_label_action_on_a_step_that_is_no_labelling_step_is_refused_in_words(plant, path, body) -> None:
    # The fuzzer found the examination answering a running step of another kind with a server error.
    people, recipe = plant
    op = people["operator"]
    batch = new_batch(people, recipe, number="R-002", quantity="1000")
    start(people, batch, "blender")
    refused = step_api(op, "post", batch, path, body)
    assert refused.status_code == 409, refused.content
    assert refused.json()["code"] == "WRONG_STEP_KIND"
    assert "issues no labels" in refused.json()["detail"]
    assert not LabelExamination.objects.exists()
