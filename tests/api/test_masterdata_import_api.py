"""Master-data import over the API: preview per line, 422 with the refused lines, one signed request (issue 12)."""

from __future__ import annotations

import pytest
from django.db import transaction

from batchline.approvals.models import ChangeRequest, RequestState
from batchline.audit.models import AuditEntry
from batchline.equipment.models import Site
from batchline.materials.models import Material
from tests.api.test_api import api
from tests.conftest import PASSWORD, SETUP
from tests.masterdata.test_import import MATERIALS

pytestmark = pytest.mark.django_db


@pytest.fixture
def plant(personas):
    from batchline.audit.services import record_create

    with transaction.atomic():
        record_create(Site(code="main", name="Main plant"), actor=SETUP)
    return personas


def written() -> int:
    """Audit entries but the test client's own tokens."""
    return AuditEntry.objects.exclude(record_type="accounts.apitoken").count()


def body(text=MATERIALS, **extra):
    return {"file_name": "materials.csv", "format": "csv", "kind": "material", "text": text, **extra}


def signature(user, comment=""):
    return {"username": user.username, "password": PASSWORD, "comment": comment}


@pytest.mark.req("S95-03", "NFR-05")
def test_the_preview_says_per_line_what_an_import_would_do_and_writes_nothing(plant) -> None:
    mark = written()
    response = api(plant["admin"], "post", "/master-data/imports/preview", body())
    assert response.status_code == 200, response.content
    preview = response.json()
    assert preview["can_import"] and preview["counts"]["create"] == 2
    assert [(r["line"], r["operation"], r["code"]) for r in preview["rows"]] == [
        (2, "create", "LAC-200"),
        (3, "create", "MCC-102"),
    ]
    bad = api(
        plant["admin"],
        "post",
        "/master-data/imports/preview",
        body(MATERIALS.replace(",kg,Dry", ",bucket,Dry")),
    )
    assert bad.json()["refused_lines"] == [3] and "Unit: 'bucket'" in bad.json()["rows"][1]["words"][0]
    assert written() == mark


@pytest.mark.req("S95-03", "A11-14", "NFR-05")
def test_an_import_is_one_signed_request_a_qa_approver_approves(plant) -> None:
    admin, approver = plant["admin"], plant["qa_approver"]
    refused = api(
        admin,
        "post",
        "/master-data/imports",
        body(MATERIALS.replace("1825", "x"), reason="first load", signature=signature(admin)),
    )
    assert refused.status_code == 422 and refused.json()["preview"]["refused_lines"] == [3]
    assert "line 3 refused" in refused.json()["detail"] and not ChangeRequest.objects.exists()

    created = api(
        admin, "post", "/master-data/imports", body(reason="first load", signature=signature(admin))
    )
    assert created.status_code == 201, created.content
    request = created.json()["request"]
    assert request["state"] == RequestState.REQUESTED and "Import of materials.csv" in request["summary"]
    assert not Material.objects.exists()

    mine = api(
        admin, "post", f"/master-data/imports/{request['id']}/approve", {"signature": signature(admin)}
    )
    assert mine.status_code in (403, 422) and not Material.objects.exists()
    approved = api(
        approver,
        "post",
        f"/master-data/imports/{request['id']}/approve",
        {"signature": signature(approver, "checked")},
    )
    assert approved.status_code == 200, approved.content
    assert approved.json()["state"] == RequestState.APPROVED and Material.objects.count() == 2


@pytest.mark.req("S95-03", "P11-07")
def test_who_may_not_change_master_data_may_not_import_it(plant) -> None:
    response = api(plant["operator"], "post", "/master-data/imports/preview", body())
    assert response.status_code == 403
