"""Warehouse and QA pages: receive, lots, labels with reprint reasons, signed disposition."""

from __future__ import annotations

import datetime as dt
import html

import pytest
from django.utils import timezone

from batchline.audit.services import Actor
from batchline.materials import services as stock
from batchline.materials.models import LabelPrint, LedgerEntry, Lot
from tests.conftest import PASSWORD, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def site(db, login):
    people = {
        n: make_user(n, [r])
        for n, r in (("clerk", "warehouse"), ("qa", "qa_approver"), ("auditor", "auditor"))
    }
    material = stock.material_create(
        actor=Actor.of(people["clerk"], via="web"),
        code="PCM",
        name="Paracetamol",
        kind="api",
        unit="kg",
        gtin="09501101530003",
    )
    return people, material


def local(delta: dt.timedelta) -> str:
    return timezone.localtime(timezone.now() + delta).strftime("%Y-%m-%dT%H:%M")


@pytest.mark.req("MAT-01", "MAT-05", "A11-05")
def test_the_warehouse_receives_on_the_page_and_bad_input_receives_nothing(site, login) -> None:
    people, material = site
    clerk = login(people["clerk"])
    good = {
        "material": material.pk,
        "number": "L-1",
        "expires_at": local(dt.timedelta(days=400)),
        "containers": "25 25 10",
    }
    for bad, problem in (
        ({"containers": "25 0"}, "must be more than zero"),
        ({"containers": "25 -3"}, "must be more than zero"),
        ({"expires_at": ""}, "Give the expiry date"),
        ({"expires_at": "31.02.2027"}, "is not a date and time"),
        ({"material": ""}, "Choose the material"),
        ({"potency": "lots"}, "is not a number"),
    ):
        response = clerk.post("/lots/receive/", {**good, **bad})
        assert response.status_code == 422 and problem in html.unescape(response.content.decode()), bad
    assert not Lot.objects.exists() and not LedgerEntry.objects.exists()
    response = clerk.post("/lots/receive/", good)
    lot = Lot.objects.get()
    assert response.url == f"/lots/{lot.pk}/" and lot.status == "quarantine"
    page = html.unescape(clerk.get(response.url).content.decode())
    assert "C-000001" in page and "is in quarantine: only released lots can be used" in page


@pytest.mark.req("WD-07", "LBL-02", "P11-04")
def test_a_label_prints_once_and_a_reprint_needs_a_reason_and_is_logged_as_one(site, login) -> None:
    people, material = site
    clerk = login(people["clerk"])
    stock.lot_receive(
        actor=Actor.of(people["clerk"], via="web"),
        material=material,
        number="L-2",
        expires_at=timezone.now() + dt.timedelta(days=99),
        containers=["5"],
    )
    first = clerk.post("/containers/C-000001/label.pdf")
    assert first.status_code == 200 and first.content.startswith(b"%PDF")
    again = clerk.post("/containers/C-000001/label.zpl")
    assert again.status_code == 422 and "give the reason to reprint it" in html.unescape(
        again.content.decode()
    )
    reprint = clerk.post("/containers/C-000001/label.zpl", {"reason": "label torn"})
    assert reprint.status_code == 200 and b"REPRINT" in reprint.content and b"^XA" in reprint.content
    assert [(p.reprint, p.reason, p.format) for p in LabelPrint.objects.order_by("id")] == [
        (False, "", "pdf"),
        (True, "label torn", "zpl"),
    ]


@pytest.mark.req("MAT-01", "P11-13", "P11-07")
def test_qa_releases_a_lot_on_its_page_with_a_signature_and_others_cannot(site, login) -> None:
    people, material = site
    lot = stock.lot_receive(
        actor=Actor.of(people["clerk"], via="web"),
        material=material,
        number="L-3",
        expires_at=timezone.now() + dt.timedelta(days=99),
        containers=["5"],
    )
    auditor = login(people["auditor"], None)
    assert auditor.get(f"/lots/{lot.pk}/").status_code == 200
    assert auditor.get("/lots/receive/").status_code == 403
    assert auditor.post(f"/lots/{lot.pk}/disposition/", {"status": "released"}).status_code == 403
    qa = login(people["qa"], None)
    unsigned = qa.post(
        f"/lots/{lot.pk}/disposition/",
        {"status": "released", "reason": "CoA ok", "signer_username": "qa", "signer_password": "wrong"},
    )
    assert unsigned.status_code == 422
    lot.refresh_from_db()
    assert lot.status == "quarantine"
    signed = qa.post(
        f"/lots/{lot.pk}/disposition/",
        {"status": "released", "reason": "CoA ok", "signer_username": "qa", "signer_password": PASSWORD},
    )
    assert signed.status_code == 302
    lot.refresh_from_db()
    assert lot.status == "released"
    page = html.unescape(qa.get(f"/lots/{lot.pk}/").content.decode())
    assert "Usable now." in page and "Released" in page
