"""Containers over the API by the code on their label: returned to stock or wasted (signed) as on a batch's
remainders panel, labels printed and reprinted as on the Materials page (issue 14)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import html
from decimal import Decimal

import pytest
from django.utils import timezone

from batchline.audit.services import Actor
from batchline.materials import services as stock
from batchline.materials.models import Container, LabelPrint, LedgerEntry, Material
from batchline.signatures.models import Signature
from tests.api.test_api import api
from tests.api.test_inventory_lots_api import Nothing
from tests.conftest import PASSWORD, entries, make_user
from tests.execution.test_engine import new_batch
from tests.execution.test_returns import dispense_and_charge_part, make_plant
from tests.masterdata.test_label_templates import RECEIVED
from tests.masterdata.test_master_data import MATERIAL, approve, change, plant, request_new  # noqa: F401

pytestmark = pytest.mark.django_db


@pytest.fixture
def remainder(db, sim):
    people, recipe = make_plant(sim)
    batch = new_batch(people, recipe, quantity="100")
    dispense_and_charge_part(people, batch, sim)  # C-000003, dispensed for the batch, holds 0.1953 kg
    return people, batch


@pytest.mark.req("WD-12", "YLD-03", "NFR-05", "P11-05", "LBL-02")
def test_what_is_left_of_a_dispensed_container_goes_back_to_stock_by_its_code_and_is_labelled(
    remainder,
) -> None:
    people, batch = remainder
    done = api(people["operator"], "post", "/inventory/containers/C-000003/return", {"location": "WH-B-03"})
    assert done.status_code == 201, done.content
    assert done.json() == {
        "container": "C-000004",
        "from_container": "C-000003",
        "lot": "MGST-L0007",
        "quantity": "0.1953",
        "unit": "kg",
        "location": "WH-B-03",
        "returned_from": batch.number,
    }
    moved = LedgerEntry.objects.filter(kind="return").order_by("id")
    assert [(e.container.code, e.quantity, e.counterpart.code, e.batch_number) for e in moved] == [
        ("C-000003", Decimal("-0.1953"), "C-000004", batch.number),
        ("C-000004", Decimal("0.1953"), "C-000003", batch.number),
    ]
    assert {e.via for e in entries(record_type="materials.ledgerentry", action="create")[-2:]} == {"api"}

    # Whoever returned it prints its label, as on the panel; stock they did not return, not.
    label = api(people["operator"], "post", "/inventory/containers/C-000004/labels", {})
    assert label.status_code == 201, label.content
    assert (label.json()["reprint"], label.json()["template"], label.json()["template_version"]) == (
        False,
        "",
        None,
    )
    refused = api(people["operator"], "post", "/inventory/containers/C-000001/labels", {})
    assert refused.status_code == 403 and "receive_material" in refused.json()["detail"]

    shown = api(people["warehouse"], "get", "/inventory/containers/c-000004").json()
    assert (shown["source"], shown["returned_from"], shown["quantity"], shown["lot_status"]) == (
        "C-000003",
        batch.number,
        "0.1953",
        "released",
    )
    assert [(p["printed_by"], p["reprint"], p["format"]) for p in shown["prints"]] == [
        ("operator", False, "pdf")
    ]


@pytest.mark.req("WD-12", "YLD-03", "P11-18", "P11-13", "NFR-05")
def test_what_is_left_goes_to_waste_over_the_api_under_the_persons_own_signature(remainder) -> None:
    people, _batch = remainder
    path = "/inventory/containers/C-000003/waste"
    check = Nothing("signature_failed")
    unsigned = api(
        people["operator"],
        "post",
        path,
        {"reason": "spilled", "signature": {"username": "operator", "password": "not-it"}},
    )
    assert unsigned.status_code == 403 and unsigned.json()["code"] == "BAD_CREDENTIALS"
    assert check.holds(), check.written()
    wasted = api(
        people["operator"],
        "post",
        path,
        {"reason": "spilled", "quantity": "0.1", "signature": {"username": "operator", "password": PASSWORD}},
    )
    assert wasted.status_code == 200, wasted.content
    assert wasted.json() == {
        "container": "C-000003",
        "lot": "MGST-L0007",
        "quantity": "0.1",
        "unit": "kg",
        "remaining": "0.0953",
    }
    entry = LedgerEntry.objects.get(kind="destroy")
    (signature,) = Signature.objects.filter(record_type="materials.ledgerentry", record_id=str(entry.pk))
    assert (signature.meaning, signature.signer_username, signature.comment) == (
        "performed",
        "operator",
        "spilled",
    )
    assert entries(record_type="materials.ledgerentry", record_id=str(entry.pk))[0].via == "api"


@pytest.mark.req("WD-12", "P11-07", "A11-05")
@pytest.mark.parametrize(
    ("who", "path", "body", "status", "code"),
    [
        ("reviewer", "C-000003/return", {"location": "WH"}, 403, "FORBIDDEN"),
        (
            "supervisor",
            "C-000003/waste",
            {"reason": "x", "signature": {"username": "supervisor", "password": PASSWORD}},
            403,
            "FORBIDDEN",
        ),
        ("operator", "C-999999/return", {"location": "WH"}, 404, None),
        ("operator", "C-000001/return", {"location": "WH"}, 409, "NOT_DISPENSED"),
        (
            "operator",
            "C-000001/waste",
            {"reason": "x", "signature": {"username": "operator", "password": PASSWORD}},
            409,
            "NOT_DISPENSED",
        ),
        ("operator", "C-000003/return", {"location": ""}, 422, None),
        ("operator", "C-000003/return", {"location": "WH", "scale": "NO-SUCH-SCALE"}, 409, None),
        ("operator", "C-000003/waste", {"reason": "spilled"}, 422, None),
        (
            "operator",
            "C-000003/waste",
            {"reason": "x", "quantity": "5", "signature": {"username": "operator", "password": PASSWORD}},
            409,
            "MORE_THAN_HELD",
        ),
    ],
)
def test_refused_returns_and_wastes_are_4xx_in_words_and_write_nothing(
    remainder, who, path, body, status, code
) -> None:
    people, _batch = remainder
    check = Nothing()
    response = api(people[who], "post", f"/inventory/containers/{path}", body)
    assert response.status_code == status, response.content
    assert response.json()["detail"]
    if code:
        assert response.json()["code"] == code
    assert check.holds(), check.written()


@pytest.mark.req("WD-12", "NFR-05")
def test_the_api_refuses_a_return_and_a_waste_with_the_sentence_the_panel_shows(remainder, client) -> None:
    people, batch = remainder
    client.force_login(people["operator"])
    sign = {"username": "operator", "password": PASSWORD}
    check = Nothing()
    for action, body, form in (
        ("return", {"location": "  "}, {"location": "  "}),
        (
            "waste",
            {"reason": "  ", "signature": sign},
            {"reason": "  ", "signer_username": "operator", "signer_password": PASSWORD},
        ),
    ):
        over_api = api(people["operator"], "post", f"/inventory/containers/C-000003/{action}", body)
        assert over_api.status_code == 409, over_api.content
        on_panel = client.post(f"/batches/{batch.number}/remainders/C-000003/{action}/", form)
        assert on_panel.status_code == 422
        for reason in over_api.json()["reasons"]:
            assert reason["message"] in html.unescape(on_panel.content.decode()), reason
    assert check.holds(), check.written()


@pytest.fixture
def labelled(plant):  # noqa: F811
    """A received container (C-000001) and the received-container template CONT-01 approved."""
    people, _site = plant
    approve(people["qa_approver"], request_new(people["admin"], "material", MATERIAL))
    approve(people["qa_approver"], request_new(people["admin"], "label_template", RECEIVED))
    clerk = make_user("stores", ["warehouse"])
    stock.lot_receive(
        actor=Actor.of(clerk, via="web"),
        material=Material.objects.get(code="LAC-200"),
        number="L-1",
        expires_at=timezone.now() + dt.timedelta(days=300),
        containers=["25"],
    )
    return people, clerk


def print_label(user, code="C-000001", **body):
    return api(user, "post", f"/inventory/containers/{code}/labels", body)


@pytest.mark.req("LBL-01", "LBL-02", "WD-07", "NFR-05", "P11-05")
def test_a_label_prints_over_the_api_to_the_approved_template_and_a_reprint_needs_its_reason(
    labelled, login
) -> None:
    people, clerk = labelled
    first = print_label(clerk)
    assert first.status_code == 201, first.content
    out = first.json()
    content = base64.b64decode(out["content_base64"])
    assert content.startswith(b"%PDF") and out["content_type"] == "application/pdf"
    assert (out["reprint"], out["template"], out["template_code"], out["template_version"]) == (
        False,
        "CONT-01 v1",
        "CONT-01",
        1,
    )
    assert out["content_sha256"] == hashlib.sha256(content).hexdigest()
    record = LabelPrint.objects.get()
    assert (record.template, record.content_sha256, record.user.username) == (
        "CONT-01 v1",
        out["content_sha256"],
        "stores",
    )
    assert entries(record_type="materials.labelprint")[0].via == "api"

    # A second print is a reprint: refused without a reason, with the page's own sentence.
    page = login(clerk)
    check = Nothing()
    bare = print_label(clerk, format="zpl")
    assert bare.status_code == 422
    assert bare.json()["detail"] == "The label of C-000001 was printed before: give the reason to reprint it."
    on_page = page.post("/containers/C-000001/label.zpl")
    assert on_page.status_code == 422 and bare.json()["detail"] in html.unescape(on_page.content.decode())
    assert check.holds(), check.written()

    # The template's next approved version is what the next print names.
    outcome = change(people["admin"], "label_template", "CONT-01", {"title": "RECEIVED GOODS"})
    approve(people["qa_approver"], outcome.request)
    again = print_label(clerk, format="zpl", reason="drum label torn")
    assert again.status_code == 201, again.content
    zpl = base64.b64decode(again.json()["content_base64"])
    assert b"^XA" in zpl and b"REPRINT" in zpl and b"RECEIVED GOODS" in zpl
    assert (again.json()["reprint"], again.json()["reason"], again.json()["template"]) == (
        True,
        "drum label torn",
        "CONT-01 v2",
    )
    shown = api(people["auditor"], "get", "/inventory/containers/C-000001").json()
    assert [(p["reprint"], p["format"], p["template_version"]) for p in shown["prints"]] == [
        (False, "pdf", 1),
        (True, "zpl", 2),
    ]


@pytest.mark.req("LBL-02", "P11-07", "A11-05")
def test_labels_print_only_for_whom_the_page_lets_and_bad_requests_print_nothing(labelled, login) -> None:
    people, clerk = labelled
    check = Nothing()
    for who in ("auditor", "qa_approver", "operator"):
        refused = print_label(people[who])
        assert refused.status_code == 403 and "receive_material" in refused.json()["detail"], who
    assert print_label(clerk, format="png").status_code == 422
    assert print_label(clerk, reason="x" * 501).status_code == 422
    missing = print_label(clerk, code="C-999999")
    assert (
        missing.status_code == 404
        and missing.json()["detail"] == "No container 'C-999999' is known here: check the label."
    )
    assert check.holds(), check.written()

    # A lot number a GS1 barcode cannot carry makes no label: refused in words, on the page too.
    stock.lot_receive(
        actor=Actor.of(clerk, via="web"),
        material=Material.objects.get(code="LAC-200"),
        number="L 2 (partial delivery)",
        expires_at=timezone.now() + dt.timedelta(days=300),
        containers=["5"],
    )
    page = login(clerk)
    check = Nothing()
    cannot = print_label(clerk, code="C-000002")
    assert cannot.status_code == 409 and cannot.json()["code"] == "LABEL_CANNOT_PRINT", cannot.content
    assert cannot.json()["detail"].startswith("The label of C-000002 cannot be printed: The lot number")
    on_page = page.post("/containers/C-000002/label.pdf")
    assert on_page.status_code == 422 and cannot.json()["detail"] in html.unescape(on_page.content.decode())
    assert check.holds(), check.written()
    assert not Container.objects.get(code="C-000002").prints.exists()
