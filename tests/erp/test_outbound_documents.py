"""The ERP documents from plain data (erp/performance.py): valid for two validators, no database."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from lxml import etree

from batchline.erp import performance as b2mml
from tests.erp.conftest import check_both, errors_of_both

NS = {"b": b2mml.NS}
T0 = dt.datetime(2026, 12, 7, 8, 0, tzinfo=dt.UTC)
BOD = b2mml.Bod(sender="plant-1", task="material.consumed", key="plant-1:erp:B-1:consumed:7", created_at=T0)


def a_batch(state: str = "running", **over) -> b2mml.Performance:
    fields = {
        "batch": "B-1",
        "order_id": "4711",
        "recipe": "RBE-1",
        "recipe_version": 3,
        "state": state,
        "state_label": "Running",
        "started_at": T0,
        "ended_at": None,
        "segments": (
            b2mml.Segment(
                "dispensing",
                "Dispensing",
                "Completed",
                T0,
                T0 + dt.timedelta(minutes=20),
                (b2mml.LotQuantity("Consumed", "PCM", "L-1", Decimal("2.000000"), "kg", ("C-000004",)),),
            ),
            b2mml.Segment("granulation", "Granulation", "Running", T0 + dt.timedelta(minutes=21)),
            b2mml.Segment("press", "Compression", "Waiting"),
        ),
    }
    return b2mml.Performance(**{**fields, **over})


@pytest.mark.req("S95-02", "A11-07")
def test_a_performance_carries_order_state_times_and_quantity_per_lot_and_validates(independent_xsd) -> None:
    xml = b2mml.sync_operations_performance(a_batch(), BOD)
    check_both(xml, independent_xsd)
    doc = etree.fromstring(xml)
    assert doc.tag == f"{{{b2mml.NS}}}SyncOperationsPerformance" and doc.get("releaseID") == "V0700"
    area = doc.find("b:ApplicationArea", NS)
    assert area.findtext("b:Sender/b:LogicalID", namespaces=NS) == "plant-1"
    assert area.findtext("b:Sender/b:TaskID", namespaces=NS) == "material.consumed"
    assert area.findtext("b:CreationDateTime", namespaces=NS) == "2026-12-07T08:00:00Z"
    assert area.findtext("b:BODID", namespaces=NS) == BOD.key
    response = doc.find("b:DataArea/b:OperationsPerformance/b:OperationsResponse", NS)
    assert response.findtext("b:OperationsRequestID", namespaces=NS) == "4711"
    assert response.findtext("b:ResponseState", namespaces=NS) == "Running"
    segments = response.findall("b:SegmentResponse", NS)
    assert [s.findtext("b:ID", namespaces=NS) for s in segments] == ["dispensing", "granulation", "press"]
    assert [s.findtext("b:SegmentState", namespaces=NS) for s in segments] == [
        "Completed",
        "Running",
        "Waiting",
    ]
    assert segments[0].findtext("b:ActualEndTime", namespaces=NS) == "2026-12-07T08:20:00Z"
    actual = segments[0].find("b:MaterialActual", NS)
    assert [
        actual.findtext(f"b:{name}", namespaces=NS)
        for name in ("MaterialDefinitionID", "MaterialLotID", "MaterialSubLotID", "MaterialUse")
    ] == ["PCM", "L-1", "C-000004", "Consumed"]
    assert [e.text for e in actual.find("b:Quantity", NS)] == ["2", "decimal", "kg"]


@pytest.mark.req("S95-02", "A11-07")
@pytest.mark.parametrize("state", list(b2mml.RESPONSE_STATE))
def test_every_batch_state_makes_a_valid_document(state, independent_xsd) -> None:
    ended = (
        T0 + dt.timedelta(hours=2) if state in ("complete", "in_review", "qa_released", "rejected") else None
    )
    xml = b2mml.sync_operations_performance(a_batch(state, ended_at=ended), BOD)
    check_both(xml, independent_xsd)
    # V0700 spells the performance's end "Endtime" and the response's "EndTime": both are written.
    perf = etree.fromstring(xml).find("b:DataArea/b:OperationsPerformance", NS)
    assert (perf.find("b:Endtime", NS) is not None) == (ended is not None)
    assert (perf.find("b:OperationsResponse/b:EndTime", NS) is not None) == (ended is not None)


@pytest.mark.req("A11-07")
def test_both_validators_refuse_a_document_the_schema_does_not_allow(independent_xsd) -> None:
    # The checks are not vacuous: a response state outside V0700's list fails both.
    wrong = b2mml.Segment("granulation", "Granulation", "Sprinting")
    lxml_errors, xmlschema_errors = errors_of_both(
        b2mml.sync_operations_performance(a_batch(segments=(wrong,)), BOD), independent_xsd
    )
    assert lxml_errors and xmlschema_errors
    assert "Sprinting" in lxml_errors[0]


@pytest.mark.req("S95-02", "A11-07")
def test_a_lot_carries_status_disposition_dates_and_containers_and_validates(independent_xsd) -> None:
    lot = b2mml.LotState(
        material="RBE",
        material_name="Review test 500 mg",
        lot="B-1",
        status="released",
        unit="kg",
        containers=(
            b2mml.Container("C-000005", Decimal("1.200000"), "kg"),
            b2mml.Container("C-000006", Decimal("0.950000"), "kg"),
        ),
        expires_at=T0 + dt.timedelta(days=730),
        potency=Decimal("99.500"),
        produced_by_batch="B-1",
        order_id="4711",
    )
    xml = b2mml.sync_material_lot(lot, BOD)
    check_both(xml, independent_xsd)
    ml = etree.fromstring(xml).find("b:DataArea/b:MaterialLot", NS)
    assert ml.findtext("b:Status", namespaces=NS) == "released"
    assert ml.findtext("b:Disposition", namespaces=NS) == "UnRestricted"
    props = {
        p.findtext("b:ID", namespaces=NS): p.findtext("b:Value/b:ValueString", namespaces=NS)
        for p in ml.findall("b:MaterialLotProperty", NS)
    }
    assert props == {
        "ExpiryDate": "2028-12-06T08:00:00Z",
        "Potency": "99.5",
        "ProducedByBatch": "B-1",
        "OperationsRequestID": "4711",
    }
    assert [s.findtext("b:ID", namespaces=NS) for s in ml.findall("b:MaterialSubLot", NS)] == [
        "C-000005",
        "C-000006",
    ]
    assert ml.findtext("b:Quantity/b:QuantityString", namespaces=NS) == "2.15"
    quarantined = b2mml.sync_material_lot(
        b2mml.LotState("PCM", "Paracetamol", "L-1", "quarantine", "kg", ()), BOD
    )
    check_both(quarantined, independent_xsd)
    assert b"<Disposition>Restricted</Disposition>" in quarantined
    assert b"<QuantityString>0</QuantityString>" in quarantined  # an empty lot says so


@pytest.mark.req("A11-07")
def test_a_control_character_in_a_lot_number_is_written_visibly_not_refused(independent_xsd) -> None:
    # A scanned GS1 lot number may hold the group separator, which XML 1.0 cannot carry at all.
    lot = b2mml.LotState("PCM", "Paracetamol", "L\x1d42", "released", "kg", ())
    xml = b2mml.sync_material_lot(lot, BOD)
    check_both(xml, independent_xsd)
    assert "<ID>L␝42</ID>" in xml.decode()


def test_a_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        b2mml.when(dt.datetime(2026, 1, 1))


def test_quantities_are_written_as_recorded_without_exponents() -> None:
    assert [b2mml.number(Decimal(v)) for v in ("2.000000", "0.205000", "1E+3", "-0.000", "0.000001")] == [
        "2",
        "0.205",
        "1000",
        "0",
        "0.000001",
    ]
