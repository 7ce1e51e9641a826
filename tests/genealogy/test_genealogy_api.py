"""Traces, recall queries and recorded output over the API (GEN-01…03)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from urllib.parse import urlencode

import pytest
from django.utils import timezone

from batchline.execution.models import Batch
from batchline.materials.models import LedgerEntry
from tests.api.test_api import api
from tests.genealogy import scenario

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(db):
    return scenario.seed()


@pytest.mark.req("GEN-02")
def test_backward_and_forward_traces_over_the_api(world) -> None:
    people, lots = world["people"], world["lots"]
    backward = api(people["auditor"], "get", f"/genealogy/lots/{lots['P1'].pk}/backward")
    assert backward.status_code == 200, backward.content
    body = backward.json()
    assert body["direction"] == "backward" and body["roots"] == [lots["P1"].pk]
    assert {lot["number"] for lot in body["lots"]} == {"P1", "T1", "C1", "BL1", "G1", "G2", "A1", "A2", "E1"}
    assert {e["code"] for e in body["equipment"]} == {"GRAN-01"}
    assert {p["username"] for p in body["people"]} >= {"operator", "operator2"}
    forward = api(people["supervisor"], "get", f"/genealogy/lots/{lots['A1'].pk}/forward").json()
    assert {b["number"] for b in forward["batches"]} == {"G1", "G2", "BL1", "C1", "T1", "P1", "P2"}
    # The warehouse receives lots but does not trace them; an unknown lot is 404.
    assert api(people["warehouse"], "get", f"/genealogy/lots/{lots['A1'].pk}/forward").status_code == 403
    assert api(people["auditor"], "get", "/genealogy/lots/999999/forward").status_code == 404
    assert api(None, "get", f"/genealogy/lots/{lots['A1'].pk}/forward").status_code == 401


@pytest.mark.req("GEN-03")
def test_recall_by_supplier_lot_and_by_unit_and_window_over_the_api(world) -> None:
    auditor = world["people"]["auditor"]
    by_supplier = api(auditor, "get", "/genealogy/recall?" + urlencode({"supplier_lot": "SUP-E-1"})).json()
    assert {lot["number"] for lot in by_supplier["trace"]["lots"]} == {
        "E1",
        "G1",
        "BL1",
        "C1",
        "T1",
        "P1",
        "P2",
    }
    now = timezone.now()
    window = {
        "equipment": "GRAN-01",
        "start": (now - dt.timedelta(hours=1)).isoformat(),
        "end": now.isoformat(),
    }
    by_unit = api(auditor, "get", "/genealogy/recall?" + urlencode(window)).json()
    assert by_unit["batches_on_unit"] == ["G1", "G2"]
    assert {lot["number"] for lot in by_unit["trace"]["lots"]} >= {"G1", "G2", "P2"}
    for bad in (
        {},
        {"supplier_lot": "SUP-E-1", "equipment": "GRAN-01"},
        {"equipment": "GRAN-01"},
        {"equipment": "GRAN-01", "start": now.isoformat(), "end": (now - dt.timedelta(hours=1)).isoformat()},
    ):
        refused = api(auditor, "get", "/genealogy/recall?" + urlencode(bad))
        assert refused.status_code == 422, bad


@pytest.mark.req("GEN-01")
def test_output_is_recorded_over_the_api_and_refused_with_reasons(world) -> None:
    people = world["people"]
    before = LedgerEntry.objects.count()
    # P2 still runs: its one step was started and never completed.
    assert Batch.objects.get(number="P2").state == "running"
    made = api(
        people["operator"], "post", "/genealogy/batches/P2/produce", {"quantities": ["2.5"], "unit": "kg"}
    )
    assert made.status_code == 201, made.content
    assert [(c["lot"], Decimal(c["quantity"]), c["unit"]) for c in made.json()] == [
        ("P2", Decimal("2.5"), "kg")
    ]
    assert LedgerEntry.objects.filter(kind="produce", batch_number="P2").count() == 2
    refused = api(
        people["operator"], "post", "/genealogy/batches/P2/produce", {"quantities": ["1"], "unit": "tablet"}
    )
    assert refused.status_code == 409 and refused.json()["code"] == "WRONG_UNIT", refused.content
    assert (
        api(
            people["auditor"], "post", "/genealogy/batches/P2/produce", {"quantities": ["1"], "unit": "kg"}
        ).status_code
        == 403
    )
    assert (
        api(
            people["operator"], "post", "/genealogy/batches/NOPE/produce", {"quantities": ["1"], "unit": "kg"}
        ).status_code
        == 404
    )
    assert LedgerEntry.objects.count() == before + 1
