"""Charging what a weighing dispensed: every container it filled, whole (the weighing judged the quantity)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from batchline.execution import services as ex
from batchline.execution.models import BatchException, BatchStep
from batchline.execution.yields import batch_reconciliation
from batchline.materials.models import Consumption, Container
from batchline.recipes.document import RecipeInvalid, parse
from tests.execution.test_dispensing import RECIPE as WEIGH_RECIPE
from tests.execution.test_dispensing import label_weighed, make_dispensing_plant
from tests.execution.test_engine import A, complete, sign, start

pytestmark = pytest.mark.django_db

CHARGES = """
  - key: granulation
    name: Granulation
    steps:
      - key: charge_api
        kind: material_charge
        title: Charge paracetamol
        material: {code: PCM, quantity: 2, unit: kg, tolerance_percent: 1, dispensed: disp_api}
      - key: charge_starch
        kind: material_charge
        title: Charge maize starch
        material: {code: STARCH, quantity: 1, unit: kg, tolerance_percent: 1, dispensed: disp_starch}
"""
RECIPE = WEIGH_RECIPE.replace("WD-1", "WD-2") + CHARGES


@pytest.fixture
def weighed(db, sim):
    """Paracetamol at 98 % weighed out (2.041 kg for a nominal 2 kg), the starch compensated (0.959 kg)."""
    people, batch = make_dispensing_plant(sim, RECIPE)
    for key, load, source in (("disp_api", "2041.0", "C-000001"), ("disp_starch", "959.0", "C-000002")):
        start(people, batch, key)
        sim.place(load)
        ex.step_dispense(
            actor=A(people["operator"]),
            user=people["operator"],
            batch=batch,
            step_key=key,
            source=source,
            scale="SCALE-01",
        )
        label_weighed(people, batch, key)
        complete(people, batch, key)
        if key == "disp_api":  # verified by a second person before the next step
            ex.step_verify(
                actor=A(people["supervisor"]),
                user=people["supervisor"],
                batch=batch,
                step_key=key,
                signer=sign(people["supervisor"], "verified"),
            )
    return people, batch


def scan(people, batch, key, code):
    return ex.step_scan(
        actor=A(people["operator"]), user=people["operator"], batch=batch, step_key=key, scan=code
    )


def weighed_into(batch, material):
    return Container.objects.get(dispensed_for=batch.number, lot__material__code=material)


@pytest.mark.req("WD-04", "GEN-01", "YLD-03", "MAT-05")
def test_the_container_a_weighing_filled_is_charged_whole_potency_and_compensation_included(weighed) -> None:
    people, batch = weighed
    api, starch = weighed_into(batch, "PCM"), weighed_into(batch, "STARCH")
    start(people, batch, "charge_api")
    value = scan(people, batch, "charge_api", api.code)
    # 2.041 kg, above the nominal 2 kg's upper edge of 2.02 kg: all of it, nothing left behind.
    assert value.number == Decimal("2.041")
    assert Container.objects.get(pk=api.pk).quantity == 0
    complete(people, batch, "charge_api")
    start(people, batch, "charge_starch")
    assert scan(people, batch, "charge_starch", starch.code).number == Decimal("0.959")
    complete(people, batch, "charge_starch")
    assert BatchStep.objects.get(batch=batch, key="charge_starch").state == "done"
    for lot in batch_reconciliation(batch):
        assert lot.difference == 0 and lot.within, lot.text()


@pytest.mark.req("WD-05", "P11-06", "DI-06")
def test_a_container_not_weighed_out_at_that_step_is_refused_naming_the_one_that_was(weighed) -> None:
    people, batch = weighed
    api = weighed_into(batch, "PCM")
    start(people, batch, "charge_api")
    with pytest.raises(ex.ExecutionRefused) as refused:
        scan(people, batch, "charge_api", "C-000001")  # the drum it was weighed from
    reason = refused.value.verdict.reasons[0]
    assert reason.code == "NOT_WEIGHED_OUT_HERE"
    assert reason.message == (
        f"Container C-000001 was not weighed out at “Dispense paracetamol” for batch {batch.number}: "
        f"scan {api.code}."
    )
    assert not Consumption.objects.exists()
    exception = BatchException.objects.get(code="REFUSED_NOT_WEIGHED_OUT_HERE")
    assert exception.material == "C-000001" and exception.type.category == "resource"


@pytest.mark.req("P11-06", "MAT-05")
def test_the_charge_completes_only_when_every_container_weighed_out_is_charged(weighed) -> None:
    people, batch = weighed
    api = weighed_into(batch, "PCM")
    start(people, batch, "charge_api")
    with pytest.raises(ex.ExecutionRefused) as refused:
        complete(people, batch, "charge_api")
    assert [r.message for r in refused.value.verdict.reasons] == [
        f"{api.code} (2.041 kg weighed out at “Dispense paracetamol”) is not charged yet: scan it."
    ]
    assert BatchStep.objects.get(batch=batch, key="charge_api").state == "running"


HEAD = """
format: batchline.recipe/1
recipe: {code: X-1, name: X, product_code: X, product_name: X, batch_size: {quantity: 100, unit: kg}}
operations:
  - key: o
    name: O
    steps:
      - key: disp
        kind: weigh_dispense
        title: Weigh
        material: {code: PCM, quantity: 2, unit: kg}
      - key: note
        kind: instruction
        title: Note
"""


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        (
            "        after: []\n        material: {code: PCM, quantity: 2, unit: kg, dispensed: disp}\n",
            "step 'charge' charges what 'disp' weighs out, which does not come before it: list it in 'after'",
        ),
        (
            "        material: {code: PCM, quantity: 2, unit: kg, dispensed: note}\n",
            "step 'note' is a instruction step, not a weigh_dispense step",
        ),
        (
            "        material: {code: MGST, quantity: 2, unit: kg, dispensed: disp}\n",
            "step 'disp' weighs out PCM, not MGST",
        ),
        (
            "        material: {code: PCM, quantity: 2, unit: kg, dispensed: nowhere}\n",
            "step 'nowhere' does not exist",
        ),
    ],
)
@pytest.mark.req("MBR-01", "WD-05")
def test_a_charge_of_what_was_weighed_out_names_an_earlier_weighing_of_its_material(step, expected) -> None:
    text = HEAD + "      - key: charge\n        kind: material_charge\n        title: Charge\n" + step
    with pytest.raises(RecipeInvalid) as refused:
        parse(text)
    assert [p.message for p in refused.value.problems] == [expected]


@pytest.mark.req("MBR-01")
def test_only_a_charge_step_charges_what_a_weighing_dispensed() -> None:
    text = HEAD.replace(
        "material: {code: PCM, quantity: 2, unit: kg}\n      - key: note",
        "material: {code: PCM, quantity: 2, unit: kg}\n"
        "      - key: again\n        kind: weigh_dispense\n        title: Again\n"
        "        material: {code: PCM, quantity: 2, unit: kg, dispensed: disp}\n      - key: note",
    )
    with pytest.raises(RecipeInvalid) as refused:
        parse(text)
    assert [p.message for p in refused.value.problems] == [
        "only a material_charge step charges what a weighing dispensed"
    ]
