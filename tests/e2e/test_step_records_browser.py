"""Sampling, output and labelling from the execution screen in headless Chromium, and their record."""

from __future__ import annotations

import pytest

from batchline.execution.models import LabelExamination, LabelReconciliation, Sample, SampleLabelPrint
from batchline.materials.models import LabelPrint
from tests.e2e.test_browser import log_in
from tests.e2e.test_execution_browser import settle, start

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

RECIPE = """\
format: batchline.recipe/1
recipe: {code: REC-B, name: Step records in the browser, product_code: RECT, product_name: Record tablets 100 mg, batch_size: {quantity: 1000, unit: tablet}}
operations:
  - key: make
    name: Making
    steps:
      - key: blender
        kind: equipment_id
        title: Identify the blender
        equipment_class: BLEND
      - key: sample_blend
        kind: sampling
        title: Sample the final blend
        sampling: {quantity: 5, unit: g, samples: 1, source: equipment, positions: [top, bottom], test: Blend uniformity, method: SOP-QC-021}
      - key: output
        kind: produce
        title: Record the tablets produced
        produce: {name: tablets_out, label: Tablets produced, unit: tablet}
      - key: labels
        kind: labelling
        title: Label the bottles
        labelling:
          per_container: {quantity: 100, unit: tablet}
          reconciliation: {absolute: 2}
          examination: [Label matches the specimen, Batch number and expiry legible]
          examine_units: 3
"""


def print_label(page, testid: str) -> None:
    """Press a label's print button: the PDF opens in a tab of its own, which is closed again."""
    with page.expect_popup() as popup:
        page.get_by_test_id(testid).first.click()
    popup.value.close()


def complete(page, key: str) -> None:
    settle(page)
    page.get_by_test_id("complete").click()
    page.locator(f"[data-step={key}].state-done").wait_for()


@pytest.mark.req("IPC-01", "GEN-01", "LBL-03", "LBL-02", "BR-01")
def test_an_operator_samples_records_output_and_labels_from_the_screen(page, live_db) -> None:
    from batchline.equipment.models import Equipment
    from tests.execution import steps_plant
    from tests.execution.test_engine import effective_recipe, new_batch

    people, _ = steps_plant.make_steps_plant()
    recipe = effective_recipe(people, RECIPE)
    batch = new_batch(people, recipe, number="R-100", quantity="1000")
    log_in(page, "operator")
    page.goto(f"/batches/{batch.number}/")
    start(page, "blender")
    page.get_by_test_id("scan").fill("EQ:BLEND-01")
    page.keyboard.press("Enter")
    page.get_by_text("Equipment BLEND-01").first.wait_for()
    complete(page, "blender")
    assert Equipment.objects.get(code="BLEND-01").current_batch == "R-100"

    # Sampling: a unit the batch is not in is refused in words; the right one gives a sample and its label.
    start(page, "sample_blend")
    form = page.get_by_test_id("sample-form")
    form.get_by_label("Unit (scan its tag)").fill("EQ:BLEND-02")
    form.get_by_label("Quantity taken (g)").fill("5.1")
    form.get_by_label("Position").select_option("top")
    page.get_by_test_id("take-sample").click()
    page.get_by_test_id("refusal").filter(has_text="is not in use for batch R-100").wait_for()
    form = page.get_by_test_id("sample-form")
    form.get_by_label("Unit (scan its tag)").fill("EQ:BLEND-01")
    form.get_by_label("Quantity taken (g)").fill("5.1")
    form.get_by_label("Position").select_option("top")
    page.get_by_test_id("take-sample").click()
    page.get_by_test_id("sample").filter(has_text="R-100-S01").wait_for()
    print_label(page, "sample-label")
    assert SampleLabelPrint.objects.filter(sample__code="R-100-S01").count() == 1
    complete(page, "sample_blend")
    sample = Sample.objects.get()
    assert (sample.source, sample.position, str(sample.quantity)) == ("BLEND-01", "top", "5.100000")

    # Output, container by container, each labelled; the total is the step's value.
    start(page, "output")
    for quantity in ("500", "480"):
        page.get_by_label("Quantity in this container (tablet)").fill(quantity)
        page.get_by_test_id("record-output").click()
        page.get_by_test_id("produced").filter(has_text=f"{quantity} tablet").wait_for()
    settle(page)
    for n in range(2):
        with page.expect_popup() as popup:
            page.get_by_test_id("output-label").nth(n).click()
        popup.value.close()
    assert LabelPrint.objects.filter(container__lot__number="R-100").count() == 2
    complete(page, "output")

    # Labelling: issued with a specimen from the records, reconciled, examined.
    start(page, "labels")
    page.get_by_label("Labels issued").fill("50")
    page.get_by_test_id("issue-labels").click()
    page.get_by_test_id("specimen").wait_for()
    assert page.get_by_test_id("labelling").get_by_text("Record tablets 100 mg (RECT)").count() == 1
    page.get_by_label("Applied").fill("45")
    page.get_by_label("Destroyed").fill("3")
    page.get_by_label("Returned").fill("2")
    page.get_by_test_id("reconcile-labels").click()
    page.get_by_test_id("reconciliation").filter(has_text="within").wait_for()
    form = page.get_by_test_id("examine-form")
    for n in range(2):
        form.locator(f"input[name=item_{n}][value=pass]").check()
    form.get_by_label("Units examined").fill("3")
    page.get_by_test_id("examine-labels").click()
    page.get_by_test_id("examination").filter(has_text="passed").wait_for()
    complete(page, "labels")
    assert LabelReconciliation.objects.get().within and LabelExamination.objects.get().passed

    # The record page links the PDF; the record holds the three sections.
    page.goto(f"/batches/{batch.number}/record/")
    page.get_by_role("heading", name="R-100", exact=False).first.wait_for()
