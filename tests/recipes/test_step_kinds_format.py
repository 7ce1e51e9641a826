"""The recipe format of the step kinds with records of their own (sampling, produce, labelling), a
timer's measured duration, and the check that refuses free text recording a lot, a container or a
unit: what is accepted, and each refusal with its line and reason."""

from __future__ import annotations

import pytest

from batchline.recipes import document as doc
from tests.execution.steps_plant import RECIPE

HEAD = """\
format: batchline.recipe/1
recipe: {code: T-1, name: Test, product_code: T, product_name: Test tablets, batch_size: {quantity: 1000, unit: tablet}}
operations:
  - key: op
    name: Operation
    steps:
"""


def refused(text: str) -> list[str]:
    with pytest.raises(doc.RecipeInvalid) as e:
        doc.parse(text)
    return [str(p) for p in e.value.problems]


@pytest.mark.req("IPC-01", "LBL-03", "GEN-01", "IPC-05", "YLD-01")
def test_the_new_step_kinds_are_read_into_the_canonical_document() -> None:
    parsed = doc.parse(RECIPE)
    data = doc.canonical(parsed)
    steps = {s["key"]: s for op in data["operations"] for s in op["steps"]}
    assert steps["sample_blend"]["sampling"] == {
        "material": None,
        "quantity": "5",
        "unit": "g",
        "scales": False,
        "samples": 2,
        "source": "equipment",
        "positions": ["top", "bottom"],
        "test": "Blend uniformity",
        "method": "SOP-QC-021",
    }
    assert steps["output"]["produce"] == {
        "name": "tablets_out",
        "label": "Tablets produced",
        "unit": "tablet",
        "specification": None,
        "critical": False,
    }
    assert steps["lubricate"]["timer"]["record"]["name"] == "lubrication_time"
    assert steps["labels"]["labelling"]["reconciliation"] == {"absolute": "2", "percent": None}
    assert steps["labels"]["labelling"]["examine_units"] == 5
    # The produce total and the measured time are values: a formula and a yield use them.
    assert doc.canonical(doc.parse(doc.dump_yaml(parsed))) == data


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        (
            "      - {key: s, kind: sampling, title: Sample}\n",
            "line 7 (operations.0.steps.0.sampling): a sampling step needs its 'sampling' block",
        ),
        (
            "      - key: s\n        kind: sampling\n        title: Sample\n"
            "        sampling: {quantity: 5, unit: furlong-ish, source: equipment, test: LOD}\n",
            "line 10 (operations.0.steps.0.sampling.unit): unknown unit",
        ),
        (
            "      - key: s\n        kind: sampling\n        title: Sample\n"
            "        sampling: {quantity: 5, unit: g, source: bucket, test: LOD}\n",
            "line 10 (operations.0.steps.0.sampling.source): Input should be 'container' or 'equipment'",
        ),
        (
            "      - key: s\n        kind: sampling\n        title: Sample\n"
            "        sampling: {quantity: 5, unit: g, samples: 0, source: equipment, test: LOD}\n",
            "line 10 (operations.0.steps.0.sampling.samples): Input should be greater than or equal to 1",
        ),
        (
            "      - key: s\n        kind: instruction\n        title: Read\n"
            "        sampling: {quantity: 5, unit: g, source: equipment, test: LOD}\n",
            "line 10 (operations.0.steps.0.sampling): only a sampling step takes 'sampling'",
        ),
        (
            "      - {key: p, kind: produce, title: Output}\n",
            "line 7 (operations.0.steps.0.produce): a produce step needs its 'produce' block",
        ),
        (
            "      - key: p\n        kind: produce\n        title: Output\n"
            "        produce: {name: out, label: Output, unit: parsecs-ish}\n",
            "line 10 (operations.0.steps.0.produce.unit): unknown unit",
        ),
        (
            "      - key: l\n        kind: labelling\n        title: Label\n"
            "        labelling: {per_container: {quantity: 100, unit: tablet}, examination: []}\n",
            "line 10 (operations.0.steps.0.labelling.examination): List should have at least 1 item",
        ),
        (
            "      - key: l\n        kind: labelling\n        title: Label\n"
            "        labelling:\n          per_container: {quantity: 100, unit: tablet}\n"
            "          reconciliation: {absolute: 2, percent: 1}\n          examination: [Label correct]\n",
            "line 12 (operations.0.steps.0.labelling.reconciliation): give the reconciliation limit as a "
            "percentage or as a count, not both",
        ),
        (
            "      - key: t\n        kind: timer\n        title: Mix\n"
            "        timer: {max_minutes: 5, record: {name: t_mix, label: Mixing time, unit: kg}}\n",
            "line 10 (operations.0.steps.0.timer.record.unit): 'kg' is not a unit of time",
        ),
        (
            "      - key: t\n        kind: timer\n        title: Mix\n"
            "        timer: {max_minutes: 5, record: {name: t_mix, label: Mixing time}}\n"
            "      - key: d\n        kind: data_entry\n        title: Again\n"
            "        inputs: [{name: t_mix, label: Mixing time typed, unit: min}]\n",
            "line 14 (operations.0.steps.1.inputs.0.name): value name 't_mix' is used twice (also in step 't')",
        ),
    ],
)
@pytest.mark.req("MBR-01", "A11-05")
def test_a_step_kind_without_what_it_needs_is_refused_with_its_line(step: str, expected: str) -> None:
    problems = refused(HEAD + step)
    assert any(p.startswith(expected) for p in problems), problems


@pytest.mark.req("IPC-02", "YLD-01")
def test_a_formula_and_a_yield_may_use_a_produce_total_and_a_measured_time() -> None:
    text = HEAD + (
        "      - key: t\n        kind: timer\n        title: Mix\n"
        "        timer: {max_minutes: 5, record: {name: t_mix, label: Mixing time}}\n"
        "      - key: p\n        kind: produce\n        title: Output\n"
        "        produce: {name: out, label: Output, unit: tablet}\n"
        "      - key: c\n        kind: calculation\n        title: Rate\n"
        "        calculations: [{name: rate, label: Tablets a minute, formula: 'out / t_mix'}]\n"
        "    yield: {actual: out, theoretical: 1000, unit: tablet, low_percent: 95, high_percent: 101}\n"
    )
    doc.parse(text)
    # Before the step that records it, a formula may not use it.
    produce = "      - key: p\n        kind: produce\n        title: Output\n        produce: {name: out, label: Output, unit: tablet}\n"
    calc = "      - key: c\n        kind: calculation\n        title: Rate\n        calculations: [{name: rate, label: Tablets a minute, formula: 'out / t_mix'}]\n"
    early = text.replace(produce + calc, calc + produce)
    assert early != text
    assert any("recorded by step 'p', which does not come before this one" in p for p in refused(early))


@pytest.mark.parametrize(
    ("name", "label", "gate"),
    [
        ("api_lot", "Paracetamol lot", "material_charge or weigh_dispense"),
        ("lot_number", "Lot number", "material_charge or weigh_dispense"),
        ("source_container", "Container scanned", "material_charge or weigh_dispense"),
        ("starch_batch", "Maize starch batch", "material_charge or weigh_dispense"),
        ("remarks", "Container ID", "material_charge or weigh_dispense"),
        ("granulator_id", "High-shear granulator", "equipment_id"),
        ("dryer_id", "Fluid-bed dryer", "equipment_id"),
        ("press_no", "Rotary press", "equipment_id"),
        ("dryer", "Dryer used", "equipment_id"),
        ("unit_code", "Unit", "equipment_id"),
        ("notes", "Granulator number", "equipment_id"),
    ],
)
@pytest.mark.req("WD-05", "EQ-01", "MAT-01")
def test_free_text_that_records_a_lot_a_container_or_a_unit_is_refused_naming_its_step_kind(
    name, label, gate
) -> None:
    text = HEAD + (
        "      - key: d\n        kind: data_entry\n        title: Record\n"
        f"        inputs:\n          - {{name: {name}, label: {label}, type: text}}\n"
    )
    (problem,) = refused(text)
    assert problem.startswith("line 11 (operations.0.steps.0.inputs.0.type):") and gate in problem


@pytest.mark.parametrize(
    ("name", "label"),
    [
        ("lot_observations", "Observations on the lot"),
        ("container_condition", "Condition of the container"),
        ("batch_remarks", "Remarks about this batch"),
        ("press_remarks", "Rotary press noise"),
        ("operator_id", "Operator badge"),
        ("granulate_appearance", "Appearance of the granulate"),
        ("deviation_reference", "Deviation number"),
    ],
)
@pytest.mark.req("WD-05", "EQ-01")
def test_honest_free_text_about_lots_containers_and_units_is_accepted(name, label) -> None:
    doc.parse(
        HEAD + "      - key: d\n        kind: data_entry\n        title: Record\n"
        f"        inputs:\n          - {{name: {name}, label: {label}, type: text}}\n"
    )


@pytest.mark.req("WD-05")
def test_a_lot_typed_as_a_number_or_choice_is_not_free_text() -> None:
    doc.parse(
        HEAD + "      - key: d\n        kind: data_entry\n        title: Record\n"
        "        inputs:\n          - {name: lot_count, label: Lots used, type: number}\n"
        "          - {name: api_lot_ok, label: Lot label intact, type: yes_no}\n"
    )
