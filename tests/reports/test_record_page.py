"""The batch record page shows what every kind of step recorded, from the same content as the PDF."""

from __future__ import annotations

import re

import pytest

from batchline.execution import services as ex
from batchline.reports.content import record_content
from batchline.reports.pdf import render_pdf
from tests.conftest import make_user
from tests.execution.test_dispensing import make_dispensing_plant
from tests.execution.test_engine import A, start
from tests.reports.helpers import complete_batch
from tests.reports.test_records import pdf_text

pytestmark = pytest.mark.django_db


def step_card(page: str, key: str) -> str:
    return page.split(f'data-step="{key}"', 1)[1].split('class="card record-step"', 1)[0]


def words(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


@pytest.mark.req("BR-01", "WD-01", "DI-04", "P11-02")
def test_a_weighing_shows_its_weight_and_the_container_on_the_page_as_in_the_pdf(
    sim, login, tmp_path
) -> None:
    people, batch = make_dispensing_plant(sim)
    start(people, batch, "disp_api")
    sim.place("2041.3")
    ex.step_dispense(
        actor=A(people["operator"]),
        user=people["operator"],
        batch=batch,
        step_key="disp_api",
        source="C-000001",
        scale="SCALE-01",
    )
    ex.step_complete(actor=A(people["operator"]), user=people["operator"], batch=batch, step_key="disp_api")
    page = login(make_user("auditor", ["auditor"])).get(f"/batches/{batch.number}/record/").content.decode()
    card = words(step_card(page, "disp_api"))
    assert 'data-testid="record-values"' in step_card(page, "disp_api")
    assert "2.0413 kg" in card  # the weighed value
    assert "PCM Paracetamol L-1 C-000001 weighed out 2.0413 kg SCALE-01 #SIM-0042" in card
    pdf = re.sub(r"\s+", " ", pdf_text(render_pdf(record_content(batch)), tmp_path))
    assert "2.0413 kg" in pdf and "weighed out 2.0413 kg" in pdf


@pytest.mark.req("BR-01", "EQ-05", "GEN-01")
def test_a_charge_and_an_equipment_identification_show_what_they_recorded(login) -> None:
    _people, batch = complete_batch()
    page = login(make_user("auditor", ["auditor"])).get(f"/batches/{batch.number}/record/").content.decode()
    granulator = words(step_card(page, "granulator"))
    assert "GRAN-01" in granulator.split("Equipment used", 1)[0]  # the scanned unit, as a value
    assert "GRAN-01 High-shear granulator 1 Granulator" in granulator  # and the unit claimed
    charge = words(step_card(page, "charge_api"))
    assert "PCM Paracetamol L-0042 C-000001 10.1 kg" in charge
    # Corrections stay readable beside the original, as in the PDF.
    weights = words(step_card(page, "ipc_weights"))
    assert "640 mg ‡ changed after entry" in weights and "604 mg (correction: transcription error" in weights
