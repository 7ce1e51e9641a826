"""What master data controls once it is in use: retired items refused, intervals that set due dates,
and retirements that would break a recipe refused (MBR-04)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import transaction
from django.utils import timezone

from batchline.approvals import services as approvals
from batchline.audit.services import Actor, record_create
from batchline.equipment import services as svc
from batchline.masterdata.services import master_change, master_retire
from batchline.recipes.models import MasterRecipe, Product
from batchline.training import services as training
from tests.configuration.test_configuration import signer
from tests.conftest import SETUP, make_user
from tests.equipment.test_equipment_services import A, claim, make_equipment_plant, refused_codes, unit
from tests.masterdata.test_master_data import MATERIAL, approve, request_new

pytestmark = pytest.mark.django_db


@pytest.fixture
def equipment_plant(db):
    plant = make_equipment_plant()
    plant["people"] |= {
        "admin": make_user("admin", ["administrator"]),
        "qa": make_user("qa", ["qa_approver"]),
    }
    return plant


def retire(user, kind, code, reason="scrapped after the 2026 audit"):
    return master_retire(
        actor=Actor.of(user, via="web"), signer=signer(user, "requested"), kind=kind, code=code, reason=reason
    )


def gmp_change(user, kind, code, values):
    outcome = master_change(
        actor=Actor.of(user, via="web"),
        signer=signer(user, "requested"),
        kind=kind,
        code=code,
        values=values,
        reason="PM plan 2027",
    )
    assert outcome.request is not None
    return outcome.request


@pytest.mark.req("EQ-01", "A11-14")
def test_a_retired_unit_is_never_claimed_again_and_keeps_its_logbook(equipment_plant) -> None:
    people = equipment_plant["people"]
    claim(equipment_plant)
    svc.equipment_release(actor=A(people["operator"]), code="GRAN-01", batch_number="B-1")
    approve(people["qa"], retire(people["admin"], "equipment", "GRAN-01"))
    svc.cleaning_start(actor=A(people["operator"]), code="GRAN-01")
    svc.cleaning_end(actor=A(people["operator"]), code="GRAN-01", text="final clean")
    codes = refused_codes(
        svc.equipment_claim, actor=A(people["operator"]), code="GRAN-01", batch_number="B-2", product="P"
    )
    assert codes == ["EQUIPMENT_RETIRED"]
    assert unit("GRAN-01").logbook.filter(batch_number="B-1").exists()


@pytest.mark.req("EQ-04", "A11-14")
def test_a_calibration_and_a_maintenance_set_their_next_due_date_from_the_class_interval(
    equipment_plant,
) -> None:
    people = equipment_plant["people"]
    approve(
        people["qa"],
        gmp_change(people["admin"], "equipment_class", "scale", {"calibration_interval_days": 90}),
    )
    approve(
        people["qa"],
        gmp_change(people["admin"], "equipment_class", "granulator", {"maintenance_interval_days": 180}),
    )
    before = timezone.now()
    svc.calibration_record(
        actor=A(people["engineer"]),
        code="SCALE-01",
        passed=True,
        next_due=None,
        signer=signer(people["engineer"], "performed"),
    )
    due = unit("SCALE-01").calibration_due_at
    assert before + dt.timedelta(days=90) <= due <= timezone.now() + dt.timedelta(days=90)
    svc.maintenance_start(actor=A(people["engineer"]), code="GRAN-01", reason="PM")
    svc.maintenance_end(actor=A(people["engineer"]), code="GRAN-01", text="bearings replaced")
    assert unit("GRAN-01").maintenance_due_at >= before + dt.timedelta(days=180)


@pytest.mark.req("TRN-01", "A11-14")
def test_training_lapses_after_the_qualifications_retraining_interval(plant) -> None:
    people, _site = plant
    admin, approver = people["admin"], people["qa_approver"]
    values = {
        "code": "SOP-DISP-001",
        "title": "Dispensing",
        "kind": "sop",
        "version": "2",
        "retrain_interval_days": "365",
    }
    approve(approver, request_new(admin, "qualification", values))
    trained = timezone.now() - dt.timedelta(days=1)
    record = training.training_record_add(
        actor=Actor.of(approver, via="web"),
        user=people["operator"],
        code="SOP-DISP-001",
        trained_at=trained,
        reason="session 4",
    )
    assert (record.version, record.expires_at) == (2, trained + dt.timedelta(days=365))
    approve(approver, retire(admin, "qualification", "SOP-DISP-001", reason="merged into SOP-DISP-002"))
    with pytest.raises(training.Refused, match="retired in the master data"):
        training.training_record_add(
            actor=Actor.of(approver, via="web"),
            user=people["operator2"],
            code="SOP-DISP-001",
            trained_at=trained,
            reason="s",
        )


@pytest.mark.req("MBR-04", "A11-14")
def test_what_an_approved_or_effective_recipe_names_cannot_be_retired(plant) -> None:
    people, _site = plant
    admin, approver = people["admin"], people["qa_approver"]
    approve(approver, request_new(admin, "material", MATERIAL))
    approve(
        approver, request_new(admin, "product", {"code": "PCM-500", "name": "Paracetamol 500 mg tablets"})
    )
    document = {
        "procedure": [
            {"key": "disp", "steps": [{"key": "w1", "material": {"code": "LAC-200", "quantity": "1"}}]}
        ]
    }
    with transaction.atomic():
        record_create(
            MasterRecipe(
                product=Product.objects.get(code="PCM-500"),
                code="PCM-500",
                version=3,
                name="Paracetamol",
                status="effective",
                nominal_quantity=1,
                nominal_unit="kg",
                document=document,
                author=people["admin"],
                created_at=timezone.now(),
            ),
            actor=SETUP,
        )
    for kind, code in (("material", "LAC-200"), ("product", "PCM-500")):
        with pytest.raises(
            approvals.ChangeRefused, match="is named by recipe PCM-500 v3: retire or revise that recipe first"
        ):
            retire(admin, kind, code)


@pytest.mark.req("TRN-01", "P11-09")
def test_a_role_curriculum_is_enforced_when_its_holder_starts_a_step(db) -> None:
    from batchline.execution import services as ex
    from tests.execution.test_engine import make_plant, new_batch

    people, recipe = make_plant()
    admin = make_user("admin", ["administrator"])
    sop = {"code": "SOP-GMP-001", "title": "GMP basics", "kind": "sop", "version": "1", "roles": "operator"}
    approve(people["approver"], request_new(admin, "qualification", sop))
    batch = new_batch(people, recipe)
    first = batch.steps.order_by("seq").first()
    with pytest.raises(ex.ExecutionRefused) as refused:
        ex.step_start(actor=A(people["operator"]), user=people["operator"], batch=batch, step_key=first.key)
    assert refused.value.verdict.codes == ["CURRICULUM_INCOMPLETE"]
    assert "It is in the curriculum of your role." in refused.value.verdict.reasons[0].message
    training.training_record_add(
        actor=A(people["approver"]),
        user=people["operator"],
        code="SOP-GMP-001",
        trained_at=timezone.now() - dt.timedelta(hours=1),
        reason="induction",
    )
    ex.step_start(actor=A(people["operator"]), user=people["operator"], batch=batch, step_key=first.key)
