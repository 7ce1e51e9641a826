"""Lots and their containers over the API, by material and lot number, filtered and paged (issue 14 item 1)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from batchline.audit.services import Actor
from batchline.materials import services as stock
from batchline.materials.models import Material
from tests.api.test_api import api
from tests.conftest import make_user
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
