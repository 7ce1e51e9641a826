"""Receiving, disposition, the ledger, and the material charge step on a real database.

The scenario this project exists for: an operator scans a container whose lot
expired 90 minutes ago. It is refused with the lot and the time named, nothing
is consumed, the batch stays consistent, and QA sees the refused attempt.
"""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal

import pytest
from django.db import OperationalError, connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from batchline.accounts.models import User
from batchline.audit.services import ReasonRequired
from batchline.audit.verify import verify
from batchline.execution import services as ex
from batchline.execution.models import BatchException, BatchStep, StepValue
from batchline.materials import services as stock
from batchline.materials.models import Consumption, Container, LedgerEntry, Lot, Material
from tests.conftest import appends_at_the_end, entries, make_user
from tests.execution.test_engine import A, effective_recipe, new_batch, sign, start

pytestmark = pytest.mark.django_db

RECIPE = """
format: batchline.recipe/1
recipe: {code: CHG-1, name: Charge test, product_code: CHG, product_name: Charge test, batch_size: {quantity: 100, unit: kg}}
operations:
  - key: granulation
    name: Granulation
    steps:
      - key: charge_api
        kind: material_charge
        title: Charge paracetamol
        material: {code: PCM, quantity: 10, unit: kg, tolerance_percent: 1}
      - key: mix
        kind: instruction
        title: Mix
"""


def people_and_recipe():
    people = {
        "author": make_user("author", ["recipe_author"]),
        "approver": make_user("approver", ["qa_approver"]),
        "supervisor": make_user("supervisor", ["supervisor"]),
        "operator": make_user("operator", ["operator"]),
        "warehouse": make_user("warehouse", ["warehouse"]),
    }
    return people, effective_recipe(people, RECIPE)


@pytest.fixture
def plant(db):
    people, recipe = people_and_recipe()
    material = stock.material_create(
        actor=A(people["warehouse"]), code="PCM", name="Paracetamol", kind="api", unit="kg"
    )
    return people, recipe, material


def receive(
    people,
    material,
    number,
    *,
    containers=("6", "6"),
    expires_in=dt.timedelta(days=365),
    status="released",
    **kw,
):
    lot = stock.lot_receive(
        actor=A(people["warehouse"]),
        material=material,
        number=number,
        expires_at=timezone.now() + expires_in,
        containers=list(containers),
        **kw,
    )
    if status != "quarantine":
        lot = stock.lot_disposition(
            actor=A(people["approver"]),
            lot=lot,
            status=status,
            signer=sign(people["approver"], status),
            reason="CoA ok",
        )
    return lot


def expire(lot: Lot, ago: dt.timedelta) -> None:
    """QA corrects the lot's expiry into the past (as if the certificate had been mistyped)."""
    approver = User.objects.get(username="approver")
    stock.lot_expiry_correct(
        actor=A(approver),
        lot=lot,
        expires_at=timezone.now() - ago,
        signer=sign(approver, "approved"),
        reason="supplier notice: expiry was mistyped",
    )


@pytest.mark.req("MAT-01", "MAT-05", "P11-13")
def test_a_delivery_arrives_in_quarantine_and_qa_releases_it_with_a_signature(plant) -> None:
    people, _recipe, material = plant
    lot = receive(people, material, "L-0001", status="quarantine", supplier="Acme", potency=Decimal("99.2"))
    assert lot.status == "quarantine"
    containers = list(lot.containers.order_by("code"))
    assert [(c.code, c.quantity) for c in containers] == [("C-000001", Decimal(6)), ("C-000002", Decimal(6))]
    assert [e.kind for e in LedgerEntry.objects.order_by("id")] == ["receipt", "receipt"]
    with pytest.raises(stock.MaterialRefused) as refused:
        stock.lot_disposition(
            actor=A(people["warehouse"]),
            lot=lot,
            status="released",
            signer=sign(people["warehouse"]),
            reason="x",
        )
    assert refused.value.verdict.codes == ["NOT_AUTHORISED"]
    with pytest.raises(ReasonRequired):
        stock.lot_disposition(
            actor=A(people["approver"]),
            lot=lot,
            status="released",
            signer=sign(people["approver"], "released"),
            reason="",
        )
    released = stock.lot_disposition(
        actor=A(people["approver"]),
        lot=lot,
        status="released",
        signer=sign(people["approver"], "released"),
        reason="CoA ok",
    )
    assert released.status == "released"
    assert verify().ok


@pytest.mark.req("MAT-02", "P11-06", "WD-05", "DI-05")
def test_a_container_of_a_lot_that_expired_90_minutes_ago_is_refused_and_nothing_is_consumed(plant) -> None:
    people, recipe, material = plant
    lot = receive(people, material, "L-0042")
    expire(lot, dt.timedelta(minutes=90))
    batch = new_batch(people, recipe, quantity="100")
    start(people, batch, "charge_api")
    before = (LedgerEntry.objects.count(), Consumption.objects.count(), StepValue.objects.count())
    with pytest.raises(ex.ExecutionRefused) as refused:
        ex.step_scan(
            actor=A(people["operator"]),
            user=people["operator"],
            batch=batch,
            step_key="charge_api",
            scan="C-000001",
        )
    message = refused.value.verdict.reasons[0].message
    assert refused.value.verdict.codes == ["LOT_EXPIRED"]
    assert (
        message.startswith("Lot L-0042 of Paracetamol expired at ")
        and "90 minutes ago: it cannot be used." in message
    )
    assert (LedgerEntry.objects.count(), Consumption.objects.count(), StepValue.objects.count()) == before
    assert Container.objects.get(code="C-000001").quantity == Decimal(6)
    assert BatchStep.objects.get(batch=batch, key="charge_api").state == "running"
    seen_by_qa = BatchException.objects.get(batch=batch)
    assert seen_by_qa.code == "REFUSED_LOT_EXPIRED" and seen_by_qa.step.key == "charge_api"
    assert "Lot L-0042" in seen_by_qa.message and seen_by_qa.user == people["operator"]
    assert verify().ok


@pytest.mark.req("WD-05", "GEN-01", "MAT-05", "P11-06")
def test_good_containers_are_charged_to_the_quantity_and_the_step_completes_within_tolerance(plant) -> None:
    people, recipe, material = plant
    receive(people, material, "L-0007", containers=("6", "6"))
    batch = new_batch(people, recipe, quantity="100")
    start(people, batch, "charge_api")
    op = people["operator"]
    ex.step_scan(actor=A(op), user=op, batch=batch, step_key="charge_api", scan="C-000001")
    with pytest.raises(ex.ExecutionRefused) as early:
        ex.step_complete(actor=A(op), user=op, batch=batch, step_key="charge_api")
    assert early.value.verdict.codes == ["MATERIAL_NOT_CHARGED"]
    assert "6 kg of 10 kg is charged" in early.value.verdict.reasons[0].message
    # GS1 label content as a scanner types it: the container id is the serial (AI 21).
    ex.step_scan(
        actor=A(op),
        user=op,
        batch=batch,
        step_key="charge_api",
        scan="(01)09501101530003(10)L-0007(21)C-000002",
    )
    # Up to the tolerance's upper edge: 10.1 kg, so 4.1 kg of the second container.
    assert Container.objects.get(code="C-000002").quantity == Decimal("1.9")
    assert [c.quantity for c in Consumption.objects.order_by("id")] == [Decimal(6), Decimal("4.1")]
    assert {c.lot.number for c in Consumption.objects.all()} == {"L-0007"}
    with pytest.raises(ex.ExecutionRefused) as more:
        ex.step_scan(actor=A(op), user=op, batch=batch, step_key="charge_api", scan="C-000002")
    assert more.value.verdict.codes == ["ALREADY_CHARGED"]
    ex.step_complete(actor=A(op), user=op, batch=batch, step_key="charge_api")
    assert BatchStep.objects.get(batch=batch, key="charge_api").state == "done"
    container = Container.objects.get(code="C-000002")
    assert stock.ledger_balance(container) == container.quantity
    assert verify().ok


@pytest.mark.req("A11-05", "WD-05")
@pytest.mark.parametrize(
    ("scan", "code"),
    [
        ("hello", "UNKNOWN_BARCODE"),
        ("C-999999", "UNKNOWN_CONTAINER"),
        ("(01)09501101530003(10)L-1", "UNKNOWN_BARCODE"),
        ("(01)09501101530004(21)C-000001", "SCAN_BAD_CHECK_DIGIT"),
        ("(01)09501101530003(10)L-9999(21)C-000001", "LABEL_MISMATCH"),
    ],
)
def test_unknown_barcodes_are_refused_in_words_and_nothing_moves(plant, scan, code) -> None:
    people, recipe, material = plant
    receive(people, material, "L-0008")
    batch = new_batch(people, recipe, quantity="100")
    start(people, batch, "charge_api")
    ledger = LedgerEntry.objects.count()
    with pytest.raises(ex.ExecutionRefused) as refused:
        ex.step_scan(
            actor=A(people["operator"]),
            user=people["operator"],
            batch=batch,
            step_key="charge_api",
            scan=scan,
        )
    assert refused.value.verdict.codes == [code]
    assert LedgerEntry.objects.count() == ledger


@pytest.mark.req("MAT-01", "WD-05")
def test_quarantined_wrong_and_retest_due_material_is_refused(plant) -> None:
    people, recipe, material = plant
    other = stock.material_create(
        actor=A(people["warehouse"]), code="MST", name="Maize starch", kind="excipient", unit="kg"
    )
    receive(people, material, "L-Q", status="quarantine")  # C-000001, C-000002
    receive(people, other, "L-M")  # C-000003, C-000004
    batch = new_batch(people, recipe, quantity="100")
    start(people, batch, "charge_api")
    op = people["operator"]
    for scan, codes in (("C-000001", ["LOT_IN_QUARANTINE"]), ("C-000003", ["WRONG_MATERIAL"])):
        with pytest.raises(ex.ExecutionRefused) as refused:
            ex.step_scan(actor=A(op), user=op, batch=batch, step_key="charge_api", scan=scan)
        assert refused.value.verdict.codes == codes
    assert not Consumption.objects.exists()


@pytest.mark.req("RBE-01", "RBE-02", "MAT-01")
@pytest.mark.parametrize("status", ["quarantine", "rejected"])
def test_a_lot_not_released_is_recorded_for_qa_as_a_material_condition_naming_the_container(
    plant, status
) -> None:
    people, recipe, material = plant
    receive(people, material, "L-S", status=status)  # C-000001, C-000002
    batch = new_batch(people, recipe, quantity="100")
    start(people, batch, "charge_api")
    op = people["operator"]
    with pytest.raises(ex.ExecutionRefused):
        ex.step_scan(actor=A(op), user=op, batch=batch, step_key="charge_api", scan="C-000002")
    seen_by_qa = BatchException.objects.get(batch=batch)
    assert seen_by_qa.code == f"REFUSED_LOT_{'IN_QUARANTINE' if status == 'quarantine' else status.upper()}"
    assert (seen_by_qa.type.category, seen_by_qa.type.kind) == ("resource", "material condition failed")
    assert (seen_by_qa.material, seen_by_qa.equipment) == ("C-000002", "")


@pytest.mark.req("A11-05", "MAT-05")
@pytest.mark.parametrize("quantity", ["0", "-5", "abc", "1e30", "NaN"])
def test_receipts_of_zero_negative_or_nonsense_quantities_are_refused(plant, quantity) -> None:
    people, _recipe, material = plant
    with pytest.raises(stock.MaterialRefused):
        receive(people, material, "L-BAD", containers=(quantity,), status="quarantine")
    assert not Lot.objects.exists() and not LedgerEntry.objects.exists()


@pytest.mark.req("MAT-05", "DI-05")
def test_the_ledger_is_append_only_in_the_database(plant) -> None:
    from django.db import DatabaseError, connection, transaction

    people, _recipe, material = plant
    receive(people, material, "L-0009", status="quarantine")
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE materials_ledgerentry SET quantity = 1000")


@pytest.mark.django_db(transaction=True)
@pytest.mark.req("MAT-05", "NFR-06")
def test_concurrent_takers_of_one_container_never_take_more_than_it_holds(live_db) -> None:
    people, _recipe = people_and_recipe()
    material = stock.material_create(
        actor=A(people["warehouse"]), code="PCM", name="Paracetamol", kind="api", unit="kg"
    )
    lot = receive(people, material, "L-RACE", containers=("10",))
    container = lot.containers.get()
    barrier = threading.Barrier(4)
    outcomes: list[str] = []

    def take() -> None:
        try:
            barrier.wait()
            with transaction.atomic():
                locked = stock.container_locked(container.code)
                stock.container_consume(
                    actor=A(people["operator"]),
                    container=locked,
                    quantity=Decimal(4),
                    batch_number="B-RACE",
                    step_key="s",
                    at=timezone.now(),
                )
            outcomes.append("took")
        except stock.MaterialRefused as refused:
            outcomes.append(refused.verdict.codes[0])
        finally:
            connections.close_all()

    threads = [threading.Thread(target=take) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["NOT_ENOUGH_MATERIAL", "NOT_ENOUGH_MATERIAL", "took", "took"]
    container.refresh_from_db()
    assert container.quantity == Decimal(2) == stock.ledger_balance(container)
    assert verify().ok


@pytest.mark.req("P11-05", "NFR-06")
def test_an_accepted_scan_appends_its_four_entries_together_after_its_writes(plant) -> None:
    # The audit chain's lock is taken by the append and held to the commit: appended at the end,
    # the scan's other statements and Python run before it, not while every other writer waits.
    people, recipe, material = plant
    receive(people, material, "L-0008", containers=("6",))
    batch = new_batch(people, recipe, quantity="100")
    start(people, batch, "charge_api")
    op = people["operator"]
    last = entries()[-1].pk
    with CaptureQueriesContext(connection) as ran:
        value = ex.step_scan(actor=A(op), user=op, batch=batch, step_key="charge_api", scan="C-000001")
    appends_at_the_end(ran.captured_queries)
    consumption = Consumption.objects.get()
    assert [(e.action, e.record_type, e.record_id) for e in entries(pk__gt=last)] == [
        ("create", "materials.ledgerentry", str(consumption.ledger_id)),
        ("consume", "materials.container", str(consumption.container_id)),
        ("create", "materials.consumption", str(consumption.pk)),
        ("create", "execution.stepvalue", str(value.pk)),
    ]
    assert verify().ok


@pytest.mark.django_db(transaction=True)
@pytest.mark.req("MAT-05", "NFR-06")
def test_a_scan_locks_its_container_and_shares_its_lot_and_material(live_db) -> None:
    # Scans of other containers of the lot go on; a change to the lot or the material (a
    # disposition locks both) waits until the scan has decided and committed.
    if connection.vendor != "postgresql":
        pytest.skip("row locks: on SQLite one transaction writes at a time")
    people, _recipe = people_and_recipe()
    material = stock.material_create(
        actor=A(people["warehouse"]), code="PCM", name="Paracetamol", kind="api", unit="kg"
    )
    lot = receive(people, material, "L-SHARE", containers=("5", "5"))
    first, second = lot.containers.order_by("code")
    holding, done = threading.Event(), threading.Event()

    def scan_in_progress() -> None:
        try:
            with transaction.atomic():
                stock.container_locked(first.code)
                holding.set()
                done.wait(20)
        finally:
            connections.close_all()

    def waits(lock) -> bool:
        try:
            with transaction.atomic():
                with connection.cursor() as cursor:
                    cursor.execute("SET LOCAL lock_timeout = '300ms'")
                lock()
            return False
        except OperationalError:
            return True

    scanner = threading.Thread(target=scan_in_progress)
    scanner.start()
    try:
        assert holding.wait(20)
        assert not waits(lambda: stock.container_locked(second.code))
        assert waits(lambda: stock.container_locked(first.code))
        assert waits(lambda: Lot.objects.select_for_update().get(pk=lot.pk))
        assert waits(lambda: Material.objects.select_for_update().get(pk=material.pk))
    finally:
        done.set()
        scanner.join()
    assert not waits(lambda: Lot.objects.select_for_update().get(pk=lot.pk))
