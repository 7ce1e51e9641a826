"""A batch QA reviews: run to completion through the services with the three exceptions of issue 5.

An out-of-limit critical value, a weight typed by hand, and a refused container of
an expired lot; the batch ends complete with its genealogy balanced, so only the
exceptions (and any deviation) stand between it and release.
"""

from __future__ import annotations

import datetime as dt

from batchline.execution import services as ex
from batchline.execution.models import Batch
from batchline.materials import services as stock
from batchline.signatures.services import signer_authenticate
from tests.conftest import PASSWORD, make_user
from tests.execution.test_dispensing import label_weighed
from tests.execution.test_engine import A, effective_recipe, new_batch, product_master_data, sign, start
from tests.materials.test_charging import expire, receive
from tests.signatures.test_signing import station

RECIPE = """
format: batchline.recipe/1
recipe: {code: RBE-1, name: Review test, product_code: RBE, product_name: Review test 500 mg, batch_size: {quantity: 100, unit: kg}}
operations:
  - key: dispensing
    name: Dispensing
    steps:
      - key: disp_api
        kind: weigh_dispense
        title: Dispense paracetamol
        material: {code: PCM, quantity: 2, unit: kg, tolerance_percent: 1}
  - key: granulation
    name: Granulation
    steps:
      - key: charge_api
        kind: material_charge
        title: Charge paracetamol
        material: {code: PCM, quantity: 2, unit: kg, tolerance_percent: 1}
      - key: weights
        kind: data_entry
        title: Tablet weight
        inputs:
          - {name: w1, label: Weight 1, unit: mg, target: 600, plausible: {low: 300, high: 900}, specification: {low: 570, high: 630}, critical: true}
"""


# The lubricant: weighed out for the batch and never charged (no step charges it), so at the
# batch's completion its lot's reconciliation is outside its limits and its container unbalanced.
LUBRICANT = """
      - key: disp_mgst
        kind: weigh_dispense
        title: Dispense magnesium stearate
        material: {code: MGST, quantity: 0.5, unit: kg, tolerance_percent: 1}
"""
RECIPE_WITH_LUBRICANT = RECIPE.replace(
    "\n  - key: granulation", LUBRICANT.rstrip("\n") + "\n  - key: granulation", 1
)


def review_people() -> dict:
    return {
        "author": make_user("author", ["recipe_author"]),
        "approver": make_user("approver", ["qa_approver"]),
        "reviewer": make_user("reviewer", ["qa_reviewer"]),
        "supervisor": make_user("supervisor", ["supervisor"]),
        "operator": make_user("operator", ["operator"]),
        "warehouse": make_user("warehouse", ["warehouse"]),
    }


def review_plant(*, lubricant: bool = False) -> tuple[dict, object]:
    """People, the recipe effective, paracetamol in an expired lot (C-000001) and a good one (C-000002);
    with ``lubricant``, the recipe also dispenses magnesium stearate (lot L-MG, C-000003)."""
    people = review_people()
    recipe = effective_recipe(people, RECIPE_WITH_LUBRICANT if lubricant else RECIPE)
    product_master_data(people["warehouse"], "RBE", "Review test 500 mg", "kg")
    material = stock.material_create(
        actor=A(people["warehouse"]), code="PCM", name="Paracetamol", kind="api", unit="kg"
    )
    expire(receive(people, material, "L-OLD", containers=("25",)), dt.timedelta(minutes=90))
    receive(people, material, "L-1", containers=("25",))
    if lubricant:
        mgst = stock.material_create(
            actor=A(people["warehouse"]), code="MGST", name="Magnesium stearate", kind="excipient", unit="kg"
        )
        receive(people, mgst, "L-MG", containers=("5",))
    return people, recipe


def _refused(action) -> None:
    try:
        action()
    except ex.ExecutionRefused:
        return
    raise AssertionError("the gate let a slip through")


def by_hand(people, batch, step_key: str, source: str, weight: str):
    """A weight typed by hand ("scale display broken"), witnessed by the supervisor at the booth."""
    op = people["operator"]
    witness = signer_authenticate(
        request=station(op), username="supervisor", password=PASSWORD, meaning="verified", witness=True
    )
    return ex.step_dispense(
        actor=A(op),
        user=op,
        batch=batch,
        step_key=step_key,
        source=source,
        witness=witness,
        manual_weight=weight,
        manual_unit="kg",
        reason="scale display broken",
        scale="",
    )


def run_batch(
    people, recipe, number: str, *, weight: str = "640", out_of_order: int = 0, wrong_scans: int = 0
) -> Batch:
    """Run a batch to complete; ``weight`` outside 570–630 mg raises the critical out-of-limit exception.

    The operator's slips, each refused by its gate and kept as an exception: ``out_of_order``
    starts of the tablet weights before dispensing, ``wrong_scans`` scans of the expired lot's
    container on the charge step.
    """
    op = people["operator"]
    batch = new_batch(people, recipe, number=number, quantity="100")
    for _ in range(out_of_order):
        _refused(lambda: ex.step_start(actor=A(op), user=op, batch=batch, step_key="weights"))
    start(people, batch, "disp_api")
    try:
        by_hand(people, batch, "disp_api", "C-000001", "2")
    except ex.ExecutionRefused as refused:
        assert refused.verdict.codes == ["LOT_EXPIRED"], refused.verdict.codes
    else:
        raise AssertionError("a container of an expired lot was dispensed")
    value = by_hand(people, batch, "disp_api", "C-000002", "2")
    label_weighed(people, batch, "disp_api")
    ex.step_complete(actor=A(op), user=op, batch=batch, step_key="disp_api")
    if batch.steps.filter(key="disp_mgst").exists():
        start(people, batch, "disp_mgst")
        by_hand(people, batch, "disp_mgst", "C-000003", "0.5")
        label_weighed(people, batch, "disp_mgst")
        ex.step_complete(actor=A(op), user=op, batch=batch, step_key="disp_mgst")
    start(people, batch, "charge_api")
    for _ in range(wrong_scans):
        _refused(
            lambda: ex.step_scan(actor=A(op), user=op, batch=batch, step_key="charge_api", scan="C-000001")
        )
    ex.step_scan(actor=A(op), user=op, batch=batch, step_key="charge_api", scan=value.label.split()[2])
    ex.step_complete(actor=A(op), user=op, batch=batch, step_key="charge_api")
    start(people, batch, "weights")
    ex.step_complete(
        actor=A(op),
        user=op,
        batch=batch,
        step_key="weights",
        entries={"w1": weight},
        confirm_out_of_specification=True,
    )
    return Batch.objects.get(pk=batch.pk)


__all__ = ["RECIPE", "RECIPE_WITH_LUBRICANT", "review_plant", "run_batch", "sign"]
