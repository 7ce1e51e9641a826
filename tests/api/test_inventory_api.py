"""Lots and their containers over the API, by material and lot number, filtered and paged (issue 14 item 1)."""

from __future__ import annotations

import datetime as dt
from urllib.parse import quote

import pytest
from django.utils import timezone

from batchline.audit.services import Actor
from batchline.materials import services as stock
from batchline.materials.models import Material
from tests.api.test_api import api
from tests.conftest import make_user
from tests.execution.test_engine import new_batch
from tests.execution.test_returns import dispense_and_charge_part, make_plant
from tests.masterdata.test_master_data import MATERIAL, approve, plant, request_new  # noqa: F401

pytestmark = pytest.mark.django_db


@pytest.fixture
def lots(plant):  # noqa: F811
    people, _site = plant
    approve(people["qa_approver"], request_new(people["admin"], "material", MATERIAL))
    clerk = make_user("stores", ["warehouse"])
    material = Material.objects.get(code="LAC-200")
    for number, containers in (("L-2", ["25", "12.5"]), ("L-1", ["10"])):
        stock.lot_receive(
            actor=Actor.of(clerk, via="web"),
            material=material,
            number=number,
            expires_at=timezone.now() + dt.timedelta(days=300),
            containers=containers,
            supplier="DFE Pharma",
            supplier_lot=f"S-{number}",
        )
    return people, clerk


@pytest.mark.req("NFR-05", "DI-09")
def test_lots_are_listed_filtered_paged_and_found_by_material_and_number(lots) -> None:
    people, clerk = lots
    listed = api(clerk, "get", "/inventory/lots?material=LAC-200").json()
    assert [(lot["number"], lot["status"], lot["containers"], lot["quantity"]) for lot in listed] == [
        ("L-1", "quarantine", 1, "10"),
        ("L-2", "quarantine", 2, "37.5"),
    ]
    assert listed[0]["unit"] == "kg" and listed[0]["supplier_lot"] == "S-L-1"
    assert [lot["number"] for lot in api(clerk, "get", "/inventory/lots?limit=1&offset=1").json()] == ["L-2"]
    assert api(clerk, "get", "/inventory/lots?status=released").json() == []
    refused = api(clerk, "get", "/inventory/lots?status=lost")
    assert refused.status_code == 422 and "'lost' is not a lot status" in refused.json()["detail"]

    one = api(people["auditor"], "get", "/inventory/lots/LAC-200/L-2").json()
    assert [(c["code"], c["quantity"], c["unit"]) for c in one["container_list"]] == [
        ("C-000001", "25", "kg"),
        ("C-000002", "12.5", "kg"),
    ]
    assert api(clerk, "get", "/inventory/lots/LAC-200/L-9").status_code == 404
    assert api(people["outsider"], "get", "/inventory/lots").status_code == 403
    assert api(None, "get", "/inventory/lots").status_code == 401


@pytest.fixture
def moved(db, sim):
    """MGST-L0007 received in C-000001 and C-000002; 0.5013 kg weighed out of C-000001 into C-000003
    for a batch, 0.306 kg of it charged."""
    people, recipe = make_plant(sim)
    batch = new_batch(people, recipe, quantity="100")
    dispense_and_charge_part(people, batch, sim)
    return people, batch


def ledger(user, query=""):
    response = api(user, "get", f"/inventory/ledger{query}")
    assert response.status_code == 200, response.content
    return [(e["kind"], e["container"], e["quantity"], e["balance"]) for e in response.json()]


@pytest.mark.req("MAT-05", "DI-09", "NFR-05", "YLD-03")
def test_the_ledger_is_read_by_material_lot_container_kind_batch_and_time_and_paged(moved) -> None:
    people, batch = moved
    clerk = people["warehouse"]
    everything = api(clerk, "get", "/inventory/ledger?lot=MGST-L0007").json()
    assert [(e["kind"], e["container"], e["quantity"], e["balance"]) for e in everything] == [
        ("receipt", "C-000001", "10", "10"),
        ("receipt", "C-000002", "10", "10"),
        ("dispense", "C-000001", "-0.5013", "9.4987"),
        ("dispense", "C-000003", "0.5013", "0.5013"),
        ("consume", "C-000003", "-0.306", "0.1953"),
    ]
    dispensed = everything[3]
    assert (dispensed["material"], dispensed["lot"], dispensed["counterpart"], dispensed["batch_number"]) == (
        "MGST",
        "MGST-L0007",
        "C-000001",
        batch.number,
    )
    assert (dispensed["device"], dispensed["user"], dispensed["user_name"]) == (
        "SCALE-01 #SIM-0042",
        "operator",
        "Operator Person",
    )

    assert ledger(clerk, "?container=c-000003") == [
        ("dispense", "C-000003", "0.5013", "0.5013"),
        ("consume", "C-000003", "-0.306", "0.1953"),
    ]
    assert ledger(clerk, "?material=MGST&kind=receipt") == [
        ("receipt", "C-000001", "10", "10"),
        ("receipt", "C-000002", "10", "10"),
    ]
    assert len(ledger(clerk, f"?batch={batch.number}")) == 3
    assert ledger(clerk, "?material=LAC-200") == [] and ledger(clerk, "?kind=destroy") == []
    assert ledger(clerk, "?limit=2&offset=2") == [
        ("dispense", "C-000001", "-0.5013", "9.4987"),
        ("dispense", "C-000003", "0.5013", "0.5013"),
    ]
    # The time range is the entries' own server times: from the first dispense on, and before it.
    since = quote(everything[2]["at"])
    assert [k for k, *_ in ledger(clerk, f"?since={since}")] == ["dispense", "dispense", "consume"]
    assert [k for k, *_ in ledger(clerk, f"?until={since}")] == ["receipt", "receipt"]


@pytest.mark.req("A11-05", "P11-07", "P11-04")
def test_the_ledger_refuses_bad_filters_in_words_and_whom_the_materials_pages_refuse(moved) -> None:
    people, _batch = moved
    clerk = people["warehouse"]
    wrong_kind = api(clerk, "get", "/inventory/ledger?kind=theft")
    assert (
        wrong_kind.status_code == 422 and "'theft' is not a kind of movement" in wrong_kind.json()["detail"]
    )
    backwards = api(clerk, "get", "/inventory/ledger?since=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z")
    assert backwards.status_code == 422 and "comes before its start" in backwards.json()["detail"]
    for bad in ("since=yesterday", "limit=0", "limit=1001", "offset=-1", "container=" + "C" * 41):
        assert api(clerk, "get", f"/inventory/ledger?{bad}").status_code == 422, bad
    assert api(people["operator"], "get", "/inventory/ledger").status_code == 403
    assert api(None, "get", "/inventory/ledger").status_code == 401


@pytest.mark.req("DI-09")
def test_a_page_of_the_ledger_is_one_query_however_many_entries_it_shows(moved) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from batchline.api.inventory.ledger import _entry
    from batchline.materials.selectors import LedgerFilter, ledger_entries

    with CaptureQueriesContext(connection) as one_page:
        rows = [_entry(e) for e in ledger_entries(LedgerFilter(material="MGST"))[:100]]
    assert len(rows) == 5 and len(one_page) == 1
