"""Importing master data on the page: a file previewed line by line, signed, approved by QA on the requests page."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from batchline.approvals.models import ChangeRequest
from batchline.materials.models import Material
from tests.conftest import PASSWORD
from tests.masterdata.test_import import MATERIALS

pytestmark = pytest.mark.django_db


def client_of(user) -> Client:
    c = Client()
    c.force_login(user)
    return c


@pytest.mark.req("S95-03", "A11-14")
def test_an_engineer_imports_a_file_on_the_page_and_qa_approves_it_there(plant) -> None:
    people, _site = plant
    engineer = client_of(people["admin"])
    upload = SimpleUploadedFile("materials.csv", MATERIALS.encode(), content_type="text/csv")
    page = engineer.post(
        "/master-data/import/file/",
        {"format": "csv", "kind": "material", "file": upload, "action": "preview"},
    )
    html = page.content.decode()
    assert (
        page.status_code == 200
        and "line 2: new material LAC-200" in html
        and "line 3: new material MCC-102" in html
    )
    assert not Material.objects.exists()  # a preview writes nothing

    bad = MATERIALS + "GEL-1,Gelatin,excipient,bucket,,10,\n"
    refused = engineer.post(
        "/master-data/import/file/",
        {
            "format": "csv",
            "kind": "material",
            "text": bad,
            "file_name": "m.csv",
            "action": "import",
            "reason": "load",
            "signer_username": "admin",
            "signer_password": PASSWORD,
        },
    )
    assert refused.status_code == 422 and "line 4 refused" in refused.content.decode()
    assert not ChangeRequest.objects.exists()

    done = engineer.post(
        "/master-data/import/file/",
        {
            "format": "csv",
            "kind": "material",
            "text": MATERIALS,
            "file_name": "materials.csv",
            "action": "import",
            "reason": "plant first load",
            "signer_username": "admin",
            "signer_password": PASSWORD,
        },
    )
    assert done.status_code == 302, done.content.decode()[:2000]
    request = ChangeRequest.objects.get(kind="master_data_import")

    qa = client_of(people["qa_approver"])
    changes = qa.get("/master-data/changes/").content.decode()
    assert f'data-request="{request.number}"' in changes and "line 2: Material LAC-200: new" in changes
    assert (
        client_of(people["admin"])
        .post(
            f"/master-data/imports/{request.pk}/approve/",
            {"signer_username": "admin", "signer_password": PASSWORD},
        )
        .status_code
        == 403
    )  # the requester holds no approval
    approved = qa.post(
        f"/master-data/imports/{request.pk}/approve/",
        {"signer_username": "qa_approver", "signer_password": PASSWORD},
    )
    assert approved.status_code == 302
    assert set(Material.objects.values_list("code", flat=True)) == {"LAC-200", "MCC-102"}


@pytest.mark.req("P11-07")
def test_only_who_may_request_master_data_reaches_the_import_page(plant) -> None:
    people, _site = plant
    assert client_of(people["operator"]).get("/master-data/import/").status_code == 403
    assert client_of(people["auditor"]).get("/master-data/import/").status_code == 403
    assert client_of(people["admin"]).get("/master-data/import/").status_code == 200
