"""The execution screen's panel for what is left of the batch's dispensed containers, and the returned label."""

from __future__ import annotations

import subprocess
from decimal import Decimal

import pytest

from batchline.materials.models import Container, LabelPrint, LedgerEntry
from tests.conftest import PASSWORD
from tests.execution.test_engine import new_batch
from tests.execution.test_returns import dispense_and_charge_part, make_plant

pytestmark = pytest.mark.django_db


@pytest.fixture
def remainder(db, sim):
    people, recipe = make_plant(sim)
    batch = new_batch(people, recipe, quantity="100")
    dispense_and_charge_part(people, batch, sim)  # C-000003 holds 0.1953 kg
    return people, batch


@pytest.mark.req("WD-12", "P11-07")
def test_the_screen_loads_the_panel_and_offers_the_actions_to_whom_may_take_them(remainder, client) -> None:
    people, batch = remainder
    client.force_login(people["operator"])
    screen = client.get(f"/batches/{batch.number}/").content.decode()
    assert f"/batches/{batch.number}/remainders/" in screen  # the slot that loads the panel
    panel = client.get(f"/batches/{batch.number}/remainders/").content.decode()
    assert "C-000003" in panel and "still holds" in panel and "0.1953 kg" in panel
    assert "Return to stock" in panel and "Waste and sign" in panel
    client.force_login(people["reviewer"])  # reads the batch, moves no material
    panel = client.get(f"/batches/{batch.number}/remainders/").content.decode()
    assert "0.1953 kg" in panel and "Return to stock" not in panel and "Waste and sign" not in panel


@pytest.mark.req("WD-12", "WD-07", "LBL-02", "P11-05")
def test_a_return_from_the_panel_is_recorded_and_its_label_says_returned_and_is_logged(
    remainder, client, tmp_path
) -> None:
    people, batch = remainder
    client.force_login(people["operator"])
    refused = client.post(f"/batches/{batch.number}/remainders/C-000003/return/", {"location": ""})
    assert (
        refused.status_code == 422 and "Say where the returned container is put" in refused.content.decode()
    )
    assert not Container.objects.filter(returned_from=batch.number).exists()
    done = client.post(f"/batches/{batch.number}/remainders/C-000003/return/", {"location": "WH-B-03"})
    assert done.status_code == 200
    text = done.content.decode()
    assert "0.1953 kg of C-000003 went back to stock in C-000004 at WH-B-03" in text
    assert "Print its label" in text
    pdf = client.post(f"/batches/{batch.number}/returned/C-000004/label.pdf")
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
    (tmp_path / "label.pdf").write_bytes(pdf.content)
    label = subprocess.run(
        ["pdftotext", "-layout", str(tmp_path / "label.pdf"), "-"], capture_output=True, text=True, check=True
    ).stdout
    for expected in (
        "RETURNED MATERIAL",
        "Returned from",
        f"batch {batch.number}",
        "0.1953 kg",
        "MGST-L0007",
    ):
        assert expected in label, expected
    assert LabelPrint.objects.get(container__code="C-000004").reprint is False
    again = client.post(f"/batches/{batch.number}/returned/C-000004/label.pdf")
    assert again.status_code == 422 and "give the reason to reprint it" in again.content.decode()
    client.force_login(people["reviewer"])
    assert client.post(f"/batches/{batch.number}/returned/C-000004/label.pdf").status_code == 403
    # Genealogy shows the return as what it is, beside what was consumed.
    lot = Container.objects.get(code="C-000004").lot
    trace = client.get(f"/genealogy/lots/{lot.pk}/forward/").content.decode()
    assert "left over, returned to stock in C-000004 from" in trace and "consumed by" in trace


@pytest.mark.req("WD-12", "P11-18")
def test_a_waste_from_the_panel_needs_the_signature(remainder, client) -> None:
    people, batch = remainder
    client.force_login(people["operator"])
    path = f"/batches/{batch.number}/remainders/C-000003/waste/"
    refused = client.post(
        path, {"reason": "spilled", "signer_username": "operator", "signer_password": "nope"}
    )
    assert refused.status_code == 422 and not LedgerEntry.objects.filter(kind="destroy").exists()
    done = client.post(
        path,
        {
            "reason": "spilled",
            "quantity": "0.0953",
            "signer_username": "operator",
            "signer_password": PASSWORD,
        },
    )
    assert done.status_code == 200 and "0.0953 kg of C-000003 went to waste, signed." in done.content.decode()
    assert Container.objects.get(code="C-000003").quantity == Decimal("0.1")
