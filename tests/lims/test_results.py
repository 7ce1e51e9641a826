"""Laboratory results posted by the LIMS (JSON): judged against the recipe, recorded, acted on."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.test import Client

from batchline.audit.models import AuditEntry
from batchline.execution.models import BatchException, StepValue
from batchline.execution.services import ExecutionRefused
from batchline.lims import selectors
from batchline.materials.models import Lot
from batchline.quality import selectors as quality
from batchline.quality.services import QualityRefused
from batchline.rules.materials import lot_usable
from tests.api.test_api import token_for
from tests.execution.test_engine import complete, start
from tests.lims.plant import (
    blend_samples,
    claim_blender,
    make_lims_plant,
    new_batch,
    post_json,
    result,
    run_to_complete,
    take,
)
from tests.quality.test_quality_services import disposition, raise_deviation, stage

pytestmark = pytest.mark.django_db


@pytest.fixture
def plant(db):
    return make_lims_plant()


def codes(response) -> list[str]:
    return [r["code"] for r in response.json()["reasons"]]


@pytest.mark.req("IPC-01", "S95-04", "DI-01", "P11-06")
def test_in_spec_results_fill_the_waiting_step_which_completes_only_then(plant) -> None:
    people, recipe, _lot = plant
    batch = new_batch(people, recipe)
    top, bottom = blend_samples(people, batch)
    with pytest.raises(ExecutionRefused) as refused:
        complete(people, batch, "blend_ipc")
    assert refused.value.verdict.codes == ["RESULT_AWAITED"]
    assert "result of sample LB-001-S01, LB-001-S02 (Blend assay) is not in yet" in str(refused.value)

    first = post_json(people["lims"], result(top, "99.2", tested_at="2026-12-07T09:30:00+01:00"))
    assert first.status_code == 201, first.json()
    out = first.json()
    assert (out["sample"], out["batch"], out["step"], out["value"], out["unit"]) == (
        "LB-001-S01",
        "LB-001",
        "blend_ipc",
        "99.2",
        "%",
    )
    assert (out["specification"], out["in_specification"], out["within_action"]) == ("95–105 %", True, True)
    assert out["filled_step"] is True and out["exception"] is None and out["received_by"] == "lims"
    with pytest.raises(ExecutionRefused, match="LB-001-S02"):
        complete(people, batch, "blend_ipc")
    # 995 mg/g is 99.5 %: converted into the recipe's unit, then judged.
    second = post_json(people["lims"], result(bottom, "995", "mg/g"))
    assert second.status_code == 201 and second.json()["judged_value"] == "99.500000000"

    values = list(StepValue.objects.filter(step__key="blend_ipc").order_by("id"))
    assert [
        (v.name, v.label, v.source, v.number, v.unit, v.in_specification, v.critical) for v in values
    ] == [
        ("blend_assay", "Blend assay, sample LB-001-S01", "laboratory", Decimal("99.2"), "%", True, True),
        ("blend_assay", "Blend assay, sample LB-001-S02", "laboratory", Decimal("99.5"), "%", True, True),
    ]
    assert [v.sample.code for v in values] == ["LB-001-S01", "LB-001-S02"]
    step = complete(people, batch, "blend_ipc")
    assert step.state == "done"
    # Every record the results wrote names the LIMS's interface user (S95-04).
    written = AuditEntry.objects.filter(record_type="lims.labresult") | AuditEntry.objects.filter(
        record_type="execution.stepvalue", record_id__in=[str(v.pk) for v in values]
    )
    assert written.count() == 4
    assert {(e.actor_username, e.actor_name, e.via) for e in written} == {("lims", "LIMS Interface", "api")}
    assert not BatchException.objects.filter(batch=batch).exclude(code__startswith="REFUSED_").exists()


@pytest.mark.req("IPC-01", "DEV-01", "RBE-01", "P11-06")
def test_an_out_of_spec_result_raises_a_blocking_exception_that_stops_the_batch_until_qa_decides(
    plant,
) -> None:
    people, recipe, _lot = plant
    batch = new_batch(people, recipe)
    top, bottom = blend_samples(people, batch)
    response = post_json(people["lims"], result(top, "93.1"))
    assert response.status_code == 201
    out = response.json()
    assert out["in_specification"] is False and out["exception_code"] == "LAB_OUT_OF_SPECIFICATION"
    exc = BatchException.objects.get(pk=out["exception"])
    assert (exc.severity, exc.blocks, exc.step.key, exc.equipment, exc.value.number) == (
        "critical",
        True,
        "blend_ipc",
        "BLEND-01",
        Decimal("93.1"),
    )
    assert exc.message == (
        f"Laboratory result LIMS-{top.code} out of specification: Blend assay of sample {top.code}: "
        "93.1 % is outside its specification 95–105 %."
    )
    batch.refresh_from_db()
    assert batch.blocking_exceptions == 1
    # The value is on the step, red; the batch stops until QA decides; QA sees it at once.
    assert StepValue.objects.get(sample=top).in_specification is False
    assert post_json(people["lims"], result(bottom, "99.9")).status_code == 201  # results still come in
    with pytest.raises(ExecutionRefused) as refused:
        complete(people, batch, "blend_ipc")
    assert "EXCEPTION_BLOCKS" in refused.value.verdict.codes
    review = quality.review_screen(batch, qp_required=False)
    assert any("out of specification" in line for c in review.checks for line in c.findings)
    dev = raise_deviation(
        people, [batch.number], title="OOS blend assay", description="Top of the blender at 93.1 %."
    )
    disposition(
        people,
        [exc.pk],
        decision="deviation",
        deviation_number=dev.number,
        comment="OOS investigation opened.",
    )
    assert complete(people, batch, "blend_ipc").state == "done"


@pytest.mark.req("IPC-01", "DEV-01", "RBE-03", "RBE-06", "DEV-03")
def test_an_out_of_spec_result_after_completion_holds_the_release_until_dispositioned(plant) -> None:
    people, recipe, lot = plant
    batch = new_batch(people, recipe)
    samples = run_to_complete(people, batch, lot)
    # The API content of the whole blend: 9.5–10.5 kg; 11.2 kg is out. The step did not wait: done already.
    late = post_json(people["lims"], result(samples["content"], "11.2", "kg"))
    assert late.status_code == 201 and late.json()["filled_step"] is False
    exc = BatchException.objects.get(pk=late.json()["exception"])
    assert exc.blocks and exc.code == "LAB_OUT_OF_SPECIFICATION"
    with pytest.raises(QualityRefused) as refused:
        stage(people, batch, "production_review", "supervisor2")
    assert refused.value.verdict.codes == ["INCOMPLETE_EXCEPTIONS"]
    disposition(people, [exc.pk], comment="Assay of the blend repeated by the laboratory's OOS procedure.")
    stage(people, batch, "production_review", "supervisor2")
    stage(people, batch, "qa_review", "reviewer")
    stage(people, batch, "released", "approver")
    batch.refresh_from_db()
    assert batch.state == "qa_released"


def lot_and_content_samples(people, batch, lot):
    claim_blender(people, batch)
    start(people, batch, "api_check")
    lot_sample = take(people, batch, "api_check", lot.containers.order_by("code").first().code, "10")
    complete(people, batch, "api_check")
    start(people, batch, "api_content")
    return lot_sample, take(people, batch, "api_content", "EQ:BLEND-01", "5")


@pytest.mark.req("IPC-01", "S88-04")
def test_scaled_limits_judge_the_result_of_a_half_batch(plant) -> None:
    people, recipe, lot = plant
    batch = new_batch(people, recipe, quantity="500")
    _lot_sample, content = lot_and_content_samples(people, batch, lot)
    # 9.5–10.5 kg for 1,000 tablets is 4.75–5.25 kg for 500: 5.1 kg is in, and 5100 g is the same.
    ok = post_json(people["lims"], result(content, "5100", "g", rid="R-1"))
    assert ok.status_code == 201
    assert (ok.json()["specification"], ok.json()["judged_value"], ok.json()["in_specification"]) == (
        "4.75–5.25 kg",
        "5.100000000",
        True,
    )
    high = post_json(people["lims"], result(content, "5.3", "kg", rid="R-2"))  # a retest, under its own ID
    assert high.json()["in_specification"] is False
    assert [r.result_id for r in selectors.results(sample=content.code)] == ["R-1", "R-2"]


@pytest.mark.req("S95-04", "MAT-06", "MAT-01", "IPC-01")
def test_a_lot_sample_out_of_spec_blocks_its_lot_named_to_the_interface_user(plant) -> None:
    people, recipe, lot = plant
    batch = new_batch(people, recipe)
    lot_sample, _content = lot_and_content_samples(people, batch, lot)
    assert lot.status == "released"
    response = post_json(people["lims"], result(lot_sample, "0.9"))
    assert response.status_code == 201
    out = response.json()
    assert (out["in_specification"], out["lot_blocked"], out["exception_code"]) == (
        False,
        "L-API-01",
        "LAB_OUT_OF_SPECIFICATION",
    )
    lot.refresh_from_db()
    assert lot.status == "blocked"
    entry = AuditEntry.objects.get(record_type="materials.lot", record_id=str(lot.pk), action="block")
    assert (entry.actor_username, entry.via) == ("lims", "api")
    assert "Water content of sample LB-001-S01: 0.9 % is outside its specification ≤ 0.5 %" in entry.reason
    exc = BatchException.objects.get(pk=out["exception"])
    assert exc.blocks and exc.material == "L-API-01" and "Lot L-API-01 of API-1 is blocked." in exc.message
    # From now on the gate refuses the lot at every use, until QA's signed disposition.
    assert lot_usable(Lot.objects.get(pk=lot.pk).view(), now=lot.received_at).codes == ["LOT_BLOCKED"]


@pytest.mark.req("S95-04", "IPC-01", "DI-10")
def test_an_in_spec_lot_result_is_the_lots_test_record_and_leaves_it_as_it_is(plant) -> None:
    people, recipe, lot = plant
    batch = new_batch(people, recipe)
    lot_sample, _content = lot_and_content_samples(people, batch, lot)
    assert post_json(people["lims"], result(lot_sample, "0.2")).status_code == 201
    lot.refresh_from_db()
    assert lot.status == "released"
    found = list(selectors.results(lot="L-API-01"))
    assert [(r.sample.code, r.test, r.text, r.in_specification, r.exception_id) for r in found] == [
        ("LB-001-S01", "Water content", "0.2", True, None)
    ]
    # The same records over the API, for a reconciliation against the LIMS (A11-07).
    read = Client().get(
        "/api/v1/lims/results?lot=L-API-01",
        headers={"Authorization": f"Bearer {token_for(people['reviewer'])}"},
    )
    assert read.status_code == 200 and [r["result_id"] for r in read.json()] == ["LIMS-LB-001-S01"]


@pytest.mark.req("IPC-01", "DEV-01", "RBE-01")
def test_action_limits_a_lims_fail_and_a_test_without_limits_each_raise_what_they_call_for(plant) -> None:
    people, recipe, _lot = plant
    batch = new_batch(people, recipe)
    top, bottom = blend_samples(people, batch)
    action = post_json(people["lims"], result(top, "96.0")).json()  # in 95–105, outside 97–103
    assert (action["in_specification"], action["within_action"], action["exception_code"]) == (
        True,
        False,
        "ACTION_LIMIT",
    )
    failed = post_json(people["lims"], result(bottom, "99.0", lims_verdict="fail")).json()
    assert (failed["in_specification"], failed["exception_code"]) == (False, "LAB_OUT_OF_SPECIFICATION")
    assert "(the LIMS reports it failed)" in BatchException.objects.get(pk=failed["exception"]).message
    exceptions = BatchException.objects.filter(batch=batch).order_by("id")
    assert [(e.code, e.severity, e.blocks) for e in exceptions] == [
        ("ACTION_LIMIT", "low", False),
        ("LAB_OUT_OF_SPECIFICATION", "critical", True),
    ]
    disposition(people, [exceptions[1].pk], comment="Laboratory error confirmed by its investigation.")
    assert complete(people, batch, "blend_ipc").state == "done"


@pytest.mark.req("IPC-01", "RBE-01")
def test_a_result_the_recipe_gives_no_limits_for_is_recorded_unjudged_for_qa(plant) -> None:
    people, recipe, lot = plant
    batch = new_batch(people, recipe)
    samples = run_to_complete(people, batch, lot)
    unjudged = post_json(people["lims"], result(samples["retain"], "1.02", "g", rid="RET-1")).json()
    assert (unjudged["in_specification"], unjudged["specification"], unjudged["exception_code"]) == (
        None,
        "",
        "LAB_RESULT_NOT_JUDGED",
    )
    assert not BatchException.objects.get(pk=unjudged["exception"]).blocks


@pytest.mark.req("IPC-01", "DI-03")
def test_the_step_screen_shows_each_samples_result_or_that_it_waits_for_the_laboratory(plant, login) -> None:
    people, recipe, _lot = plant
    batch = new_batch(people, recipe)
    top, _bottom = blend_samples(people, batch)
    client = login(people["operator"])

    def results() -> list[str]:
        panel = client.get(f"/batches/{batch.number}/?step=blend_ipc").content.decode()
        return [
            " ".join(part.split("</span>", 1)[0].split(">", 1)[1].split())
            for part in panel.split('data-testid="sample-result"')[1:]
        ]

    assert results() == ["waiting for the laboratory's result"] * 2
    post_json(people["lims"], result(top, "93.5"))
    assert results() == [
        "Blend assay: 93.5 % — outside its specification",
        "waiting for the laboratory's result",
    ]
