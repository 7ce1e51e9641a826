"""ERP outbound on a real database: a batch run through the services leaves its B2MML in the outbox.

Receipt, start, charges from three lots, output into two containers, completion, QA release: each
step the ERP needs is one message, in the order it happened, with the quantities per lot, written
in the change's own transaction (and gone with it when the change rolls back).
"""

from __future__ import annotations

import re

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from lxml import etree

from batchline.audit.models import AuditEntry
from batchline.erp import outbound
from batchline.erp import performance as b2mml
from batchline.execution import recording
from batchline.execution import services as ex
from batchline.execution.models import Batch, BatchException
from batchline.materials import services as stock
from batchline.materials.models import Consumption, Lot
from batchline.outbox.models import Message
from tests.conftest import make_user
from tests.execution.test_dispensing import label_weighed
from tests.execution.test_engine import A, effective_recipe, new_batch, product_master_data, sign, start
from tests.materials.test_charging import receive
from tests.quality.scenario import by_hand
from tests.quality.test_quality_services import disposition, stage

NS = {"b": b2mml.NS}

RECIPE = """
format: batchline.recipe/1
recipe: {code: ERP-1, name: ERP round trip, product_code: ERPG, product_name: Paracetamol granules, batch_size: {quantity: 100, unit: kg}}
operations:
  - key: dispensing
    name: Dispensing
    steps:
      - key: disp_api
        kind: weigh_dispense
        title: Dispense paracetamol
        material: {code: PCM, quantity: 2, unit: kg, tolerance_percent: 1}
  - key: granulation
    name: Granulation
    steps:
      - key: charge_api
        kind: material_charge
        title: Charge paracetamol
        material: {code: PCM, quantity: 2, unit: kg, tolerance_percent: 1}
      - key: charge_mgst
        kind: material_charge
        title: Charge magnesium stearate
        material: {code: MGST, quantity: 0.5, unit: kg, tolerance_percent: 1}
  - key: discharge
    name: Discharge
    steps:
      - key: output
        kind: produce
        title: Record the granules discharged
        produce: {name: granules, label: Granules discharged, unit: kg}
"""


def erp_plant():
    """People, the recipe, paracetamol lot L-1 (C-000001) and magnesium stearate in two lots: M-1
    with 0.3 kg (C-000002), M-2 with 5 kg (C-000003); each received and released by QA."""
    people = {
        "author": make_user("author", ["recipe_author"]),
        "approver": make_user("approver", ["qa_approver"]),
        "reviewer": make_user("reviewer", ["qa_reviewer"]),
        "supervisor": make_user("supervisor", ["supervisor"]),
        "operator": make_user("operator", ["operator"]),
        "warehouse": make_user("warehouse", ["warehouse"]),
    }
    recipe = effective_recipe(people, RECIPE)
    product_master_data(people["warehouse"], "ERPG", "Paracetamol granules", "kg")
    who = A(people["warehouse"])
    pcm = stock.material_create(actor=who, code="PCM", name="Paracetamol", kind="api", unit="kg")
    mgst = stock.material_create(
        actor=who, code="MGST", name="Magnesium stearate", kind="excipient", unit="kg"
    )
    receive(people, pcm, "L-1", containers=("25",))
    receive(people, mgst, "M-1", containers=("0.3",))
    receive(people, mgst, "M-2", containers=("5",))
    return people, recipe


def scan(people, batch, key, code):
    op = people["operator"]
    return ex.step_scan(actor=A(op), user=op, batch=batch, step_key=key, scan=code)


def done(people, batch, key):
    op = people["operator"]
    return ex.step_complete(actor=A(op), user=op, batch=batch, step_key=key)


def run_to_complete(people, recipe, number="ERP-0001") -> Batch:
    """Dispense 2 kg of L-1 (into C-000004), charge it, charge 0.3 kg of M-1 and then 0.205 kg of M-2
    (up to the charge's upper limit), produce 1.2 and 0.95 kg (C-000005, C-000006)."""
    batch = new_batch(people, recipe, number=number, quantity="100")
    op = people["operator"]
    start(people, batch, "disp_api")
    by_hand(people, batch, "disp_api", "C-000001", "2")
    label_weighed(people, batch, "disp_api")
    done(people, batch, "disp_api")
    start(people, batch, "charge_api")
    scan(people, batch, "charge_api", "C-000004")
    done(people, batch, "charge_api")
    start(people, batch, "charge_mgst")
    scan(people, batch, "charge_mgst", "C-000002")
    scan(people, batch, "charge_mgst", "C-000003")
    done(people, batch, "charge_mgst")
    start(people, batch, "output")
    for quantity in ("1.2", "0.95"):
        made = recording.step_produce(actor=A(op), user=op, batch=batch, step_key="output", quantity=quantity)
        recording.output_label_print(actor=A(op), batch=batch, code=made.code)
    done(people, batch, "output")
    return Batch.objects.get(pk=batch.pk)


def release(people, batch) -> None:
    open_ones = BatchException.objects.filter(batch=batch, disposition__isnull=True)
    if open_ones.exists():
        disposition(people, list(open_ones.values_list("id", flat=True)))
    stage(people, batch, "production_review", "supervisor")
    stage(people, batch, "qa_review", "reviewer")
    stage(people, batch, "released", "approver", comment="Record reviewed by exception.")


def shape(key: str) -> str:
    """A key without the installation's prefix, and with a record's id or a change's instant named."""
    key = key.removeprefix("batchline:erp:")
    key = re.sub(r":consumed:\d+$", ":consumed:<id>", key)
    return re.sub(r":\d{8}T\d{6}\.\d{6}Z$", ":<instant>", key)


def messages(**filters):
    return list(Message.objects.filter(destination="erp", **filters).order_by("id"))


def xml(message: Message):
    return etree.fromstring(message.body.encode("utf-8"))


def lots(message: Message) -> dict[str, list[tuple[str, str, str, str, str]]]:
    """Per operation of a performance: (use, material, lot, quantity, unit) of each MaterialActual."""
    found = {}
    for seg in xml(message).iterfind(".//b:SegmentResponse", NS):
        found[seg.findtext("b:ID", namespaces=NS)] = [
            (
                m.findtext("b:MaterialUse", namespaces=NS),
                m.findtext("b:MaterialDefinitionID", namespaces=NS),
                m.findtext("b:MaterialLotID", namespaces=NS),
                m.findtext("b:Quantity/b:QuantityString", namespaces=NS),
                m.findtext("b:Quantity/b:UnitOfMeasure", namespaces=NS),
            )
            for m in seg.iterfind("b:MaterialActual", NS)
        ]
    return found


def state(message: Message) -> str:
    return xml(message).findtext(".//b:OperationsResponse/b:ResponseState", namespaces=NS)


@pytest.mark.req("S95-02", "A11-07", "GEN-01", "RBE-07")
def test_a_batch_run_to_release_leaves_each_step_the_erp_needs_in_order_with_quantities_per_lot(erp) -> None:
    people, recipe = erp_plant()
    batch = run_to_complete(people, recipe)
    assert batch.state == "complete"
    release(people, batch)

    assert [(m.stream, m.kind, shape(m.key)) for m in messages()] == [
        # The receipts' releases by QA (received lots' status changes).
        ("lot:PCM/L-1", "SyncMaterialLot/lot.status_changed", "lot:PCM/L-1:status:released:<instant>"),
        ("lot:MGST/M-1", "SyncMaterialLot/lot.status_changed", "lot:MGST/M-1:status:released:<instant>"),
        ("lot:MGST/M-2", "SyncMaterialLot/lot.status_changed", "lot:MGST/M-2:status:released:<instant>"),
        ("batch:ERP-0001", "SyncOperationsPerformance/batch.started", "ERP-0001:started"),
        ("batch:ERP-0001", "SyncOperationsPerformance/material.consumed", "ERP-0001:consumed:<id>"),
        ("batch:ERP-0001", "SyncOperationsPerformance/material.consumed", "ERP-0001:consumed:<id>"),
        ("batch:ERP-0001", "SyncOperationsPerformance/material.consumed", "ERP-0001:consumed:<id>"),
        ("batch:ERP-0001", "SyncOperationsPerformance/lot.produced", "ERP-0001:produced:C-000005"),
        ("lot:ERPG/ERP-0001", "SyncMaterialLot/lot.produced", "lot:ERPG/ERP-0001:produced:C-000005"),
        ("batch:ERP-0001", "SyncOperationsPerformance/lot.produced", "ERP-0001:produced:C-000006"),
        ("lot:ERPG/ERP-0001", "SyncMaterialLot/lot.produced", "lot:ERPG/ERP-0001:produced:C-000006"),
        ("batch:ERP-0001", "SyncOperationsPerformance/batch.completed", "ERP-0001:completed"),
        (
            "lot:ERPG/ERP-0001",
            "SyncMaterialLot/lot.status_changed",
            "lot:ERPG/ERP-0001:status:released:<instant>",
        ),
        ("batch:ERP-0001", "SyncOperationsPerformance/batch.qa_released", "ERP-0001:qa_released"),
    ]
    # A consumption's message is known by the consumption's own record.
    assert [
        m.key.rsplit(":", 1)[1] for m in messages(kind="SyncOperationsPerformance/material.consumed")
    ] == [
        str(pk)
        for pk in Consumption.objects.filter(batch_number="ERP-0001")
        .order_by("id")
        .values_list("pk", flat=True)
    ]
    performance = messages(stream="batch:ERP-0001")
    assert [state(m) for m in performance] == ["Running"] * 6 + ["Completed", "Closed"]
    # Each states the batch as it stands: the consumption so far, per operation and lot.
    started, paracetamol, first_mgst, second_mgst, out1, out2, completed, released = performance
    assert lots(started) == {"dispensing": [], "granulation": [], "discharge": []}
    assert [
        s.findtext("b:SegmentState", namespaces=NS) for s in xml(started).iterfind(".//b:SegmentResponse", NS)
    ] == ["Running", "Waiting", "Waiting"]
    assert lots(paracetamol)["granulation"] == [("Consumed", "PCM", "L-1", "2", "kg")]
    assert lots(first_mgst)["granulation"] == [
        ("Consumed", "PCM", "L-1", "2", "kg"),
        ("Consumed", "MGST", "M-1", "0.3", "kg"),
    ]
    assert lots(second_mgst)["granulation"][2] == ("Consumed", "MGST", "M-2", "0.205", "kg")
    assert lots(out1)["discharge"] == [("Produced", "ERPG", "ERP-0001", "1.2", "kg")]
    assert lots(out2)["discharge"] == [("Produced", "ERPG", "ERP-0001", "2.15", "kg")]
    assert (
        lots(released)
        == lots(completed)
        == {
            "dispensing": [],
            "granulation": [
                ("Consumed", "PCM", "L-1", "2", "kg"),
                ("Consumed", "MGST", "M-1", "0.3", "kg"),
                ("Consumed", "MGST", "M-2", "0.205", "kg"),
            ],
            "discharge": [("Produced", "ERPG", "ERP-0001", "2.15", "kg")],
        }
    )
    # The containers each lot went through, and the output lot's status as QA left it.
    doc = xml(released)
    granulation = doc.find(".//b:SegmentResponse[b:ID='granulation']", NS)
    assert [
        m.findtext("b:MaterialSubLotID", namespaces=NS) for m in granulation.iterfind("b:MaterialActual", NS)
    ] == ["C-000004", "C-000002", "C-000003"]
    output = doc.find(".//b:MaterialActual[b:MaterialUse='Produced']", NS)
    assert [e.text for e in output.iterfind("b:MaterialSubLotID", NS)] == ["C-000005", "C-000006"]
    assert (
        output.findtext("b:MaterialActualProperty[b:ID='LotStatus']/b:Value/b:ValueString", namespaces=NS)
        == "released"
    )
    # Times: the batch's start is its first step's, its end its last step's; the order is the ERP's.
    steps = {s.key: s for s in batch.steps.all()}
    response = doc.find(".//b:OperationsResponse", NS)
    assert response.findtext("b:StartTime", namespaces=NS) == b2mml.when(steps["disp_api"].started_at)
    assert response.findtext("b:EndTime", namespaces=NS) == b2mml.when(steps["output"].completed_at)
    assert response.findtext("b:OperationsRequestID", namespaces=NS) == outbound.order_id_of("ERP-0001")
    assert doc.findtext(".//b:BODID", namespaces=NS) == released.key
    assert [
        s.findtext("b:SegmentState", namespaces=NS) for s in doc.iterfind(".//b:SegmentResponse", NS)
    ] == ["Completed"] * 3
    # A batch's performance is read in four statements however long it ran, a lot in three (its
    # batch's ERP order one of them).
    with CaptureQueriesContext(connection) as queries:
        outbound.performance_of("ERP-0001")
        outbound.lot_state_of("ERPG", "ERP-0001")
    assert len(queries) == 7
    # The produced lot's last SyncMaterialLot: released, its containers and their total.
    lot = xml(messages(stream="lot:ERPG/ERP-0001")[-1]).find(".//b:MaterialLot", NS)
    assert (lot.findtext("b:Status", namespaces=NS), lot.findtext("b:Disposition", namespaces=NS)) == (
        "released",
        "UnRestricted",
    )
    assert lot.findtext("b:Quantity/b:QuantityString", namespaces=NS) == "2.15"
    assert [s.findtext("b:ID", namespaces=NS) for s in lot.iterfind("b:MaterialSubLot", NS)] == [
        "C-000005",
        "C-000006",
    ]


@pytest.mark.req("S95-02", "A11-07")
def test_an_aborted_batch_then_rejected_reports_both_and_its_output_lot_rejected(erp) -> None:
    people, recipe = erp_plant()
    batch = new_batch(people, recipe, number="ERP-0002", quantity="100")
    start(people, batch, "disp_api")
    by_hand(people, batch, "disp_api", "C-000001", "2")
    label_weighed(people, batch, "disp_api")
    done(people, batch, "disp_api")
    start(people, batch, "charge_api")
    scan(people, batch, "charge_api", "C-000004")
    sup = people["supervisor"]
    ex.batch_command(
        actor=A(sup), batch=batch, command="abort", signer=sign(sup), reason="granulator broke down"
    )
    stage(people, batch, "rejected", "approver", comment="Aborted: the granulation never took place.")
    performance = messages(stream="batch:ERP-0002")
    assert [m.kind.split("/")[1] for m in performance] == [
        "batch.started",
        "material.consumed",
        "batch.aborted",
        "batch.rejected",
    ]
    assert [state(m) for m in performance] == ["Running", "Running", "Aborted", "Closed"]
    aborted = xml(performance[2])
    assert [
        s.findtext("b:SegmentState", namespaces=NS) for s in aborted.iterfind(".//b:SegmentResponse", NS)
    ] == ["Completed", "Aborted", "Aborted"]
    assert aborted.find(".//b:OperationsResponse/b:EndTime", NS) is None  # it never finished
    assert lots(performance[-1])["granulation"] == [("Consumed", "PCM", "L-1", "2", "kg")]
    [lot_message] = messages(stream="lot:ERPG/ERP-0002")
    lot = xml(lot_message).find(".//b:MaterialLot", NS)
    assert (lot.findtext("b:Status", namespaces=NS), lot.findtext("b:Disposition", namespaces=NS)) == (
        "rejected",
        "Restricted",
    )


@pytest.mark.req("S95-02", "GEN-01")
def test_output_recorded_outside_a_step_counts_in_the_last_operation(erp) -> None:
    people, recipe = erp_plant()
    batch = new_batch(people, recipe, number="ERP-0008", quantity="100")
    start(people, batch, "disp_api")
    ex.batch_produce(actor=A(people["operator"]), batch=batch, quantities=["0.5", "0.25"], unit="kg")
    last = messages(stream="batch:ERP-0008")[-1]
    assert (last.kind, shape(last.key)) == (
        "SyncOperationsPerformance/lot.produced",
        "ERP-0008:produced:C-000004",
    )
    assert lots(last) == {
        "dispensing": [],
        "granulation": [],
        "discharge": [("Produced", "ERPG", "ERP-0008", "0.75", "kg")],
    }


@pytest.mark.req("S95-02", "A11-07")
def test_a_lot_that_comes_back_to_a_status_gets_a_message_of_its_own_each_time(erp) -> None:
    people, _recipe = erp_plant()
    lot = stock.lot_disposition(
        actor=A(people["approver"]),
        lot=Lot.objects.get(number="M-2"),
        status="blocked",
        signer=sign(people["approver"], "rejected"),
        reason="supplier recall notice",
    )
    stock.lot_disposition(
        actor=A(people["approver"]),
        lot=lot,
        status="released",
        signer=sign(people["approver"], "released"),
        reason="recall withdrawn by the supplier",
    )
    sent = messages(stream="lot:MGST/M-2")
    assert [xml(m).findtext(".//b:MaterialLot/b:Status", namespaces=NS) for m in sent] == [
        "released",
        "blocked",
        "released",
    ]
    assert len({m.key for m in sent}) == 3


@pytest.mark.req("A11-07")
def test_a_change_that_rolls_back_leaves_no_message(erp) -> None:
    people, recipe = erp_plant()
    batch = new_batch(people, recipe, number="ERP-0003", quantity="100")
    before = Message.objects.count()
    with pytest.raises(ZeroDivisionError), transaction.atomic():
        start(people, batch, "disp_api")
        assert messages(stream="batch:ERP-0003")  # written with the start…
        1 / 0  # noqa: B018 (…which then fails)
    assert Message.objects.count() == before
    batch.refresh_from_db()
    assert batch.state == "released"


@pytest.mark.req("A11-07")
def test_an_invalid_document_refuses_the_change_and_writes_nothing(erp, monkeypatch) -> None:
    people, recipe = erp_plant()
    batch = new_batch(people, recipe, number="ERP-0004", quantity="100")
    messages_before, entries_before = Message.objects.count(), AuditEntry.objects.count()
    # A bug in the mapping: a state B2MML does not know.
    monkeypatch.setitem(b2mml.RESPONSE_STATE, "running", "Sprinting")
    with pytest.raises(outbound.OutboundInvalid) as refused:
        start(people, batch, "disp_api")
    assert refused.value.verdict.codes == ["ERP_MESSAGE_INVALID"]
    assert "is not valid B2MML V0700, so the change was not made" in str(refused.value)
    assert "Sprinting" in str(refused.value)
    assert (Message.objects.count(), AuditEntry.objects.count()) == (messages_before, entries_before)
    batch.refresh_from_db()
    assert batch.state == "released" and batch.steps.get(key="disp_api").state == "pending"
    monkeypatch.undo()
    start(people, batch, "disp_api")  # the fault mended, the same start goes through and reports
    assert [m.kind for m in messages(stream="batch:ERP-0004")] == ["SyncOperationsPerformance/batch.started"]


@pytest.mark.req("A11-07")
def test_without_the_schemas_the_change_is_refused_and_the_check_says_where_they_are_missing(
    erp, settings, tmp_path
) -> None:
    people, recipe = erp_plant()
    batch = new_batch(people, recipe, number="ERP-0007", quantity="100")
    settings.BATCHLINE_B2MML_SCHEMAS = str(tmp_path)
    [error] = outbound.schemas_present()
    assert error.id == "batchline.erp.E001" and str(tmp_path) in error.msg
    with pytest.raises(outbound.OutboundInvalid) as refused:
        start(people, batch, "disp_api")
    assert refused.value.verdict.codes == ["B2MML_SCHEMAS_MISSING"]
    assert "cannot be checked, so the change was not made" in str(refused.value)
    batch.refresh_from_db()
    assert batch.state == "released" and not messages(stream="batch:ERP-0007")
    settings.OUTBOX_DESTINATIONS = {}
    assert outbound.schemas_present() == []  # no ERP, nothing to check
    settings.BATCHLINE_B2MML_SCHEMAS = ""  # back, so that the messages written before are checked


@pytest.mark.req("A11-07")
def test_the_same_event_twice_is_refused_by_its_key_not_sent_twice(erp) -> None:
    people, recipe = erp_plant()
    batch = new_batch(people, recipe, number="ERP-0005", quantity="100")
    start(people, batch, "disp_api")
    with pytest.raises(IntegrityError), transaction.atomic():
        outbound.on_batch_started(batch="ERP-0005")
    assert len(messages(stream="batch:ERP-0005")) == 1


@pytest.mark.req("A11-07")
def test_without_an_erp_destination_nothing_is_read_or_written(db, settings) -> None:
    settings.OUTBOX_DESTINATIONS = {"qms": {"type": "webhook", "url": "http://127.0.0.1:9/qms"}}
    people, recipe = erp_plant()
    batch = run_to_complete(people, recipe, number="ERP-0006")
    assert batch.state == "complete" and not Message.objects.exists()
    everything = {
        "batch": "ERP-0006",
        "consumption_id": 1,
        "material": "ERPG",
        "lot": "ERP-0006",
        "lot_id": 1,
        "containers": ["C-000005"],
        "status": "released",
        "at": batch.created_at,
    }
    with CaptureQueriesContext(connection) as queries, transaction.atomic():
        for handler in outbound.HANDLERS.values():
            handler(**everything)
    assert [q["sql"] for q in queries.captured_queries if "SAVEPOINT" not in q["sql"]] == []


@pytest.mark.req("S95-02")
def test_a_batch_made_for_an_erp_order_reports_under_the_erps_order_id(erp, plant) -> None:
    from .documents import order, send

    reply = send(plant["erp"], order("BOD-OUT-1", "4711", batch="ERP-B-101"))
    assert reply.state == "applied", reply.words
    assert outbound.performance_of("ERP-B-101").order_id == "4711"
    assert outbound.order_id_of("ERP-B-101") == "4711"
