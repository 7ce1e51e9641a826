"""Master data over the API: the services the pages use, with the same approvals, refusals and audit."""

from __future__ import annotations

import pytest

from batchline.audit.models import AuditEntry
from batchline.equipment.models import EquipmentClass
from batchline.materials.models import Material
from tests.api.test_api import api
from tests.conftest import PASSWORD
from tests.masterdata.test_master_data import MATERIAL, SCALE_CLASS

pytestmark = pytest.mark.django_db


def signature(user, comment=""):
    return {"username": user.username, "password": PASSWORD, "comment": comment}


@pytest.mark.req("A11-14", "P11-05", "NFR-05")
def test_a_material_is_requested_approved_read_and_changed_over_the_api(plant) -> None:
    people, _site = plant
    admin, approver = people["admin"], people["qa_approver"]
    created = api(
        admin,
        "post",
        "/master-data/material",
        {"values": MATERIAL, "reason": "new excipient for PCM-500", "signature": signature(admin)},
    )
    assert created.status_code == 201, created.content
    request = created.json()
    assert (request["operation"], request["state"], request["code"]) == ("create", "requested", "LAC-200")
    assert [r["number"] for r in api(approver, "get", "/master-data/changes").json()] == [request["number"]]
    assert api(admin, "get", "/master-data/material/LAC-200").status_code == 404

    refused = api(
        admin, "post", f"/master-data/changes/{request['id']}/approve", {"signature": signature(admin)}
    )
    assert refused.status_code == 403  # an administrator holds no approval
    approved = api(
        approver,
        "post",
        f"/master-data/changes/{request['id']}/approve",
        {"signature": signature(approver, "ok")},
    )
    assert approved.status_code == 200 and approved.json()["applied_at"] is not None
    assert len(approved.json()["signatures"]) == 2

    item = api(people["auditor"], "get", "/master-data/material/LAC-200").json()
    assert item["values"]["shelf_life_days"] == 1095 and item["shown"]["shelf_life_days"] == "1095 days"
    assert item["history"][0]["action"] == "master_create"

    renamed = api(  # the name prints on every container label: it waits for approval too
        admin,
        "post",
        "/master-data/material/LAC-200/change",
        {"values": {"name": "Lactose 200M"}, "reason": "r"},
    )
    assert renamed.status_code == 422 and "signature" in renamed.json()["detail"]
    unsigned = api(
        admin, "post", "/master-data/material/LAC-200/change", {"values": {"retest_days": 180}, "reason": "r"}
    )
    assert unsigned.status_code == 422 and "signature" in unsigned.json()["detail"]
    gmp = api(
        admin,
        "post",
        "/master-data/material/LAC-200/change",
        {"values": {"retest_days": 180}, "reason": "stability data", "signature": signature(admin)},
    )
    assert gmp.status_code == 200 and gmp.json()["request"]["summary"].endswith(
        "Retest interval 365 days → 180 days"
    )
    assert Material.objects.get(code="LAC-200").retest_days == 365


@pytest.mark.req("P11-07", "P11-04")
def test_who_may_read_and_who_may_request(plant) -> None:
    people, _site = plant
    assert api(None, "get", "/master-data/kinds").status_code == 401
    kinds = {k["name"]: k for k in api(people["operator"], "get", "/master-data/kinds").json()}
    assert "station" in kinds and "material" not in kinds  # an operator reads the plant, not the materials
    assert api(people["operator"], "get", "/master-data/material").status_code == 403
    body = {"values": SCALE_CLASS, "reason": "r", "signature": signature(people["operator"])}
    assert api(people["operator"], "post", "/master-data/equipment_class", body).status_code == 403
    assert api(people["admin"], "get", "/master-data/unicorn").status_code == 404
    assert not EquipmentClass.objects.filter(code="bench-scale").exists()


def test_a_refusal_is_in_words_and_writes_nothing(plant) -> None:
    people, _site = plant
    admin = people["admin"]
    mark = AuditEntry.objects.count()
    response = api(
        admin,
        "post",
        "/master-data/material",
        {"values": {**MATERIAL, "shelf_life_days": -3}, "reason": "r", "signature": signature(admin)},
    )
    assert response.status_code == 422
    assert response.json()["detail"] == "Shelf life: '-3' is not a whole number of days."
    written = AuditEntry.objects.order_by("id")[mark:]
    assert [e.record_type for e in written] == ["accounts.apitoken"]  # the test client's token, no more


@pytest.mark.req("A11-14", "MBR-02")
def test_a_change_request_says_what_it_affects(plant) -> None:
    people, _site = plant
    admin, approver = people["admin"], people["qa_approver"]
    created = api(
        admin,
        "post",
        "/master-data/material",
        {"values": MATERIAL, "reason": "r", "signature": signature(admin)},
    )
    api(
        approver,
        "post",
        f"/master-data/changes/{created.json()['id']}/approve",
        {"signature": signature(approver)},
    )
    body = {"values": {"shelf_life_days": 730}, "reason": "stability data", "signature": signature(admin)}
    request = api(admin, "post", "/master-data/material/LAC-200/change", body).json()["request"]
    assert request["affects"] == ["0 lots (0 released)"]
    waiting = api(approver, "get", "/master-data/changes").json()
    assert waiting[0]["affects"] == ["0 lots (0 released)"]
