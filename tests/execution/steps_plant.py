"""A small recipe with a timer that records its duration, sampling, output and labelling steps, and
its plant: people, a blender claimed by the batch, the product's material with storage and GTIN."""

from __future__ import annotations

from django.db import transaction

from batchline.audit.services import record_create
from batchline.equipment import services as eq
from batchline.equipment.models import Site
from batchline.execution import recording
from batchline.execution import services as ex
from batchline.materials import services as stock
from tests.conftest import make_user
from tests.execution.test_engine import A, complete, effective_recipe, new_batch, sign, start

RECIPE = """\
format: batchline.recipe/1
recipe: {code: REC-1, name: Step records, product_code: RECT, product_name: Record tablets 100 mg, batch_size: {quantity: 1000, unit: tablet}}
operations:
  - key: blend
    name: Blending
    steps:
      - key: blender
        kind: equipment_id
        title: Identify the blender
        equipment_class: BLEND
      - key: lubricate
        kind: timer
        title: Lubricate the blend
        timer:
          max_minutes: 60
          record: {name: lubrication_time, label: Lubrication time, unit: min, decimals: 2, specification: {low: 0, high: 5}, critical: true}
      - key: sample_blend
        kind: sampling
        title: Sample the final blend
        sampling: {quantity: 5, unit: g, samples: 2, source: equipment, positions: [top, bottom], test: Blend uniformity, method: SOP-QC-021}
  - key: press
    name: Compression
    yield: {actual: tablets_out, theoretical: 1000, unit: tablet, low_percent: 95, high_percent: 101}
    steps:
      - key: output
        kind: produce
        title: Record the tablets produced
        produce: {name: tablets_out, label: Tablets produced, unit: tablet}
      - key: yield_calc
        kind: calculation
        title: Tablet yield
        calculations:
          - {name: yield_percent, label: Tablet yield, formula: "tablets_out / 1000 * 100", unit: percent, decimals: 1}
      - key: sample_tablets
        kind: sampling
        title: Sample the tablets for release testing
        sampling: {quantity: 20, unit: tablet, samples: 1, source: container, test: Assay and dissolution, method: SOP-QC-040}
  - key: pack
    name: Packaging
    steps:
      - key: labels
        kind: labelling
        title: Label the bottles
        signs: true
        verify: true
        labelling:
          per_container: {quantity: 100, unit: tablet}
          reconciliation: {absolute: 2}
          examination: [Label matches the specimen, Batch number and expiry legible, Correct count of labelled bottles]
          examine_units: 5
"""


def make_steps_plant():
    people = {
        "author": make_user("author", ["recipe_author"]),
        "approver": make_user("approver", ["qa_approver"]),
        "supervisor": make_user("supervisor", ["supervisor"]),
        "operator": make_user("operator", ["operator"]),
        "operator2": make_user("operator2", ["operator"]),
        "engineer": make_user("engineer", ["administrator"]),
    }
    recipe = effective_recipe(people, RECIPE)
    engineer = A(people["engineer"])
    with transaction.atomic():
        site = record_create(Site(code="s1", name="Site 1"), actor=engineer)
    blend = eq.equipment_class_create(actor=engineer, code="BLEND", name="Blender")
    for code in ("BLEND-01", "BLEND-02"):
        eq.equipment_create(
            actor=engineer, site=site, code=code, name=f"Bin blender {code[-1]}", equipment_class=blend
        )
        eq.cleaning_start(actor=A(people["operator"]), code=code)
        eq.cleaning_end(actor=A(people["operator"]), code=code)
    stock.material_create(
        actor=engineer,
        code="RECT",
        name="Record tablets 100 mg",
        kind="finished",
        unit="tablet",
        storage="Store below 25 °C, dry",
        shelf_life_days=730,
        gtin="09501101530003",
        reason="the product's master data",
    )
    return people, recipe


def run_blend(people, batch):
    """Blender claimed, the lubrication timed, both blend samples taken and labelled."""
    start(people, batch, "blender")
    ex.step_scan(
        actor=A(people["operator"]),
        user=people["operator"],
        batch=batch,
        step_key="blender",
        scan="EQ:BLEND-01",
    )
    complete(people, batch, "blender")
    start(people, batch, "lubricate")
    complete(people, batch, "lubricate")
    start(people, batch, "sample_blend")
    for position in ("top", "bottom"):
        sample = take(people, batch, "sample_blend", "EQ:BLEND-01", "5.2", position)
        recording.sample_label_print(actor=A(people["operator"]), batch=batch, code=sample.code)
    complete(people, batch, "sample_blend")


def take(people, batch, key, source, quantity, position="", who="operator"):
    return recording.step_sample(
        actor=A(people[who]),
        user=people[who],
        batch=batch,
        step_key=key,
        source=source,
        quantity=quantity,
        position=position,
    )


def run_press(people, batch, quantities=("500", "490")):
    start(people, batch, "output")
    made = []
    for q in quantities:
        c = recording.step_produce(
            actor=A(people["operator"]), user=people["operator"], batch=batch, step_key="output", quantity=q
        )
        recording.output_label_print(actor=A(people["operator"]), batch=batch, code=c.code)
        made.append(c)
    complete(people, batch, "output")
    start(people, batch, "yield_calc")
    complete(people, batch, "yield_calc")
    start(people, batch, "sample_tablets")
    sample = take(people, batch, "sample_tablets", made[0].code, "20")
    recording.sample_label_print(actor=A(people["operator"]), batch=batch, code=sample.code)
    complete(people, batch, "sample_tablets")
    return made


def run_labels(people, batch, *, applied="95", destroyed="3", returned="2", results=(True, True, True)):
    op = people["operator"]
    start(people, batch, "labels")
    recording.labels_issue(actor=A(op), user=op, batch=batch, step_key="labels", quantity="100")
    recording.labels_reconcile(
        actor=A(op),
        user=op,
        batch=batch,
        step_key="labels",
        applied=applied,
        destroyed=destroyed,
        returned=returned,
    )
    recording.labels_examine(
        actor=A(op),
        user=op,
        batch=batch,
        step_key="labels",
        results=list(results),
        units="5",
        comment="" if all(results) else "two bottles carry a smudged expiry",
    )


def finish_labels(people, batch):
    complete(people, batch, "labels", signer=sign(people["operator"]))
    ex.step_verify(
        actor=A(people["supervisor"]),
        user=people["supervisor"],
        batch=batch,
        step_key="labels",
        signer=sign(people["supervisor"], "verified"),
    )


def run_all(people, recipe, number="R-001"):
    batch = new_batch(people, recipe, number=number, quantity="1000")
    run_blend(people, batch)
    run_press(people, batch)
    run_labels(people, batch)
    finish_labels(people, batch)
    batch.refresh_from_db()
    return batch
