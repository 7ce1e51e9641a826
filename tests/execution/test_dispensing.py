"""Weigh and dispense through the engine, against the MT-SICS scale simulator over real TCP."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from batchline.audit.services import ReasonRequired, record_create
from batchline.audit.verify import verify
from batchline.devices.scale_sim import Fault
from batchline.equipment import services as eq
from batchline.equipment.models import Site
from batchline.execution import services as ex
from batchline.execution.models import BatchException, BatchStep, StepValue
from batchline.materials import services as stock
from batchline.materials.models import Container, LedgerEntry
from batchline.signatures.services import signer_authenticate
from tests.conftest import PASSWORD, appends_at_the_end, entries, make_user
from tests.execution.test_engine import A, effective_recipe, new_batch, sign, start
from tests.materials.test_charging import receive
from tests.signatures.test_signing import station

pytestmark = pytest.mark.django_db

RECIPE = """
format: batchline.recipe/1
recipe: {code: WD-1, name: Dispense test, product_code: WD, product_name: Dispense test 500 mg, batch_size: {quantity: 100, unit: kg}}
operations:
  - key: dispensing
    name: Dispensing
    steps:
      - key: disp_api
        kind: weigh_dispense
        title: Dispense paracetamol
        verify: true
        material: {code: PCM, quantity: 2, unit: kg, tolerance_percent: 1, potency_adjust: true}
      - key: disp_starch
        kind: weigh_dispense
        title: Dispense maize starch
        material: {code: STARCH, quantity: 1, unit: kg, tolerance_percent: 1, compensates: disp_api}
"""


def make_dispensing_plant(sim, recipe_text: str = RECIPE):
    """People, a scale on the simulator (and one overdue), paracetamol at 98 %, a released batch."""
    people = {
        "author": make_user("author", ["recipe_author"]),
        "approver": make_user("approver", ["qa_approver"]),
        "supervisor": make_user("supervisor", ["supervisor"]),
        "operator": make_user("operator", ["operator"]),
        "operator2": make_user("operator2", ["operator"]),
        "warehouse": make_user("warehouse", ["warehouse"]),
        "engineer": make_user("engineer", ["administrator"]),
    }
    recipe = effective_recipe(people, recipe_text)
    engineer = A(people["engineer"])
    with transaction.atomic():
        site = record_create(Site(code="s1", name="Site 1"), actor=engineer)
    scales = eq.equipment_class_create(actor=engineer, code="scale", name="Scale", is_scale=True)
    for code, due in (("SCALE-01", 30), ("SCALE-09", -1)):
        eq.equipment_create(
            actor=engineer,
            site=site,
            code=code,
            name=code,
            equipment_class=scales,
            host="127.0.0.1",
            port=sim.port,
            capacity=Decimal(6200),
            minimum_weight=Decimal("0.5"),
            unit="g",
            calibration_due_at=timezone.now() + dt.timedelta(days=due),
        )
        eq.scale_check_record(actor=A(people["operator"]), code=code, passed=True)
    material = stock.material_create(
        actor=A(people["warehouse"]), code="PCM", name="Paracetamol", kind="api", unit="kg"
    )
    receive(people, material, "L-1", containers=("25",), potency=Decimal("98"))  # C-000001
    starch = stock.material_create(
        actor=A(people["warehouse"]), code="STARCH", name="Maize starch", kind="excipient", unit="kg"
    )
    receive(people, starch, "S-1", containers=("25",))  # C-000002
    return people, new_batch(people, recipe, quantity="100")


@pytest.fixture
def plant(db, sim):
    people, batch = make_dispensing_plant(sim)
    start(people, batch, "disp_api")
    return people, batch, sim


def label_weighed(people, batch, key, who="operator"):
    """Print the label of every container the weighing ``key`` filled (a weighing completes labelled)."""
    from batchline.execution import recording

    for code in Container.objects.filter(
        dispensed_for=batch.number, ledger__step_key=key, ledger__kind="dispense", ledger__quantity__gt=0
    ).values_list("code", flat=True):
        recording.dispensed_label_print(actor=A(people[who]), batch=batch, code=code)


def witness(people):
    """The supervisor confirms a hand-typed weight at the operator's station."""
    return signer_authenticate(
        request=station(people["operator"]),
        username="supervisor",
        password=PASSWORD,
        meaning="verified",
        witness=True,
    )


def dispense(people, batch, who="operator", **kw):
    args = {"source": "C-000001", "scale": "SCALE-01", **kw}
    return ex.step_dispense(actor=A(people[who]), user=people[who], batch=batch, step_key="disp_api", **args)


@pytest.mark.req("WD-01", "WD-03", "WD-04", "WD-08", "DI-04", "GEN-01")
def test_a_stable_reading_in_tolerance_is_dispensed_into_a_new_container_and_verified_by_another(
    plant,
) -> None:
    people, batch, sim = plant
    # Target 2 kg at 98 % potency: 2.0408 kg, ± 1 % → 2020.4–2061.2 g.
    sim.place("2041.0")
    value = dispense(people, batch)
    assert value.number == Decimal("2.041") and value.unit == "kg"
    new = Container.objects.get(dispensed_for=batch.number)
    assert new.quantity == Decimal("2.041") and new.source.code == "C-000001"
    assert Container.objects.get(code="C-000001").quantity == Decimal("22.959")
    moves = list(LedgerEntry.objects.filter(kind="dispense").order_by("id"))
    assert [(m.container.code, m.quantity, m.device) for m in moves] == [
        ("C-000001", Decimal("-2.041"), "SCALE-01 #SIM-0042"),
        (new.code, Decimal("2.041"), "SCALE-01 #SIM-0042"),
    ]
    label_weighed(people, batch, "disp_api")
    ex.step_complete(actor=A(people["operator"]), user=people["operator"], batch=batch, step_key="disp_api")
    ex.step_verify(
        actor=A(people["supervisor"]),
        user=people["supervisor"],
        batch=batch,
        step_key="disp_api",
        signer=sign(people["supervisor"], "verified"),
    )
    assert BatchStep.objects.get(batch=batch, key="disp_api").state == "done"
    assert verify().ok


@pytest.mark.req("WD-03", "WD-02", "WD-01", "A11-05")
@pytest.mark.parametrize(
    ("setup", "kw", "code"),
    [
        (lambda sim: sim.place("2100"), {}, "OUT_OF_TOLERANCE"),
        (lambda sim: sim.place("1990"), {}, "OUT_OF_TOLERANCE"),
        (lambda sim: sim.place("2041"), {"scale": "SCALE-09"}, "CALIBRATION_OVERDUE"),
        (lambda sim: sim.place("7000"), {}, "SCALE_OVERLOAD"),
        (lambda sim: (sim.place("2041"), sim.inject(Fault.SILENCE, 3)), {}, "SCALE_TIMEOUT"),
        (lambda sim: (sim.place("2041"), sim.inject(Fault.GARBAGE, 3)), {}, "SCALE_PROTOCOL"),
        (lambda sim: sim.place("2041"), {"source": "C-999999"}, "UNKNOWN_CONTAINER"),
    ],
)
def test_refused_weighings_move_nothing_and_are_recorded(plant, setup, kw, code) -> None:
    people, batch, sim = plant
    setup(sim)
    ledger = LedgerEntry.objects.count()
    with pytest.raises(ex.ExecutionRefused) as refused:
        dispense(people, batch, **kw)
    assert any(c.startswith(code) for c in refused.value.verdict.codes), refused.value.verdict.codes
    assert LedgerEntry.objects.count() == ledger and not StepValue.objects.filter(step__batch=batch).exists()
    assert BatchException.objects.filter(batch=batch, code__startswith="REFUSED_").exists()


@pytest.mark.req("WD-09", "A11-08")
def test_a_weight_typed_by_hand_needs_a_reason_and_a_witness_and_raises_an_exception(plant) -> None:
    people, batch, _sim = plant
    with pytest.raises(ex.ExecutionRefused) as alone:
        dispense(people, batch, manual_weight="2.04", manual_unit="kg", reason="")
    assert set(alone.value.verdict.codes) == {"REASON_REQUIRED", "WITNESS_REQUIRED"}
    confirmed = witness(people)
    value = dispense(
        people,
        batch,
        manual_weight="2.04",
        manual_unit="kg",
        reason="scale display broken",
        witness=confirmed,
    )
    assert value.reason == "scale display broken"
    exc = BatchException.objects.get(batch=batch, code="MANUAL_WEIGHT_ENTRY")
    assert exc.severity == "medium" and "scale display broken" in exc.message
    assert LedgerEntry.objects.filter(kind="dispense", device="manual").count() == 2


@pytest.mark.req("A11-05", "WD-01")
@pytest.mark.parametrize("weight", ["0", "-2", "two", "1e40", "2,040", "NaN", "-0", "9" * 30])
def test_a_manual_weight_that_is_not_a_positive_number_is_refused(plant, weight) -> None:
    people, batch, _sim = plant
    with pytest.raises(Exception) as refused:
        dispense(
            people,
            batch,
            manual_weight=weight,
            manual_unit="kg",
            reason="x",
            witness=witness(people),
        )
    assert "Refused" in type(refused.value).__name__
    assert not LedgerEntry.objects.filter(kind="dispense").exists()


@pytest.mark.req("WD-09", "DI-05")
def test_a_weight_typed_by_hand_is_read_in_the_sites_notation_and_kept_as_typed(plant) -> None:
    from tests.conftest import configure

    people, batch, _sim = plant
    with pytest.raises(ex.ExecutionRefused) as refused:
        dispense(people, batch, manual_weight="2,040", manual_unit="kg", reason="x", witness=witness(people))
    assert "2,040: did you mean 2.040 or 2040?" in str(refused.value)
    configure(decimal_separator="comma")
    value = dispense(
        people,
        batch,
        manual_weight="2,040",
        manual_unit="kg",
        reason="display broken",
        witness=witness(people),
    )
    assert (value.text, value.number, value.unit) == ("2,040", Decimal("2.04"), "kg")


@pytest.mark.req("WD-01", "A11-05")
def test_a_weight_in_a_unit_that_is_not_a_mass_is_refused(plant) -> None:
    people, batch, _sim = plant
    with pytest.raises(ex.ExecutionRefused) as refused:
        dispense(
            people,
            batch,
            manual_weight="2",
            manual_unit="L",
            reason="x",
            witness=witness(people),
        )
    assert refused.value.verdict.codes == ["WRONG_UNIT"]


@pytest.mark.req("MAT-04", "WD-05")
def test_a_lot_other_than_the_first_to_expire_needs_a_reason_and_is_an_exception(plant) -> None:
    people, batch, sim = plant
    material = stock.Material.objects.get(code="PCM")
    receive(
        people,
        material,
        "L-SOON",
        containers=("25",),
        potency=Decimal("98"),
        expires_in=dt.timedelta(days=30),
    )
    sim.place("2041.0")
    with pytest.raises(ex.ExecutionRefused) as refused:
        dispense(people, batch)  # C-000001 (lot L-1) expires after L-SOON's C-000003
    assert refused.value.verdict.codes == ["FEFO_REASON_REQUIRED"]
    assert "Lot L-SOON expires first (container C-000003)" in refused.value.verdict.reasons[0].message
    dispense(people, batch, other_lot_reason="L-SOON is on hold for sampling")
    exc = BatchException.objects.get(batch=batch, code="FEFO_OVERRIDE")
    assert "L-SOON is on hold for sampling" in exc.message


@pytest.mark.req("WD-07", "LBL-02")
def test_the_dispensed_container_label_names_the_batch_and_a_reprint_needs_a_reason(plant, client) -> None:
    people, batch, sim = plant
    sim.place("2041.0")
    value = dispense(people, batch)
    code = value.label.split()[2]
    client.force_login(people["operator"])
    first = client.post(f"/batches/{batch.number}/containers/{code}/label.pdf")
    assert first.status_code == 200 and first.content.startswith(b"%PDF")
    assert client.post(f"/batches/{batch.number}/containers/{code}/label.pdf").status_code == 422
    again = client.post(f"/batches/{batch.number}/containers/{code}/label.pdf", {"reason": "label smudged"})
    assert again.status_code == 200
    assert list(stock.LabelPrint.objects.values_list("reprint", flat=True)) == [False, True]
    assert client.post(f"/batches/{batch.number}/containers/C-000001/label.pdf").status_code == 404


@pytest.mark.req("WD-04")
def test_the_filler_gives_way_to_what_the_potency_adjusted_api_needed(plant) -> None:
    people, batch, sim = plant
    sim.place("2041.0")  # 2 kg at 98 %: 41 g above nominal
    dispense(people, batch)
    label_weighed(people, batch, "disp_api")
    ex.step_complete(actor=A(people["operator"]), user=people["operator"], batch=batch, step_key="disp_api")
    sup = people["supervisor"]
    ex.step_verify(actor=A(sup), user=sup, batch=batch, step_key="disp_api", signer=sign(sup, "verified"))
    start(people, batch, "disp_starch")
    sim.place("1000.0")  # the uncompensated target is now out: 959 g ± 1 % (949.41–968.59 g)
    with pytest.raises(ex.ExecutionRefused) as refused:
        ex.step_dispense(
            actor=A(people["operator"]),
            user=people["operator"],
            batch=batch,
            step_key="disp_starch",
            source="C-000002",
            scale="SCALE-01",
        )
    assert "the target is 0.959 kg" in refused.value.verdict.reasons[0].message
    sim.place("959.0")
    value = ex.step_dispense(
        actor=A(people["operator"]),
        user=people["operator"],
        batch=batch,
        step_key="disp_starch",
        source="C-000002",
        scale="SCALE-01",
    )
    assert value.number == Decimal("0.959")


@pytest.mark.req("MAT-04")
def test_the_booth_asks_for_its_proposal_outside_the_screen_cache(plant, client) -> None:
    people, batch, _sim = plant
    client.force_login(people["operator"])
    panel = client.get(f"/batches/{batch.number}/?step=disp_api").content.decode()
    assert f"/batches/{batch.number}/steps/disp_api/proposal/" in panel
    proposal = client.get(f"/batches/{batch.number}/steps/disp_api/proposal/").content.decode()
    assert "C-000001" in proposal and "lot L-1" in proposal
    assert client.get(f"/batches/{batch.number}/steps/nope/proposal/").status_code == 404


@pytest.mark.req("P11-05", "WD-09")
def test_a_witnessed_weighing_appends_its_entries_together_after_its_writes(plant) -> None:
    # New container, two ledger entries, both quantities, the value, the witness's signature and
    # the exception: made in that order, appended in one call after the last of them.
    people, batch, _sim = plant
    confirmed = witness(people)
    last = entries()[-1].pk
    with CaptureQueriesContext(connection) as ran:
        value = dispense(
            people, batch, manual_weight="2.04", manual_unit="kg", reason="display broken", witness=confirmed
        )
    appends_at_the_end(ran.captured_queries)
    made = [(e.record_type, e.action) for e in entries(pk__gt=last)]
    assert made[0] == ("materials.container", "create")
    assert ("execution.stepvalue", "create") in made and made[-1] == ("execution.batchexception", "create")
    assert entries(pk__gt=last)[-1].record_id == str(
        BatchException.objects.get(value=value, code="MANUAL_WEIGHT_ENTRY").pk
    )
    assert verify().ok


@pytest.mark.req("WD-07", "LBL-02", "P11-06")
def test_a_weighing_completes_only_once_its_container_is_labelled_and_the_print_is_logged(plant) -> None:
    from batchline.execution import recording

    people, batch, sim = plant
    sim.place("2041.0")
    dispense(people, batch)
    new = Container.objects.get(dispensed_for=batch.number)
    with pytest.raises(ex.ExecutionRefused) as refused:
        ex.step_complete(
            actor=A(people["operator"]), user=people["operator"], batch=batch, step_key="disp_api"
        )
    assert refused.value.verdict.codes == ["DISPENSED_NOT_LABELLED"]
    assert refused.value.verdict.reasons[0].message == (
        f"Print the label of {new.code} and put it on the container first."
    )
    pdf = recording.dispensed_label_print(actor=A(people["operator"]), batch=batch, code=new.code)
    assert pdf.startswith(b"%PDF")
    (printed,) = new.prints.all()
    assert printed.user == people["operator"] and not printed.reprint
    ex.step_complete(actor=A(people["operator"]), user=people["operator"], batch=batch, step_key="disp_api")
    assert BatchStep.objects.get(batch=batch, key="disp_api").state == "awaiting_verification"
    # A second print is a reprint: it needs a reason.
    with pytest.raises(ReasonRequired):
        recording.dispensed_label_print(actor=A(people["operator"]), batch=batch, code=new.code)
    # Only a container weighed out for this batch has this label.
    with pytest.raises(ex.ExecutionRefused) as other:
        recording.dispensed_label_print(actor=A(people["operator"]), batch=batch, code="C-000001")
    assert other.value.verdict.codes == ["NO_SUCH_CONTAINER"]
