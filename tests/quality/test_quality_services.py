"""Quality on a real database: dispositions, deviations, the completeness check and each review stage."""

from __future__ import annotations

import pytest

from batchline.audit.services import ReasonRequired
from batchline.audit.verify import verify
from batchline.execution import services as ex
from batchline.execution.models import BatchException, ExceptionDisposition
from batchline.materials.selectors import output_lot
from batchline.quality import selectors
from batchline.quality import services as q
from batchline.quality.models import Deviation, ReviewStage
from batchline.signatures.models import Signature
from batchline.signatures.services import SignatureRefused
from tests.configuration import configure
from tests.conftest import make_user
from tests.execution.test_engine import A, complete, make_plant, new_batch, run_to_weights, sign, start

pytestmark = pytest.mark.django_db


@pytest.fixture
def plant(db):
    return make_people()


def make_people():
    people, recipe = make_plant()
    people["reviewer"] = make_user("reviewer", ["qa_reviewer"])
    people["supervisor2"] = make_user("supervisor2", ["supervisor"])
    people["qp"] = make_user("qp", ["qualified_person"])
    people["engineer"] = make_user("engineer", ["administrator"])
    people["supqa"] = make_user("supqa", ["supervisor", "qa_reviewer"])
    return people, recipe


def finish(people, batch, w2="604"):
    """Run the small recipe to its end: weights (w2 as given), mean, verified by the supervisor."""
    run_to_weights(people, batch)
    complete(people, batch, "weights", entries={"w1": "598", "w2": w2}, confirm_out_of_specification=True)
    open_blocking = BatchException.objects.filter(batch=batch, blocks=True)
    if open_blocking.exists():
        disposition(people, list(open_blocking.values_list("id", flat=True)))
    start(people, batch, "mean")
    complete(people, batch, "mean")
    sup = people["supervisor"]
    ex.step_verify(actor=A(sup), user=sup, batch=batch, step_key="mean", signer=sign(sup, "verified"))
    batch.refresh_from_db()
    assert batch.state == "complete"
    return batch


def disposition(people, ids, who="reviewer", comment="Assessed: no impact on quality.", **kw):
    return q.exceptions_disposition(
        actor=A(people[who]),
        signer=sign(people[who], "approved"),
        exception_ids=ids,
        decision=kw.pop("decision", "accepted"),
        comment=comment,
        **kw,
    )


def stage(people, batch, name, who, comment=""):
    return q.review_sign(
        actor=A(people[who]),
        signer=sign(people[who], q.STAGE_MEANING[name]),
        batch=batch,
        stage=name,
        comment=comment,
    )


def codes(excinfo):
    return excinfo.value.verdict.codes


def raise_deviation(people, batch_numbers, who="reviewer", **kw):
    return q.deviation_raise(
        actor=A(people[who]),
        signer=sign(people[who], "performed"),
        title=kw.pop("title", "Granulator stopped during wet massing"),
        classification=kw.pop("classification", "major"),
        description=kw.pop("description", "The granulator tripped at 2 min; restarted after 6 min."),
        batches=batch_numbers,
        **kw,
    )


def close(people, dev):
    dev = q.deviation_transition(
        actor=A(people["reviewer"]),
        signer=sign(people["reviewer"], "reviewed"),
        deviation=dev,
        command="investigate",
    )
    dev = q.deviation_transition(
        actor=A(people["reviewer"]),
        signer=sign(people["reviewer"], "performed"),
        deviation=dev,
        command="submit",
        fields={
            "investigation": "Motor overload log read.",
            "root_cause": "Worn belt.",
            "impact": "None: massing time within limits.",
        },
    )
    return q.deviation_transition(
        actor=A(people["approver"]),
        signer=sign(people["approver"], "approved"),
        deviation=dev,
        command="close",
    )


@pytest.mark.req("DEV-01", "DEV-04", "RBE-02")
def test_a_blocking_exception_is_dispositioned_with_a_comment_by_someone_else(plant) -> None:
    people, recipe = plant
    batch = new_batch(people, recipe)
    run_to_weights(people, batch)
    complete(people, batch, "weights", entries={"w1": "598", "w2": "640"}, confirm_out_of_specification=True)
    exc = BatchException.objects.get(batch=batch, code="CRITICAL_OUT_OF_SPECIFICATION")
    assert exc.blocks and exc.type.category == "critical_value"
    batch.refresh_from_db()
    assert batch.blocking_exceptions == 1
    with pytest.raises(ReasonRequired):
        disposition(people, [exc.pk], comment="  ")
    with pytest.raises(SignatureRefused, match="do not allow you to sign as 'Approved'"):  # an operator
        disposition(people, [exc.pk], who="operator")
    with pytest.raises(q.QualityRefused) as refused:  # an engineer signs "approved" elsewhere, not this
        disposition(people, [exc.pk], who="engineer")
    assert codes(refused) == ["NOT_AUTHORISED"]
    assert not ExceptionDisposition.objects.exists()
    made = disposition(people, [exc.pk])
    assert made[0].decision == "accepted" and made[0].by == people["reviewer"]
    batch.refresh_from_db()
    assert batch.blocking_exceptions == 0
    assert (
        Signature.objects.filter(record_type="execution.exceptiondisposition", meaning="approved").count()
        == 1
    )
    with pytest.raises(q.QualityRefused) as refused:
        disposition(people, [exc.pk], who="approver")
    assert codes(refused) == ["ALREADY_DISPOSITIONED"]
    assert start(people, batch, "mean").state == "running"
    assert verify().ok


@pytest.mark.req("DEV-04")
def test_nobody_approves_their_own_exception_unless_the_plant_allows_it(plant) -> None:
    people, recipe = plant
    batch = new_batch(people, recipe)
    sup = people["supqa"]  # a supervisor who also reviews for QA
    ex.batch_command(actor=A(sup), batch=batch, command="hold", signer=sign(sup), reason="granulator alarm")
    hold = BatchException.objects.get(batch=batch, code="HOLD")
    with pytest.raises(q.QualityRefused) as refused:
        disposition(people, [hold.pk], who="supqa")
    assert codes(refused) == ["SELF_APPROVAL"]
    configure(self_approval=True)  # the change-controlled configuration, not an environment variable
    assert disposition(people, [hold.pk], who="supqa")


@pytest.mark.req("DEV-03", "RBE-03", "RBE-06", "RBE-07", "P11-13")
def test_a_batch_goes_through_review_in_order_and_is_released(plant) -> None:
    people, recipe = plant
    batch = finish(people, new_batch(people, recipe), w2="640")
    report = {c.code: c for c in selectors.completeness(batch) if not c.ok}
    # The blocking one was dispositioned to go on; the mean's, out of specification too, is open.
    assert list(report) == ["EXCEPTIONS"] and report["EXCEPTIONS"].findings == (
        "OUT_OF_SPECIFICATION: Mean weight 619.00 mg is outside its specification 582–618 mg.",
    )
    disposition(
        people,
        list(
            BatchException.objects.filter(batch=batch, disposition__isnull=True).values_list("id", flat=True)
        ),
    )
    assert all(c.ok for c in selectors.completeness(batch))
    with pytest.raises(q.QualityRefused) as refused:
        stage(people, batch, "qa_review", "reviewer")
    assert codes(refused) == ["OUT_OF_ORDER"]
    with pytest.raises(q.QualityRefused) as refused:  # a reviewer may not sign production's stage
        stage(people, batch, "production_review", "reviewer")
    assert codes(refused) == ["NOT_AUTHORISED"]
    stage(people, batch, "production_review", "supervisor")
    batch.refresh_from_db()
    assert batch.state == "in_review"
    with pytest.raises(SignatureRefused):  # a non-QA person cannot sign a release
        stage(people, batch, "released", "supervisor2")
    stage(people, batch, "qa_review", "reviewer")
    with pytest.raises(SignatureRefused):  # nor can the QA reviewer: the QA approver releases
        stage(people, batch, "released", "reviewer")
    row = stage(people, batch, "released", "approver", comment="Record reviewed by exception.")
    batch.refresh_from_db()
    assert batch.state == "qa_released"
    assert output_lot(batch.number).status == "released"  # the disposition flows to the output lot
    assert row.rules_version and all(c["ok"] for c in row.checklist)
    assert list(ReviewStage.objects.filter(batch=batch).values_list("stage", flat=True)) == [
        "production_review",
        "qa_review",
        "released",
    ]
    assert [
        s.meaning for s in Signature.objects.filter(record_type="quality.reviewstage").order_by("id")
    ] == [
        "reviewed",
        "reviewed",
        "released",
    ]
    with pytest.raises(q.QualityRefused) as refused:
        stage(people, batch, "rejected", "approver", comment="second thoughts")
    assert codes(refused) == ["ALREADY_DISPOSITIONED"]
    assert verify().ok


@pytest.mark.req("RBE-03", "DEV-03")
def test_an_open_exception_or_deviation_blocks_review_and_release(plant) -> None:
    people, recipe = plant
    batch = new_batch(people, recipe)
    ex.batch_command(
        actor=A(people["supervisor"]),
        batch=batch,
        command="hold",
        signer=sign(people["supervisor"]),
        reason="alarm",
    )
    ex.batch_command(
        actor=A(people["supervisor"]), batch=batch, command="resume", signer=sign(people["supervisor"])
    )
    batch = finish(people, batch)
    dev = raise_deviation(people, [batch.number], lots=["PCM-L0101"])
    assert dev.number.startswith("DEV-") and dev.number.endswith("-0001") and dev.state == "open"
    with pytest.raises(q.QualityRefused) as refused:
        stage(people, batch, "production_review", "supervisor")
    assert set(codes(refused)) == {"INCOMPLETE_EXCEPTIONS", "INCOMPLETE_DEVIATIONS"}
    assert "HOLD: Batch held: alarm" in str(refused.value) and dev.number in str(refused.value)
    assert not ReviewStage.objects.exists()
    disposition(people, list(BatchException.objects.filter(batch=batch).values_list("id", flat=True)))
    with pytest.raises(q.QualityRefused) as refused:
        stage(people, batch, "production_review", "supervisor")
    assert codes(refused) == ["INCOMPLETE_DEVIATIONS"]
    close(people, dev)
    late = BatchException.objects.filter(batch=batch).first()
    with pytest.raises(q.QualityRefused) as refused:  # nothing is escalated to a closed deviation
        disposition(people, [late.pk], who="approver", decision="deviation", deviation_number=dev.number)
    assert codes(refused) == ["DEVIATION_CLOSED"]
    stage(people, batch, "production_review", "supervisor")
    stage(people, batch, "qa_review", "reviewer")
    stage(people, batch, "released", "approver")


@pytest.mark.req("DEV-03")
def test_a_deviation_is_investigated_submitted_and_closed_by_another_person_each_step_signed(plant) -> None:
    people, recipe = plant
    batch = new_batch(people, recipe)
    with pytest.raises(q.QualityRefused) as refused:
        raise_deviation(people, [batch.number], title="", classification="huge")
    assert set(codes(refused)) == {"TITLE_REQUIRED", "CLASSIFICATION"}
    with pytest.raises(q.QualityRefused) as refused:
        raise_deviation(people, ["NO-SUCH"])
    assert codes(refused) == ["NO_SUCH_BATCH"]
    assert not Deviation.objects.exists()
    dev = raise_deviation(people, [batch.number], who="operator", equipment=["GRAN-01"])
    assert {(lk.batch_number, lk.equipment_code) for lk in dev.links.all()} == {
        (batch.number, ""),
        ("", "GRAN-01"),
    }
    with pytest.raises(q.QualityRefused) as refused:
        q.deviation_transition(
            actor=A(people["reviewer"]), signer=sign(people["reviewer"]), deviation=dev, command="close"
        )
    assert codes(refused) == ["ILLEGAL_TRANSITION"]
    dev = q.deviation_transition(
        actor=A(people["reviewer"]),
        signer=sign(people["reviewer"], "reviewed"),
        deviation=dev,
        command="investigate",
    )
    with pytest.raises(q.QualityRefused) as refused:
        q.deviation_transition(
            actor=A(people["reviewer"]),
            signer=sign(people["reviewer"]),
            deviation=dev,
            command="submit",
            fields={"investigation": "Read the logs."},
        )
    assert codes(refused) == ["INVESTIGATION_INCOMPLETE"] and "root cause" in str(refused.value)
    dev.refresh_from_db()
    assert dev.state == "investigation" and dev.investigation == ""
    dev = q.deviation_transition(
        actor=A(people["approver"]),
        signer=sign(people["approver"]),
        deviation=dev,
        command="submit",
        fields={
            "investigation": "Logs read.",
            "root_cause": "Worn belt.",
            "impact": "None.",
            "capa_reference": "CAPA-7",
        },
    )
    with pytest.raises(q.QualityRefused) as refused:  # who submitted does not approve
        q.deviation_transition(
            actor=A(people["approver"]),
            signer=sign(people["approver"], "approved"),
            deviation=dev,
            command="close",
        )
    assert codes(refused) == ["SAME_PERSON"]
    with pytest.raises(ReasonRequired):
        q.deviation_transition(
            actor=A(people["approver"]), signer=sign(people["approver"]), deviation=dev, command="return"
        )
    people["approver2"] = make_user("approver2", ["qa_approver"])
    dev = q.deviation_transition(
        actor=A(people["approver2"]),
        signer=sign(people["approver2"], "approved"),
        deviation=dev,
        command="close",
    )
    assert dev.state == "closed" and dev.closed_at is not None and dev.capa_reference == "CAPA-7"
    assert Signature.objects.filter(record_type="quality.deviation").count() == 4
    assert verify().ok


@pytest.mark.req("RBE-06", "RBE-07", "A11-19")
def test_with_qp_certification_configured_the_qualified_person_certifies_before_release(plant) -> None:
    people, recipe = plant
    batch = finish(people, new_batch(people, recipe))
    configure(qp_certification=True)
    stage(people, batch, "production_review", "supervisor")
    stage(people, batch, "qa_review", "reviewer")
    with pytest.raises(q.QualityRefused) as refused:
        stage(people, batch, "released", "approver")
    assert codes(refused) == ["OUT_OF_ORDER"]
    with pytest.raises(SignatureRefused):  # only the qualified person certifies
        stage(people, batch, "qp_certification", "approver")
    stage(people, batch, "qp_certification", "qp")
    stage(people, batch, "released", "approver")
    assert Signature.objects.filter(record_type="quality.reviewstage", meaning="certified").count() == 1


@pytest.mark.req("RBE-07")
def test_a_rejection_needs_a_reason_and_ends_the_batch(plant) -> None:
    people, recipe = plant
    batch = new_batch(people, recipe)
    with pytest.raises(q.QualityRefused) as refused:  # still running: not ended
        stage(people, batch, "rejected", "approver", comment="contaminated")
    assert "NOT_ENDED" in codes(refused)
    batch = finish(people, batch)
    with pytest.raises(ReasonRequired):
        stage(people, batch, "rejected", "approver")
    stage(people, batch, "rejected", "approver", comment="Foreign particles found in the blend sample.")
    batch.refresh_from_db()
    assert batch.state == "rejected"
    assert output_lot(batch.number).status == "rejected"


@pytest.mark.req("RBE-07")
def test_an_output_lot_is_released_only_by_its_batchs_release(plant) -> None:
    from batchline.materials import services as stock
    from batchline.materials.services import MaterialRefused

    people, recipe = plant
    batch = finish(people, new_batch(people, recipe))
    lot = output_lot(batch.number)
    with pytest.raises(MaterialRefused) as refused:
        stock.lot_disposition(
            actor=A(people["approver"]),
            lot=lot,
            status="released",
            signer=sign(people["approver"], "released"),
            reason="looks fine",
        )
    assert codes(refused) == ["RELEASED_BY_ITS_BATCH"]
    lot.refresh_from_db()
    assert lot.status == "quarantine"


@pytest.mark.req("RBE-06")
def test_each_stage_is_signed_by_another_person(plant) -> None:
    people, recipe = plant
    batch = finish(people, new_batch(people, recipe))
    stage(people, batch, "production_review", "supervisor")
    stage(people, batch, "qa_review", "approver")  # the QA approver may review for QA…
    with pytest.raises(q.QualityRefused) as refused:  # …but then not also release the same batch
        stage(people, batch, "released", "approver")
    assert codes(refused) == ["SAME_REVIEWER"]
    people["approver2"] = make_user("approver2", ["qa_approver"])
    stage(people, batch, "released", "approver2")


@pytest.mark.req("DEV-03")
def test_a_blank_root_cause_does_not_pass_for_one(plant) -> None:
    people, recipe = plant
    batch = new_batch(people, recipe)
    dev = raise_deviation(people, [batch.number])
    dev = q.deviation_transition(
        actor=A(people["reviewer"]),
        signer=sign(people["reviewer"], "reviewed"),
        deviation=dev,
        command="investigate",
    )
    with pytest.raises(q.QualityRefused) as refused:
        q.deviation_transition(
            actor=A(people["reviewer"]),
            signer=sign(people["reviewer"]),
            deviation=dev,
            command="submit",
            fields={"investigation": "Logs read.", "root_cause": "   ", "impact": "None."},
        )
    assert codes(refused) == ["INVESTIGATION_INCOMPLETE"] and "root cause" in str(refused.value)
