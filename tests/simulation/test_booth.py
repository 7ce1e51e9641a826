"""The weigh booth's simulator control: a load placed on a simulated scale is what the booth then records."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import transaction

from batchline.audit.services import record_update
from batchline.devices import MtSicsScale
from batchline.equipment.models import Equipment
from batchline.execution.models import StepValue
from batchline.simulation import scales
from tests.conftest import SETUP, free_port
from tests.execution.test_dispensing import make_dispensing_plant
from tests.execution.test_engine import start

pytestmark = pytest.mark.django_db


def simulated(code: str) -> None:
    """Test set-up: register the scale as simulated (the demo's equipment seed does it)."""
    with transaction.atomic():
        record_update(Equipment.objects.get(code=code), actor=SETUP, values={"simulated": True})


@pytest.fixture
def booth(db, sim, client):
    people, batch = make_dispensing_plant(sim)  # SCALE-01 and SCALE-09 both answer on the simulator's port
    simulated("SCALE-01")
    start(people, batch, "disp_api")
    client.force_login(people["operator"])
    return people, batch, sim, client


@pytest.mark.req("WD-01", "DI-04")
def test_a_load_placed_from_the_booth_is_the_stable_reading_the_dispense_records(booth) -> None:
    _people, batch, _sim, client = booth
    panel = client.get(f"/batches/{batch.number}/?step=disp_api").content.decode()
    assert 'data-testid="simulator"' in panel
    assert '<option value="SCALE-01">SCALE-01 (in g)</option>' in panel
    assert '<option value="SCALE-09">SCALE-09 (in g)' not in panel  # a real scale is never offered

    placed = client.post("/scales/simulator/", {"scale": "SCALE-01", "load": "2041.0"})
    assert placed.status_code == 200 and "SCALE-01: 2041.0 g placed on the pan." in placed.content.decode()
    done = client.post(
        f"/batches/{batch.number}/steps/disp_api/dispense/", {"source": "C-000001", "scale": "SCALE-01"}
    )
    assert done.status_code == 200, done.content.decode()[:2000]
    value = StepValue.objects.get(step__batch=batch, name="dispensed")
    assert (value.number, value.unit) == (Decimal("2.041"), "kg")

    client.post("/scales/simulator/", {"scale": "SCALE-01", "load": "1990"})
    refused = client.post(
        f"/batches/{batch.number}/steps/disp_api/dispense/", {"source": "C-000001", "scale": "SCALE-01"}
    )
    assert refused.status_code == 422 and "already" in refused.content.decode()


@pytest.mark.req("WD-01", "P11-08", "A11-05")
@pytest.mark.parametrize(
    ("scale", "load", "words"),
    [
        ("SCALE-09", "500", "SCALE-09 is a real scale: put the material on its pan"),
        ("NO-SUCH", "500", "No scale has the code"),
        ("SCALE-01", "five hundred", "is not a number"),
        ("SCALE-01", "-3", "is not a load to put on a scale"),
        ("SCALE-01", "1e400", "write the number out in digits, without an exponent"),
    ],
)
def test_the_simulator_is_told_nothing_about_a_real_scale_or_a_load_that_is_none(booth, scale, load, words):
    _people, _batch, sim, client = booth
    sim.place("7")
    refused = client.post("/scales/simulator/", {"scale": scale, "load": load})
    assert refused.status_code == 422 and words in refused.content.decode()
    with MtSicsScale("127.0.0.1", sim.port, timeout=2.0) as scale:  # settled where it was put
        assert scale.stable_weight().value == Decimal("7.0")


def test_a_simulator_that_does_not_run_is_named_in_words(booth) -> None:
    _people, _batch, _sim, client = booth
    unit = Equipment.objects.get(code="SCALE-01")
    with transaction.atomic():
        record_update(unit, actor=SETUP, values={"port": free_port()})
    refused = client.post("/scales/simulator/", {"scale": "SCALE-01", "load": "500"})
    assert refused.status_code == 422
    assert "The simulator of SCALE-01 does not answer" in refused.content.decode()


def test_an_operator_only_places_loads(booth, client) -> None:
    people, _batch, _sim, _client = booth
    client.force_login(people["approver"])
    assert client.post("/scales/simulator/", {"scale": "SCALE-01", "load": "500"}).status_code == 403


@pytest.mark.req("WD-01")
def test_in_production_no_simulator_is_started_nor_told_anything(booth, settings) -> None:
    _people, _batch, _sim, _client = booth
    port = free_port()
    unit = Equipment.objects.get(code="SCALE-01")
    with transaction.atomic():
        record_update(unit, actor=SETUP, values={"port": port})
    said: list[str] = []
    with scales.serving(said.append) as started:  # outside production: the simulator answers
        assert [s.code for s in started] == ["SCALE-01"] and scales.place("SCALE-01", Decimal("10"))
    settings.PRODUCTION = True
    said.clear()
    with scales.serving(said.append) as started:
        assert started == []
        with pytest.raises(scales.SimulatorRefused) as refused:
            scales.place("SCALE-01", Decimal("10"))
    assert refused.value.verdict.codes == ["SIMULATOR_IN_PRODUCTION"]
    assert said == [
        "Scales registered as simulated (SCALE-01) are not started: this is a production installation."
    ]
