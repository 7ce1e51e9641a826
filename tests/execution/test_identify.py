"""The equipment identification step and the qualification gate, through the engine on a real database."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from batchline.audit.services import record_create
from batchline.audit.verify import verify
from batchline.equipment import services as eq
from batchline.equipment.models import Equipment, LogbookEntry, Site
from batchline.execution import services as ex
from batchline.execution.models import BatchException, BatchStep
from batchline.training import services as training
from tests.conftest import appends_at_the_end, entries, make_user
from tests.execution.test_engine import A, effective_recipe, new_batch, sign, start

pytestmark = pytest.mark.django_db

RECIPE = """
format: batchline.recipe/1
recipe: {code: EQP-1, name: Equipment test, product_code: EQP, product_name: Equipment test tablets, batch_size: {quantity: 100, unit: kg}}
operations:
  - key: granulation
    name: Granulation
    steps:
      - key: granulator
        kind: equipment_id
        title: Identify the granulator
        equipment_class: GRAN
      - key: granulate
        kind: instruction
        title: Granulate
        qualification: SOP-GRAN-001
"""


@pytest.fixture
def plant(db):
    people = {
        "author": make_user("author", ["recipe_author"]),
        "approver": make_user("approver", ["qa_approver"]),
        "supervisor": make_user("supervisor", ["supervisor"]),
        "operator": make_user("operator", ["operator"]),
        "operator2": make_user("operator2", ["operator"]),
        "engineer": make_user("engineer", ["administrator"]),
    }
    recipe = effective_recipe(people, RECIPE)
    engineer = A(people["engineer"])
    with transaction.atomic():
        site = record_create(Site(code="s1", name="Site 1"), actor=engineer)
    gran = eq.equipment_class_create(actor=engineer, code="GRAN", name="Granulator", clean_hold_hours=72)
    mill = eq.equipment_class_create(actor=engineer, code="MILL", name="Mill")
    for code, cls in (("GRAN-01", gran), ("GRAN-02", gran), ("MILL-01", mill)):
        eq.equipment_create(actor=engineer, site=site, code=code, name=code, equipment_class=cls)
        eq.cleaning_start(actor=A(people["operator"]), code=code)
        eq.cleaning_end(actor=A(people["operator"]), code=code)
    training.qualification_create(actor=A(people["approver"]), code="SOP-GRAN-001", title="Granulation")
    training.training_record_add(
        actor=A(people["approver"]),
        user=people["operator"],
        code="SOP-GRAN-001",
        trained_at=timezone.now() - dt.timedelta(days=10),
        expires_at=timezone.now() + dt.timedelta(days=300),
        reason="classroom training",
    )
    return people, recipe


def scan(people, batch, text, who="operator"):
    return ex.step_scan(actor=A(people[who]), user=people[who], batch=batch, step_key="granulator", scan=text)


@pytest.mark.req("EQ-01", "EQ-05", "LOG-02", "P11-06")
def test_the_scanned_unit_is_claimed_for_the_batch_and_released_dirty_when_it_ends(plant) -> None:
    people, recipe = plant
    batch = new_batch(people, recipe, quantity="100")
    start(people, batch, "granulator")
    with pytest.raises(ex.ExecutionRefused) as wrong:
        scan(people, batch, "EQ:MILL-01")
    assert wrong.value.verdict.codes == ["WRONG_EQUIPMENT_CLASS"]
    with pytest.raises(ex.ExecutionRefused) as early:
        ex.step_complete(
            actor=A(people["operator"]), user=people["operator"], batch=batch, step_key="granulator"
        )
    assert "EQUIPMENT_NOT_IDENTIFIED" in early.value.verdict.codes
    scan(people, batch, "EQ:GRAN-01")
    assert Equipment.objects.get(code="GRAN-01").status == "in_use"
    other = new_batch(people, recipe, number="B-002", quantity="100")
    start(people, other, "granulator", who="operator2")
    with pytest.raises(ex.ExecutionRefused) as busy:
        ex.step_scan(
            actor=A(people["operator2"]),
            user=people["operator2"],
            batch=other,
            step_key="granulator",
            scan="GRAN-01",
        )
    assert busy.value.verdict.codes == ["EQUIPMENT_BUSY"]
    assert BatchException.objects.filter(batch=other, code="REFUSED_EQUIPMENT_BUSY").exists()
    ex.step_complete(actor=A(people["operator"]), user=people["operator"], batch=batch, step_key="granulator")
    start(people, batch, "granulate")
    ex.step_complete(actor=A(people["operator"]), user=people["operator"], batch=batch, step_key="granulate")
    batch.refresh_from_db()
    assert batch.state == "complete"
    unit = Equipment.objects.get(code="GRAN-01")
    assert unit.status == "dirty" and unit.current_batch is None
    kinds = list(LogbookEntry.objects.filter(equipment=unit).order_by("id").values_list("kind", flat=True))
    assert kinds[-2:] == ["use_start", "use_end"]
    assert verify().ok


@pytest.mark.req("TRN-01", "P11-09", "P11-06")
def test_a_step_that_needs_a_qualification_refuses_that_person_only(plant) -> None:
    people, recipe = plant
    batch = new_batch(people, recipe, quantity="100")
    start(people, batch, "granulator")
    scan(people, batch, "EQ:GRAN-02")
    ex.step_complete(actor=A(people["operator"]), user=people["operator"], batch=batch, step_key="granulator")
    with pytest.raises(ex.ExecutionRefused) as refused:
        start(people, batch, "granulate", who="operator2")
    assert refused.value.verdict.codes == ["QUALIFICATION_MISSING"]
    assert BatchStep.objects.get(batch=batch, key="granulate").state == "pending"
    assert BatchException.objects.filter(
        batch=batch, code="REFUSED_QUALIFICATION_MISSING", user=people["operator2"]
    ).exists()
    start(people, batch, "granulate")  # the trained operator may
    assert BatchStep.objects.get(batch=batch, key="granulate").state == "running"


@pytest.mark.req("EQ-01", "WD-10")
def test_an_aborted_batch_releases_its_equipment_dirty(plant) -> None:
    people, recipe = plant
    batch = new_batch(people, recipe, quantity="100")
    start(people, batch, "granulator")
    scan(people, batch, "GRAN-01")
    ex.batch_command(
        actor=A(people["supervisor"]),
        batch=batch,
        command="abort",
        signer=sign(people["supervisor"]),
        reason="granulator leak",
    )
    assert Equipment.objects.get(code="GRAN-01").status == "dirty"


@pytest.mark.req("P11-05", "LOG-02")
def test_a_claim_in_its_savepoint_appends_its_entries_with_the_scans_at_the_end(plant) -> None:
    # equipment_claim opens a savepoint inside the scan's transaction; its entries (status, logbook)
    # are appended with the step value's, in the order made, after every write.
    people, recipe = plant
    batch = new_batch(people, recipe, quantity="100")
    start(people, batch, "granulator")
    last = entries()[-1].pk
    with CaptureQueriesContext(connection) as ran:
        value = scan(people, batch, "EQ:GRAN-01")
    appends_at_the_end(ran.captured_queries)
    assert any("SAVEPOINT" in q["sql"] for q in ran.captured_queries)
    unit = Equipment.objects.get(code="GRAN-01")
    line = LogbookEntry.objects.filter(equipment=unit).latest("id")
    assert [(e.action, e.record_type, e.record_id) for e in entries(pk__gt=last)] == [
        ("claim", "equipment.equipment", str(unit.pk)),
        ("create", "equipment.logbookentry", str(line.pk)),
        ("create", "execution.stepvalue", str(value.pk)),
    ]
    assert verify().ok


@pytest.mark.req("P11-05", "P11-06")
def test_a_refused_claim_writes_only_its_refusal(plant) -> None:
    people, recipe = plant
    batch = new_batch(people, recipe, quantity="100")
    start(people, batch, "granulator")
    last = entries()[-1].pk
    with pytest.raises(ex.ExecutionRefused):
        scan(people, batch, "EQ:MILL-01")
    refusal = BatchException.objects.get(batch=batch, code="REFUSED_WRONG_EQUIPMENT_CLASS")
    assert [(e.action, e.record_type, e.record_id) for e in entries(pk__gt=last)] == [
        ("create", "execution.batchexception", str(refusal.pk))
    ]
    assert Equipment.objects.get(code="MILL-01").status == "clean"
    assert verify().ok
