"""What is left of a dispensed container: back to stock or to waste, each a movement of its own.

The demo's situation on a small recipe: magnesium stearate weighed out on the
simulated scale (MT-SICS over TCP), part of it charged, the rest returned to
stock or wasted; reconciliation, genealogy and the review then balance.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone

from batchline.audit.models import AuditEntry
from batchline.audit.services import record_create
from batchline.audit.verify import verify
from batchline.equipment import services as eq
from batchline.equipment.models import Site
from batchline.execution import returns, yields
from batchline.execution import services as ex
from batchline.execution.models import BatchException
from batchline.genealogy import selectors as genealogy
from batchline.keys import installation_public_key
from batchline.materials import services as stock
from batchline.materials.models import Container, LedgerEntry
from batchline.materials.selectors import output_lot
from batchline.quality import selectors as review
from batchline.quality.services import QualityRefused
from batchline.reports.archive import archive_export
from batchline.reports.content import record_content
from batchline.reports.verify import verify_archive
from batchline.signatures.models import Signature
from batchline.signatures.status import batch_statuses, broken_signatures
from tests.conftest import make_user
from tests.execution.test_dispensing import label_weighed
from tests.execution.test_engine import A, effective_recipe, new_batch, sign, start
from tests.materials.test_charging import receive
from tests.quality.test_quality_services import disposition, stage
from tests.signatures.test_status import same_judgement

pytestmark = pytest.mark.django_db

RECIPE = """
format: batchline.recipe/1
recipe: {code: RET-1, name: Return test, product_code: RET, product_name: Return test tablets, batch_size: {quantity: 100, unit: kg}}
operations:
  - key: blending
    name: Blending
    steps:
      - key: disp_mgst
        kind: weigh_dispense
        title: Dispense magnesium stearate
        material: {code: MGST, quantity: 0.5, unit: kg, tolerance_percent: 2}
      - key: charge_mgst
        kind: material_charge
        title: Charge magnesium stearate
        material: {code: MGST, quantity: 0.3, unit: kg, tolerance_percent: 2}
"""


def make_plant(sim):
    """People, the bench scale on the simulator, magnesium stearate in stock (C-000001, C-000002)."""
    people = {
        "author": make_user("author", ["recipe_author"]),
        "approver": make_user("approver", ["qa_approver"]),
        "supervisor": make_user("supervisor", ["supervisor"]),
        "reviewer": make_user("reviewer", ["qa_reviewer"]),
        "operator": make_user("operator", ["operator"]),
        "warehouse": make_user("warehouse", ["warehouse"]),
        "engineer": make_user("engineer", ["administrator"]),
    }
    recipe = effective_recipe(people, RECIPE)
    engineer = A(people["engineer"])
    with transaction.atomic():
        site = record_create(Site(code="s1", name="Site 1"), actor=engineer)
    scales = eq.equipment_class_create(actor=engineer, code="scale", name="Scale", is_scale=True)
    eq.equipment_create(
        actor=engineer,
        site=site,
        code="SCALE-01",
        name="Bench scale",
        equipment_class=scales,
        host="127.0.0.1",
        port=sim.port,
        capacity=Decimal(6200),
        minimum_weight=Decimal("10"),
        unit="g",
        calibration_due_at=timezone.now() + dt.timedelta(days=30),
    )
    eq.scale_check_record(actor=A(people["operator"]), code="SCALE-01", passed=True)
    mgst = stock.material_create(
        actor=A(people["warehouse"]), code="MGST", name="Magnesium stearate", kind="excipient", unit="kg"
    )
    receive(people, mgst, "MGST-L0007", containers=("10", "10"), location="WH-B-03")
    return people, recipe


def dispense_and_charge_part(people, batch, sim) -> Container:
    """0.5013 kg weighed out of C-000001 into C-000003; 0.306 kg of it charged (the step's upper edge)."""
    op = people["operator"]
    start(people, batch, "disp_mgst")
    sim.place("501.3")
    ex.step_dispense(
        actor=A(op), user=op, batch=batch, step_key="disp_mgst", source="C-000001", scale="SCALE-01"
    )
    label_weighed(people, batch, "disp_mgst")
    ex.step_complete(actor=A(op), user=op, batch=batch, step_key="disp_mgst")
    start(people, batch, "charge_mgst")
    ex.step_scan(actor=A(op), user=op, batch=batch, step_key="charge_mgst", scan="C-000003")
    return Container.objects.get(code="C-000003")


def finish(people, batch):
    op = people["operator"]
    ex.step_complete(actor=A(op), user=op, batch=batch, step_key="charge_mgst")
    batch.refresh_from_db()
    assert batch.state == "complete"
    return batch


@pytest.fixture
def plant(db, sim):
    people, recipe = make_plant(sim)
    return people, new_batch(people, recipe, quantity="100"), sim


def give_back(people, batch, who="operator", **kw):
    args = {"container": "C-000003", "location": "WH-B-03", **kw}
    return returns.remainder_return(actor=A(people[who]), user=people[who], batch=batch, **args)


def throw_away(people, batch, who="operator", **kw):
    args = {"container": "C-000003", "reason": "spilled on the booth floor", **kw}
    if "signer" not in args:
        args["signer"] = sign(people[who])
    return returns.remainder_waste(actor=A(people[who]), user=people[who], batch=batch, **args)


def checks(batch) -> dict[str, tuple[bool, tuple[str, ...]]]:
    return {c.code: (c.ok, c.findings) for c in review.completeness(batch)}


@pytest.mark.req("WD-12", "YLD-03", "MAT-05", "GEN-01", "RBE-03", "P11-05")
def test_the_demos_situation_dispense_charge_part_return_the_rest_balances_and_the_review_passes(
    plant,
) -> None:
    people, batch, sim = plant
    dispensed = dispense_and_charge_part(people, batch, sim)
    assert dispensed.quantity == Decimal("0.1953")
    assert "C-000003 (lot MGST-L0007) still holds 0.1953 kg" in checks(batch)["GENEALOGY"][1][0]

    made = give_back(people, batch)

    # A new container of stock, same lot, where it was put, remembering where it came from.
    assert (made.code, made.lot.number, made.quantity, made.location) == (
        "C-000004",
        "MGST-L0007",
        Decimal("0.1953"),
        "WH-B-03",
    )
    assert (made.returned_from, made.source_id, made.dispensed_for) == (batch.number, dispensed.pk, None)
    dispensed.refresh_from_db()
    assert dispensed.quantity == 0
    out, into = LedgerEntry.objects.filter(kind="return").order_by("id")
    assert (out.container_id, out.quantity, out.counterpart_id, out.balance) == (
        dispensed.pk,
        Decimal("-0.1953"),
        made.pk,
        0,
    )
    assert (into.container_id, into.quantity, into.counterpart_id, into.batch_number, into.device) == (
        made.pk,
        Decimal("0.1953"),
        dispensed.pk,
        batch.number,
        "",  # not weighed: the whole remainder the ledger held
    )
    assert AuditEntry.objects.filter(
        record_type="materials.container", record_id=str(made.pk), action="create"
    )
    # It is stock again: the first-to-expire proposal of another batch may offer it.
    assert made in stock.usable_containers(made.lot.material, batch_number="OTHER")

    finish(people, batch)
    (r,) = yields.batch_reconciliation(batch)
    assert (r.issued, r.consumed, r.returned, r.waste, r.difference, r.within) == (
        Decimal("0.5013"),
        Decimal("0.306"),
        Decimal("0.1953"),
        Decimal(0),
        Decimal(0),
        True,
    )
    assert not BatchException.objects.filter(batch=batch, code="RECONCILIATION_OUT_OF_LIMITS").exists()
    assert all(ok for ok, _ in checks(batch).values()), checks(batch)
    stage(people, batch, "production_review", "supervisor")

    # Genealogy: the return is what it is, not consumption.
    trace = genealogy.forward(made.lot_id)
    uses = {(c.code, c.kind): (c.quantity, c.into) for c in trace.containers}
    assert uses[("C-000003", "consumed")] == (Decimal("0.306"), "")
    assert uses[("C-000003", "returned")] == (Decimal("0.1953"), "C-000004")
    assert [f.quantity for f in trace.flows if f.kind == "consumed"] == [Decimal("0.306")]

    # The record's materials section: the movements, the returned container's trail.
    record = record_content(batch)
    kinds = [(w["kind"], w["container"], w["quantity"]) for w in record["weighings"]]
    assert ("return", "C-000003", "-0.195300") in kinds and ("return", "C-000004", "0.195300") in kinds
    assert any(
        a["record_type"] == "materials.container" and a["record_id"] == str(made.pk)
        for a in record["audit_trail"]
    )
    assert record["reconciliation"][0]["returned"] == "0.1953"
    assert verify().ok
    out_ = StringIO()
    call_command("audit", "verify", stdout=out_)
    assert "OK" in out_.getvalue()


@pytest.mark.req("WD-12", "WD-01", "WD-02", "DI-04")
def test_a_return_weighed_on_the_scale_takes_its_stable_reading_and_less_than_all_needs_a_reason(
    plant,
) -> None:
    people, batch, sim = plant
    dispense_and_charge_part(people, batch, sim)
    sim.place("150.0")  # the remainder poured into a new container weighs 150 g: some stayed in the scoop
    with pytest.raises(returns.RemainderRefused) as refused:
        give_back(people, batch, scale="SCALE-01")
    assert refused.value.verdict.codes == ["REASON_REQUIRED"]
    assert "0.15 of the 0.1953 kg left in C-000003 comes back" in str(refused.value)
    made = give_back(people, batch, scale="SCALE-01", reason="powder left in the scoop, to waste")
    assert made.quantity == Decimal("0.15")
    entry = made.ledger.get()
    assert entry.device == "SCALE-01 #SIM-0042" and entry.reason == "powder left in the scoop, to waste"
    assert Container.objects.get(code="C-000003").quantity == Decimal("0.0453")
    # The rest goes to waste, signed by who destroyed it.
    wasted = throw_away(people, batch, reason="powder left in the scoop")
    assert (wasted.kind, wasted.quantity, wasted.balance, wasted.device) == (
        "destroy",
        Decimal("-0.0453"),
        0,
        "",
    )
    signature = Signature.objects.get(record_type="materials.ledgerentry", record_id=str(wasted.pk))
    assert (signature.meaning, signature.signer_username, signature.comment) == (
        "performed",
        "operator",
        "powder left in the scoop",
    )
    finish(people, batch)
    (r,) = yields.batch_reconciliation(batch)
    assert (r.returned, r.waste, r.difference) == (Decimal("0.15"), Decimal("0.0453"), Decimal(0))
    # The waste's signature is part of the batch record and holds what was signed.
    content, statuses = batch_statuses(batch)
    assert statuses[signature.pk].state == "valid"
    assert signature.pk in {s["id"] for s in content["signature_records"]}
    assert broken_signatures() == []
    same_judgement(batch)  # the lean read (review page, audit verify) agrees with the full record
    # The archive holds the waste and its signature, and verifies years later without the database.
    data, manifest = archive_export(batch)
    report = verify_archive(data, public_key=installation_public_key(), manifest_sha256=manifest)
    assert report.ok, report.problems
    assert verify().ok


@pytest.mark.req("WD-12", "P11-14", "P11-01")
def test_a_wasted_quantity_changed_behind_the_applications_back_breaks_its_signature(
    plant, no_triggers
) -> None:
    from django.db import connection

    people, batch, sim = plant
    dispense_and_charge_part(people, batch, sim)
    wasted = throw_away(people, batch, quantity="0.05")
    assert wasted.device == "manual" and wasted.quantity == Decimal("-0.05")
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE materials_ledgerentry SET reason = %s WHERE id = %s", ["contaminated", wasted.pk]
        )
    (finding,) = broken_signatures()
    assert "on materials.ledgerentry" in finding and "BROKEN" in finding


@pytest.mark.req("WD-12", "YLD-03", "RBE-03")
def test_a_return_after_completion_tells_the_truth_in_the_reconciliation_and_the_review(plant) -> None:
    people, batch, sim = plant
    dispense_and_charge_part(people, batch, sim)
    finish(people, batch)  # completed with 0.1953 kg still in C-000003
    exc = BatchException.objects.get(batch=batch, code="RECONCILIATION_OUT_OF_LIMITS")
    assert (
        "0.1953 kg unaccounted" in exc.message
        and "0.1953 kg of it still in its dispensed containers" in exc.message
    )
    assert not checks(batch)["GENEALOGY"][0]
    with pytest.raises(QualityRefused):
        stage(people, batch, "production_review", "supervisor")

    give_back(people, batch)  # still allowed: the production review is not signed
    (r,) = yields.batch_reconciliation(batch)
    assert (r.returned, r.difference, r.within) == (Decimal("0.1953"), 0, True)
    now = checks(batch)
    assert now["GENEALOGY"] == (True, ()) and now["LIMITS"] == (True, ())
    # The exception the completion raised was true then; it stays for QA, who reads the return beside it.
    assert now["EXCEPTIONS"][0] is False and "RECONCILIATION_OUT_OF_LIMITS" in now["EXCEPTIONS"][1][0]
    disposition(people, [exc.pk], comment="The remainder went back to stock in C-000004 after completion.")
    stage(people, batch, "production_review", "supervisor")
    assert verify().ok


@pytest.fixture
def running_with_remainder(plant):
    people, batch, sim = plant
    dispense_and_charge_part(people, batch, sim)
    return people, batch, sim


def _counts():
    return (
        LedgerEntry.objects.count(),
        Container.objects.count(),
        Signature.objects.count(),
        AuditEntry.objects.count(),
    )


@pytest.mark.req("WD-12", "P11-07", "A11-05")
@pytest.mark.parametrize(
    ("act", "code"),
    [
        (lambda p, b, s, signed: (s.place("250.0"), give_back(p, b, scale="SCALE-01")), "MORE_THAN_HELD"),
        (lambda p, b, s, signed: throw_away(p, b, signer=signed, quantity="0.2"), "MORE_THAN_HELD"),
        (lambda p, b, s, signed: throw_away(p, b, signer=signed, quantity="1e400"), "NOT_A_NUMBER"),
        (lambda p, b, s, signed: throw_away(p, b, signer=signed, quantity="0,1953"), "NOT_A_NUMBER"),
        # in the site's notation (a point): all of it, allowed
        (lambda p, b, s, signed: throw_away(p, b, signer=signed, quantity="0.1953"), None),
        (lambda p, b, s, signed: throw_away(p, b, signer=signed, quantity="1,500"), "NOT_A_NUMBER"),
        (lambda p, b, s, signed: throw_away(p, b, signer=signed, quantity="-1"), "NOT_POSITIVE"),
        (lambda p, b, s, signed: give_back(p, b, who="reviewer"), "NOT_AUTHORISED"),
        (lambda p, b, s, signed: give_back(p, b, who="supervisor"), "NOT_AUTHORISED"),
        (lambda p, b, s, signed: give_back(p, b, container="C-999999"), "UNKNOWN_CONTAINER"),
        (lambda p, b, s, signed: give_back(p, b, container="C-000002"), "NOT_DISPENSED_FOR_BATCH"),
        (lambda p, b, s, signed: give_back(p, b, location=" "), "LOCATION_REQUIRED"),
        (lambda p, b, s, signed: throw_away(p, b, signer=signed, reason=""), "REASON_REQUIRED"),
        (lambda p, b, s, signed: throw_away(p, b, signer=None), "SIGNATURE_REQUIRED"),
        (lambda p, b, s, signed: throw_away(p, b, signer=signed), "SIGNATURE_REQUIRED"),
        (lambda p, b, s, signed: (s.place("0.3"), give_back(p, b, scale="SCALE-01")), "BELOW_MINIMUM_WEIGHT"),
        (lambda p, b, s, signed: give_back(p, b, scale="SCALE-99"), "SCALE_NOT_CONNECTED"),
    ],
)
def test_every_refusal_is_in_words_and_writes_nothing(running_with_remainder, act, code) -> None:
    people, batch, sim = running_with_remainder
    signed = sign(people["operator"])  # signing in is recorded in its own right, before the action
    warehouse = sign(people["warehouse"])
    before = _counts()
    if code is None:
        act(people, batch, sim, signed)
        assert Container.objects.get(code="C-000003").quantity == 0
        return
    with pytest.raises(Exception) as refused:
        act(people, batch, sim, signed if code != "SIGNATURE_REQUIRED" else warehouse)
    codes = getattr(refused.value, "verdict", None)
    assert codes is not None and any(c.startswith(code) for c in codes.codes), (refused.value, code)
    assert all(r.message for r in codes.reasons)
    assert _counts() == before


@pytest.mark.req("WD-12", "RBE-06", "P11-06")
@pytest.mark.parametrize("when", ["in_review", "held", "other_batch"])
def test_nothing_leaves_a_container_once_the_production_review_is_signed_or_while_held_or_from_another_batch(
    plant, when
) -> None:
    people, batch, sim = plant
    dispense_and_charge_part(people, batch, sim)
    sup = people["supervisor"]
    if when == "in_review":
        waste_part = throw_away(people, batch, quantity="0.1953")
        assert waste_part.balance == 0
        finish(people, batch)
        stage(people, batch, "production_review", "supervisor")
        # A new remainder cannot appear now; so weigh the check against a container that still holds
        # some: the stock container C-000002 is refused as not dispensed, and C-000003 as closed.
        expected = "BATCH_RECORD_CLOSED"
    elif when == "held":
        ex.batch_command(actor=A(sup), batch=batch, command="hold", signer=sign(sup), reason="inspection")
        expected = "BATCH_NOT_RUNNING"
    else:
        other = new_batch(people, batch.recipe, number="B-002", quantity="100")
        batch = other
        expected = "NOT_DISPENSED_FOR_BATCH"
    batch.refresh_from_db()
    before = _counts()
    with pytest.raises(returns.RemainderRefused) as refused:
        give_back(people, batch)
    assert expected in refused.value.verdict.codes, refused.value.verdict.codes
    assert _counts() == before
    assert output_lot(batch.number) is not None
