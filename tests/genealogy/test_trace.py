"""Output lots, production, backward and forward traces and recall queries on a real database."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import Min
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from batchline.audit.verify import verify
from batchline.equipment.models import LogbookEntry
from batchline.execution import services as ex
from batchline.execution.models import Batch, BatchStep
from batchline.genealogy import selectors as gen
from batchline.materials import selectors as msel
from batchline.materials.models import Container, LedgerEntry, Lot, Material
from batchline.recipes.models import MasterRecipe
from batchline.rules import materials as material_rules
from tests.execution.test_engine import A, sign, start
from tests.genealogy import scenario

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(db):
    return scenario.seed()


def numbers(trace: gen.Trace) -> tuple[set[str], set[str]]:
    return {lot.number for lot in trace.lots}, {b.number for b in trace.batches}


@pytest.mark.req("GEN-01")
def test_a_batch_registers_its_output_lot_in_quarantine_named_after_it(world) -> None:
    lot = msel.output_lot("BL1")
    assert lot is not None
    assert (lot.number, lot.material.code, lot.status, lot.produced_by_batch) == (
        "BL1",
        "BLEND",
        "quarantine",
        "BL1",
    )
    # A product never registered as a material becomes a finished material on its first batch;
    # without a shelf life its lot has no expiry (none is made up) and cannot be used until QA
    # sets one, and it is never called expired.
    assert lot.material.kind == "finished" and lot.expires_at is None
    verdict = material_rules.lot_usable(lot.view(), timezone.now())
    assert "LOT_NO_EXPIRY" in verdict.codes and "LOT_EXPIRED" not in verdict.codes
    # An intermediate registered beforehand keeps its kind, unit and shelf life, and its lot
    # expires that long after its batch started (the date of manufacture).
    g1 = msel.output_lot("G1")
    assert g1 is not None and g1.material.kind == "intermediate"
    started = BatchStep.objects.filter(batch__number="G1").aggregate(first=Min("started_at"))["first"]
    assert g1.expires_at == started + dt.timedelta(days=30)
    assert Material.objects.filter(code="GRAN").count() == 1
    assert msel.output_lot("NO-SUCH") is None


@pytest.mark.req("GEN-01")
def test_production_fills_new_containers_with_a_produce_entry_each_and_the_trail_verifies(world) -> None:
    lot = Lot.objects.get(number="G2")
    containers = list(lot.containers.order_by("code"))
    assert [c.quantity for c in containers] == [Decimal(0), Decimal(0)]  # both consumed by BL1 since
    produced = LedgerEntry.objects.filter(container__lot=lot, kind="produce").order_by("id")
    assert [(e.quantity, e.balance, e.batch_number, e.user.username) for e in produced] == [
        (Decimal(6), Decimal(6), "G2", "operator2"),
        (Decimal(4), Decimal(4), "G2", "operator2"),
    ]
    report = verify()
    assert report.ok, report.findings


@pytest.mark.req("GEN-01")
def test_production_is_refused_with_a_reason_and_writes_nothing(world) -> None:
    people = world["people"]
    p1 = Batch.objects.get(number="P1")
    before = Container.objects.count(), LedgerEntry.objects.count()
    for quantities, unit, code in (
        (["-1"], "kg", "NOT_POSITIVE"),
        (["abc"], "kg", "NOT_A_NUMBER"),
        ([], "kg", "NO_CONTAINERS"),
        (["1"], "tablet", "WRONG_UNIT"),
        (["1"], "blorbs", "UNKNOWN_UNIT"),
    ):
        with pytest.raises(ex.ExecutionRefused) as refused:
            ex.batch_produce(actor=A(people["operator"]), batch=p1, quantities=quantities, unit=unit)
        assert refused.value.verdict.codes == [code], quantities
    # A batch that is not running records no output.
    recipe = MasterRecipe.objects.get(code="R-PACK", status="effective")
    fresh = ex.batch_create(
        actor=A(people["supervisor"]), recipe=recipe, number="P9", planned_quantity=Decimal(1)
    )
    with pytest.raises(ex.ExecutionRefused) as refused:
        ex.batch_produce(actor=A(people["operator"]), batch=fresh, quantities=["1"], unit="kg")
    assert refused.value.verdict.codes == ["BATCH_NOT_RUNNING"]
    assert (Container.objects.count(), LedgerEntry.objects.count()) == before
    # Grams convert into the material's kilograms.
    ex.batch_command(
        actor=A(people["supervisor"]), batch=fresh, command="release", signer=sign(people["supervisor"])
    )
    start(people, fresh, "work")
    made = ex.batch_produce(actor=A(people["operator"]), batch=fresh, quantities=["1500"], unit="g")
    assert [(c.quantity, c.unit) for c in made] == [(Decimal("1.5"), "kg")]


@pytest.mark.req("GEN-02", "GEN-01")
def test_backward_trace_five_levels_deep_through_a_merge(world) -> None:
    trace = gen.backward(world["lots"]["P1"].pk)
    lots, batches = numbers(trace)
    assert lots == {"P1", "T1", "C1", "BL1", "G1", "G2", "A1", "A2", "E1"}
    assert batches == {"P1", "T1", "C1", "BL1", "G1", "G2"}  # not P2, the other half of the split
    depth = {lot.number: lot.depth for lot in trace.lots}
    assert depth == {"P1": 0, "T1": 1, "C1": 2, "BL1": 3, "G1": 4, "G2": 4, "A1": 5, "A2": 5, "E1": 5}
    consumed = {(f.lot_id, f.batch_number): f.quantity for f in trace.flows if f.kind == "consumed"}
    lot_id = {lot.number: lot.id for lot in trace.lots}
    # The merge: both granulates in the blend, G2's two containers summed.
    assert consumed[(lot_id["G1"], "BL1")] == Decimal(10) and consumed[(lot_id["G2"], "BL1")] == Decimal(10)
    # The split: A1 went into both granulations, one container each.
    assert consumed[(lot_id["A1"], "G1")] == consumed[(lot_id["A1"], "G2")] == Decimal(5)
    produced = {(f.batch_number, f.lot_id): f.quantity for f in trace.flows if f.kind == "produced"}
    assert produced[("T1", lot_id["T1"])] == Decimal(20) and produced[("G2", lot_id["G2"])] == Decimal(10)
    a1 = sorted(c.code for c in trace.containers if c.lot_id == lot_id["A1"])
    assert a1 == sorted(Container.objects.filter(lot__number="A1").values_list("code", flat=True))
    assert {(u.code, u.batch_number) for u in trace.equipment} == {("GRAN-01", "G1"), ("GRAN-01", "G2")}
    assert all(u.started_at and u.ended_at and u.started_at < u.ended_at for u in trace.equipment)
    parts = {(p.username, p.batch_number): p.parts for p in trace.people}
    assert parts[("operator", "G1")] == ("moved material", "performed")
    assert parts[("operator2", "T1")] == ("moved material",)


@pytest.mark.req("GEN-02", "GEN-01")
def test_forward_trace_from_a_raw_lot_reaches_every_batch_and_lot_through_a_split(world) -> None:
    lots, batches = numbers(gen.forward(world["lots"]["A1"].pk))
    assert lots == {"A1", "G1", "G2", "BL1", "C1", "T1", "P1", "P2"}
    assert batches == {"G1", "G2", "BL1", "C1", "T1", "P1", "P2"}
    trace = gen.forward(world["lots"]["A2"].pk)
    lots, batches = numbers(trace)
    assert lots == {"A2", "G2", "BL1", "C1", "T1", "P1", "P2"}  # not G1: A2 never went there
    assert "G1" not in batches
    assert {lot.number: lot.depth for lot in trace.lots}["P2"] == 5
    # From a finished lot nothing further is reached; backward from a raw lot only itself.
    assert numbers(gen.forward(world["lots"]["P1"].pk)) == ({"P1"}, set())
    assert numbers(gen.backward(world["lots"]["A1"].pk)) == ({"A1"}, set())


@pytest.mark.req("GEN-02")
def test_a_trace_reads_in_the_same_number_of_queries_at_any_depth(world) -> None:
    with CaptureQueriesContext(connection) as deep:
        gen.backward(world["lots"]["P1"].pk)
    g1 = Lot.objects.get(number="G1").pk
    with CaptureQueriesContext(connection) as shallow:
        gen.backward(g1)
    assert len(deep) == len(shallow) <= 9
    with CaptureQueriesContext(connection) as forward:
        gen.forward(world["lots"]["A1"].pk)
    assert len(forward) == len(deep)


@pytest.mark.req("GEN-03")
def test_recall_by_supplier_lot_names_every_lot_it_reached(world) -> None:
    recall = gen.recall_supplier_lot("SUP-A-78")
    assert {lot.number for lot in recall.trace.lots} == {"A2", "G2", "BL1", "C1", "T1", "P1", "P2"}
    assert recall.start_lots == [world["lots"]["A2"].pk]
    assert gen.recall_supplier_lot("NOBODY").trace.lots == []


@pytest.mark.req("GEN-03")
def test_recall_by_equipment_and_time_window(world) -> None:
    uses = {
        (e.batch_number, e.kind): e.at
        for e in LogbookEntry.objects.filter(equipment__code="GRAN-01", kind__in=["use_start", "use_end"])
    }
    g1_end, g2_start = uses[("G1", "use_end")], uses[("G2", "use_start")]
    assert g1_end < g2_start
    later = timezone.now() + dt.timedelta(hours=1)
    both = gen.recall_equipment("GRAN-01", g1_end - dt.timedelta(days=1), later)
    assert both.batches_on_unit == ["G1", "G2"]
    assert {lot.number for lot in both.trace.lots} == {"G1", "G2", "BL1", "C1", "T1", "P1", "P2"}
    after_g1 = gen.recall_equipment("GRAN-01", g1_end + dt.timedelta(microseconds=1), later)
    assert after_g1.batches_on_unit == ["G2"]
    assert "G1" not in {lot.number for lot in after_g1.trace.lots}
    # A window that ends before G2 began: only G1, whose use ended at its edge.
    only_g1 = gen.recall_equipment("GRAN-01", g1_end, g2_start - dt.timedelta(microseconds=1))
    assert only_g1.batches_on_unit == ["G1"]
    before = gen.recall_equipment("GRAN-01", later - dt.timedelta(days=9), g1_end - dt.timedelta(days=1))
    assert before.batches_on_unit == [] and before.trace.lots == []
    assert gen.recall_equipment("NO-UNIT", g1_end, later).batches_on_unit == []


@pytest.mark.req("GEN-02")
def test_the_demo_data_shows_a_genealogy(db) -> None:
    from batchline.web.management.commands import demo

    demo.seed()
    made = Lot.objects.get(number="PCM-0000")
    assert numbers(gen.backward(made.pk)) == ({"PCM-0000", "PCM-L0100", "MGST-L0007"}, {"PCM-0000"})
    # The demo's own batch has its output lot too, empty until it runs.
    assert msel.output_lot("PCM-0001") is not None
    # PCM-0000 drew on its own paracetamol lot: the drums PCM-0001 weighs from are untouched.
    assert [c.quantity for c in Lot.objects.get(number="PCM-L0101").containers.order_by("code")] == [
        60,
        60,
        25,
    ]
