"""What is left of a batch's dispensed containers, over the API: listed, returned to stock, wasted (signed)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from batchline.audit.models import AuditEntry
from batchline.materials.models import Container, LedgerEntry
from batchline.signatures.models import Signature
from tests.api.test_api import api
from tests.conftest import PASSWORD
from tests.execution.test_engine import new_batch
from tests.execution.test_returns import dispense_and_charge_part, make_plant

pytestmark = pytest.mark.django_db


@pytest.fixture
def remainder(db, sim):
    people, recipe = make_plant(sim)
    batch = new_batch(people, recipe, quantity="100")
    dispense_and_charge_part(people, batch, sim)  # C-000003 holds 0.1953 kg
    return people, batch, sim


def written() -> tuple[int, int, int]:
    return LedgerEntry.objects.count(), Container.objects.count(), Signature.objects.count()


@pytest.mark.req("WD-12", "NFR-05", "P11-07")
def test_the_remainder_is_listed_and_returned_to_stock_over_the_api(remainder) -> None:
    people, batch, sim = remainder
    listed = api(people["operator"], "get", f"/batches/{batch.number}/containers")
    assert listed.status_code == 200
    assert listed.json() == [
        {
            "container": "C-000003",
            "lot": "MGST-L0007",
            "material_code": "MGST",
            "material_name": "Magnesium stearate",
            "quantity": "0.1953",
            "unit": "kg",
            "location": "WH-B-03",
        }
    ]
    sim.place("150.0")
    partial = api(
        people["warehouse"],
        "post",
        f"/batches/{batch.number}/containers/C-000003/return",
        {"location": "WH-B-03", "scale": "SCALE-01"},
    )
    assert partial.status_code == 409 and partial.json()["code"] == "REASON_REQUIRED", partial.content
    done = api(
        people["warehouse"],
        "post",
        f"/batches/{batch.number}/containers/C-000003/return",
        {"location": "WH-B-03", "scale": "SCALE-01", "reason": "dust in the scoop: wasted next"},
    )
    assert done.status_code == 201, done.content
    assert done.json() == {
        "container": "C-000004",
        "from_container": "C-000003",
        "lot": "MGST-L0007",
        "quantity": "0.15",
        "unit": "kg",
        "location": "WH-B-03",
        "returned_from": batch.number,
    }
    via = AuditEntry.objects.filter(record_type="materials.ledgerentry", action="create").latest("id").via
    assert via == "api"


@pytest.mark.req("WD-12", "NFR-05", "P11-18")
def test_the_remainder_is_wasted_with_a_signature_over_the_api(remainder) -> None:
    people, batch, _sim = remainder
    path = f"/batches/{batch.number}/containers/C-000003/waste"
    before = written()
    unsigned = api(
        people["operator"],
        "post",
        path,
        {"reason": "spilled", "signature": {"username": "operator", "password": "wrong-one"}},
    )
    assert unsigned.status_code == 403 and written() == before
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
    assert Signature.objects.filter(record_type="materials.ledgerentry", meaning="performed").count() == 1


@pytest.mark.req("WD-12", "P11-07", "A11-05")
@pytest.mark.parametrize(
    ("who", "path", "body", "status", "code"),
    [
        ("reviewer", "C-000003/return", {"location": "WH"}, 403, "FORBIDDEN"),
        ("supervisor", "C-000003/return", {"location": "WH"}, 403, "FORBIDDEN"),
        ("operator", "C-999999/return", {"location": "WH"}, 409, "UNKNOWN_CONTAINER"),
        ("operator", "C-000002/return", {"location": "WH"}, 409, "NOT_DISPENSED_FOR_BATCH"),
        ("operator", "C-000003/return", {"location": ""}, 422, None),
        ("operator", "C-000003/return", {"location": "x" * 61}, 422, None),
        (
            "operator",
            "C-000003/waste",
            {"reason": "x", "quantity": "1e400", "signature": {"username": "operator", "password": PASSWORD}},
            409,
            "NOT_A_NUMBER",
        ),
        (
            "operator",
            "C-000003/waste",
            {"reason": "x", "quantity": 5, "signature": {"username": "operator", "password": PASSWORD}},
            422,
            None,
        ),
    ],
)
def test_refusals_over_the_api_are_4xx_in_words_and_write_nothing(
    remainder, who, path, body, status, code
) -> None:
    people, batch, _sim = remainder
    before = written()
    r = api(people[who], "post", f"/batches/{batch.number}/containers/{path}", body)
    assert r.status_code == status, r.content
    if code:
        assert r.json()["code"] == code and r.json()["detail"]
    assert written() == before


def test_an_unknown_batch_is_404(remainder) -> None:
    people, _batch, _sim = remainder
    assert api(people["operator"], "get", "/batches/NOPE/containers").status_code == 404
    r = api(people["operator"], "post", "/batches/NOPE/containers/C-000003/return", {"location": "WH"})
    assert r.status_code == 404
    assert Decimal(Container.objects.get(code="C-000003").quantity) == Decimal("0.1953")
