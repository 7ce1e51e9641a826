"""A complete small batch for the record tests: equipment, a material lot, values, a correction, signatures.

Built through the real services, so the record shows what the engine wrote.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import transaction
from django.utils import timezone

from batchline.audit.services import record_create
from batchline.equipment import services as eq
from batchline.equipment.models import Site
from batchline.execution import services as ex
from batchline.execution.models import Batch
from batchline.materials import services as stock
from tests.conftest import make_user
from tests.execution.test_engine import A, age, complete, effective_recipe, new_batch, sign, start
from tests.materials.test_charging import receive

RECIPE = """
format: batchline.recipe/1
recipe: {code: PCM-REC, name: Paracetamol 500 mg tablets, product_code: PCM500, product_name: Paracetamol 500 mg tablets, batch_size: {quantity: 100, unit: kg}}
operations:
  - key: preparation
    name: Preparation
    steps:
      - key: clearance
        kind: checklist
        title: Line clearance
        instruction: Remove every trace of the previous product and its documents.
        checklist: [Previous product removed, Documents removed]
        signs: true
  - key: granulation
    name: Granulation
    steps:
      - key: granulator
        kind: equipment_id
        title: Identify the granulator
        equipment_class: GRAN
      - key: charge_api
        kind: material_charge
        title: Charge paracetamol
        instruction: Charge the dispensed paracetamol into the granulator bowl.
        material: {code: PCM, quantity: 10, unit: kg, tolerance_percent: 1}
      - key: dry_mix
        kind: timer
        title: Dry mix
        timer: {min_minutes: 4, max_minutes: 6}
  - key: compression
    name: Compression
    steps:
      - key: ipc_weights
        kind: data_entry
        title: Tablet weights
        inputs:
          - {name: w1, label: Weight 1, unit: mg, target: 600, plausible: {low: 300, high: 900}, specification: {low: 570, high: 630}, critical: true}
          - {name: w2, label: Weight 2, unit: mg, target: 600, plausible: {low: 300, high: 900}, specification: {low: 570, high: 630}, critical: true}
      - key: ipc_mean
        kind: calculation
        title: Mean tablet weight
        calculations:
          - {name: mean_weight, label: Mean weight, formula: "mean(w1, w2)", unit: mg, specification: {low: 582, high: 618}}
        verify: true
"""


def complete_batch(number: str = "B-REC-1") -> tuple[dict[str, Any], Batch]:
    """People, and a batch run to its end: every step done, one value corrected, one out of specification."""
    people = {
        "author": make_user("author", ["recipe_author"], full_name="Rita Author"),
        "approver": make_user("approver", ["qa_approver"], full_name="Alex Approver"),
        "supervisor": make_user("supervisor", ["supervisor"], full_name="Sam Supervisor"),
        "operator": make_user("operator", ["operator"], full_name="Olga Operator"),
        "operator2": make_user("operator2", ["operator"], full_name="Omar Operator"),
        "warehouse": make_user("warehouse", ["warehouse"], full_name="Walt Warehouse"),
        "engineer": make_user("engineer", ["administrator"], full_name="Ed Engineer"),
    }
    recipe = effective_recipe(people, RECIPE)
    engineer = A(people["engineer"])
    with transaction.atomic():
        site = record_create(
            Site(code="zh1", name="Demo Pharma Plant 1", time_zone="Europe/Zurich"), actor=engineer
        )
    gran = eq.equipment_class_create(actor=engineer, code="GRAN", name="Granulator", clean_hold_hours=72)
    eq.equipment_create(
        actor=engineer, site=site, code="GRAN-01", name="High-shear granulator 1", equipment_class=gran
    )
    eq.cleaning_start(actor=A(people["operator"]), code="GRAN-01")
    eq.cleaning_end(actor=A(people["operator"]), code="GRAN-01")
    material = stock.material_create(
        actor=A(people["warehouse"]), code="PCM", name="Paracetamol", kind="api", unit="kg"
    )
    receive(
        people,
        material,
        "L-0042",
        containers=("12",),
        supplier="Acme Fine Chemicals",
        supplier_lot="ACM-7781",
        expires_in=dt.timedelta(days=400),
    )
    batch = new_batch(people, recipe, number=number, quantity="100")
    op = people["operator"]
    start(people, batch, "clearance")
    complete(people, batch, "clearance", checklist=[True, True], signer=sign(op))
    start(people, batch, "granulator")
    ex.step_scan(actor=A(op), user=op, batch=batch, step_key="granulator", scan="EQ:GRAN-01")
    complete(people, batch, "granulator")
    start(people, batch, "charge_api")
    ex.step_scan(actor=A(op), user=op, batch=batch, step_key="charge_api", scan="C-000001")
    complete(people, batch, "charge_api")
    mix = start(people, batch, "dry_mix")
    age(mix, 5)
    complete(people, batch, "dry_mix")
    start(people, batch, "ipc_weights")
    complete(
        people, batch, "ipc_weights", entries={"w1": "598", "w2": "640"}, confirm_out_of_specification=True
    )
    # Weight 2 is critical: QA dispositions its exception before the batch goes on.
    from batchline.execution.models import BatchException
    from batchline.quality.services import exceptions_disposition

    exceptions_disposition(
        actor=A(people["approver"]),
        signer=sign(people["approver"], "approved"),
        exception_ids=list(
            BatchException.objects.filter(batch=batch, blocks=True).values_list("id", flat=True)
        ),
        decision="accepted",
        comment="Balance display misread; re-weighed at 604 mg, within specification.",
    )
    start(people, batch, "ipc_mean")
    complete(people, batch, "ipc_mean")
    ex.value_correct(
        user=op,
        actor=A(op),
        batch=batch,
        step_key="ipc_weights",
        name="w2",
        text="604",
        reason="transcription error: balance showed 604",
        signer=sign(op),
    )
    ex.step_verify(
        actor=A(people["supervisor"]),
        user=people["supervisor"],
        batch=batch,
        step_key="ipc_mean",
        signer=sign(people["supervisor"], "verified"),
    )
    batch.refresh_from_db()
    assert timezone.now()  # the server's clock decided every time above
    return people, batch
