from __future__ import annotations

import copy
import typing
from pathlib import Path

import pytest
from pydantic import BaseModel

from batchline.recipes import document as doc
from batchline.recipes.compare import (
    compare,
    describe,
    header_fields,
    operation_fields,
    step_fields,
    value_fields,
)

OLD = {"operations": [{"key": "a", "steps": [{"key": "s1", "title": "One"}, {"key": "s2", "title": "Two"}]}]}


@pytest.mark.req("MBR-02")
def test_an_inserted_step_is_one_addition_not_a_cascade() -> None:
    new = {
        "operations": [
            {
                "key": "a",
                "steps": [
                    {"key": "s1", "title": "One"},
                    {"key": "s9", "title": "New"},
                    {"key": "s2", "title": "Two"},
                ],
            }
        ]
    }
    changes = {(c.path, c.kind) for c in compare(OLD, new)}
    assert changes == {
        ("operations[a].steps[s9].position", "added"),
        ("operations[a].steps[s9].key", "added"),
        ("operations[a].steps[s9].title", "added"),
        ("operations[a].steps[s2].position", "changed"),
    }


def test_removed_and_changed_texts_are_named() -> None:
    new = {"operations": [{"key": "a", "steps": [{"key": "s1", "title": "Uno"}]}]}
    got = {(c.path, c.kind, c.old, c.new) for c in compare(OLD, new)}
    assert ("operations[a].steps[s1].title", "changed", "One", "Uno") in got
    assert ("operations[a].steps[s2].title", "removed", "Two", None) in got


# --- in words, by importance ------------------------------------------------------------------

DEMO = Path(__file__).resolve().parents[2] / "src" / "batchline" / "recipes" / "demo" / "paracetamol-500.yaml"


@pytest.fixture(scope="module")
def demo() -> dict:
    return doc.canonical(doc.parse(DEMO.read_text()))


def _op(document: dict, key: str) -> dict:
    return next(o for o in document["operations"] if o["key"] == key)


def _step(document: dict, key: str) -> dict:
    return next(s for o in document["operations"] for s in o["steps"] if s["key"] == key)


def _words(comparison) -> list[tuple[int, str]]:
    return [(int(d.tier), d.words) for d in comparison.lines]


@pytest.mark.req("MBR-02")
def test_a_specification_change_comes_first_in_words_before_an_inserted_step_and_its_renumbering(
    demo,
) -> None:
    new = copy.deepcopy(demo)
    _step(new, "ipc_physical")["inputs"][0]["specification"]["high"] = "110"
    screening = copy.deepcopy(_step(new, "wet_screening"))
    _op(new, "granulation")["steps"].insert(
        0, {**screening, "key": "inspect_screen", "title": "Inspect the screen"}
    )
    _step(new, "ipc_physical")["instruction"] = "Measure ten tablets."
    got = describe(demo, new)
    assert _words(got) == [
        (
            1,
            "Step 'In-process check: hardness, thickness, friability, disintegration' (ipc_physical): "
            "Hardness (mean of 10) upper specification limit changed from 120 N to 110 N",
        ),
        (
            2,
            "Step 'Inspect the screen' (inspect_screen) added to operation 'Granulation' as step 1 "
            "(instruction step)",
        ),
        (
            3,
            "Step 'In-process check: hardness, thickness, friability, disintegration' (ipc_physical): "
            "instruction set to 'Measure ten tablets.' (none before)",
        ),
        (4, "Order: 9 steps renumbered only because others were added, removed or moved"),
    ]
    # The path-level list keeps every row, ordered the same way, each with the sentence covering it.
    rows = compare(demo, new)
    assert rows[0].path == "operations[compression].steps[ipc_physical].inputs[hardness].specification.high"
    assert (rows[0].tier, rows[0].old, rows[0].new) == (1, "120", "110")
    assert [c.tier for c in rows] == sorted(c.tier for c in rows)
    renumbered = [c for c in rows if c.path.endswith(".position") and c.kind == "changed"]
    assert len(renumbered) == 9 and {c.tier for c in renumbered} == {4}
    assert got.materials == frozenset()


@pytest.mark.req("MBR-02")
def test_steps_swapped_are_one_order_line_naming_the_step_that_moved(demo) -> None:
    new = copy.deepcopy(demo)
    steps = _op(new, "blending")["steps"]
    steps[2], steps[3] = steps[3], steps[2]
    assert _words(describe(demo, new)) == [
        (
            4,
            "Order: 1 step moved: 'Charge colloidal silicon dioxide' (charge_silica) in 'Final blending' "
            "from 3 to 4. 1 step renumbered only because others were added, removed or moved",
        )
    ]


@pytest.mark.req("MBR-02")
def test_material_quantity_tolerance_and_verification_name_the_material_and_its_units(demo) -> None:
    new = copy.deepcopy(demo)
    weigh = _step(new, "disp_api")
    weigh["material"] = {**weigh["material"], "quantity": "49.5", "tolerance_percent": "1"}
    weigh["verify"] = False
    _op(new, "drying")["yield"]["low_percent"] = "96"
    got = describe(demo, new)
    assert _words(got) == [
        (1, "Operation 'Fluid-bed drying' (drying): lowest yield changed from 97 % to 96 %"),
        (1, "Step 'Dispense paracetamol' (disp_api): PCM-API quantity changed from 50.0 kg to 49.5 kg"),
        (1, "Step 'Dispense paracetamol' (disp_api): PCM-API tolerance changed from 0.5 % to 1 %"),
        (2, "Step 'Dispense paracetamol' (disp_api): second person verifies: no (was yes)"),
    ]
    assert got.materials == {"PCM-API"}


def test_a_unit_change_shows_old_numbers_in_the_old_unit(demo) -> None:
    new = copy.deepcopy(demo)
    hardness = _step(new, "ipc_physical")["inputs"][0]
    hardness.update(unit="kp", specification={"low": "8", "high": "12"})
    lines = [w for _, w in _words(describe(demo, new))]
    assert (
        "Step 'In-process check: hardness, thickness, friability, disintegration' (ipc_physical): "
        "Hardness (mean of 10) lower specification limit changed from 80 N to 8 kp" in lines
    )
    assert any(w.endswith("Hardness (mean of 10) unit changed from 'N' to 'kp'") for w in lines)


def test_a_removed_step_a_new_limit_block_and_a_changed_predecessor_are_one_sentence_each(demo) -> None:
    new = copy.deepcopy(demo)
    _op(new, "drying")["steps"] = [s for s in _op(new, "drying")["steps"] if s["key"] != "identify_mill"]
    _step(new, "dry_milling")["inputs"][0]["specification"] = {"low": "55", "high": "59"}
    _step(new, "dry_milling")["after"] = ["lod"]
    got = _words(describe(demo, new))
    assert got[:3] == [
        (
            1,
            "Step 'Dry milling through 1.0 mm' (dry_milling): Milled granules specification added: "
            "Milled granules lower specification limit 55 kg; Milled granules upper specification limit 59 kg",
        ),
        (
            2,
            "Step 'Dry milling through 1.0 mm' (dry_milling): now waits for 'lod' (before: the step before it)",
        ),
        (
            2,
            "Step 'Identify the mill' (identify_mill) removed from operation 'Fluid-bed drying' (equipment id step)",
        ),
    ]


def test_a_material_charge_added_to_a_step_names_what_it_charges(demo) -> None:
    new = copy.deepcopy(demo)
    _step(new, "take_drums")["material"] = None
    got = describe(demo, new)
    assert _words(got)[0] == (
        2,
        "Step 'Take the lined bulk drums' (take_drums): material charge removed: material 'DRUM-60'; "
        "DRUM-60 quantity 4 piece; DRUM-60 quantity scales with the batch size yes",
    )
    assert got.materials == {"DRUM-60"}


def test_a_step_moved_to_another_operation_is_an_order_change_not_a_removal_and_an_addition(demo) -> None:
    new = copy.deepcopy(demo)
    mill = _step(new, "identify_mill")
    _op(new, "drying")["steps"].remove(mill)
    _op(new, "blending")["steps"].insert(0, mill)
    got = describe(demo, new)
    assert [t for t, _ in _words(got)] == [4]
    assert (
        "'Identify the mill' (identify_mill) from operation 'Fluid-bed drying' to 'Final blending'"
        in got.lines[0].words
    )
    assert {c.tier for c in got.changes} == {4}


def test_identical_documents_have_nothing_to_say(demo) -> None:
    assert describe(demo, copy.deepcopy(demo)).lines == [] and compare(demo, demo) == []


def _leaf_paths(model: type[BaseModel], prefix: str = "") -> set[str]:
    """Every field path a document of ``model`` can hold, blocks and their leaves, lists of keyed items apart."""
    out: set[str] = set()
    for name, info in model.model_fields.items():
        name = info.alias or name
        path = f"{prefix}{name}"
        nested = [
            a
            for a in typing.get_args(info.annotation) or (info.annotation,)
            if isinstance(a, type) and issubclass(a, BaseModel)
        ]
        if typing.get_origin(info.annotation) is list:
            nested = []
        if nested:
            out.add(path)
            out |= _leaf_paths(nested[0], f"{path}.")
        else:
            out.add(path)
    return out


@pytest.mark.req("MBR-02")
def test_every_field_of_the_recipe_format_has_words_and_a_tier() -> None:
    """A field added to the format later must be given words here, not fall through as an unknown path."""
    keyed = {"inputs", "calculations", "key", "steps"}
    step = _leaf_paths(doc.Step) - keyed
    assert step <= set(step_fields({}, {})), step - set(step_fields({}, {}))
    value = set()
    for model in (doc.Input, doc.Calculation, doc.Measured, doc.Produce):
        value |= _leaf_paths(model) - {"name"}
    assert value <= set(value_fields("x", "", "")), value - set(value_fields("x", "", ""))
    assert _leaf_paths(doc.Operation) - keyed <= set(operation_fields({}, {}))
    assert _leaf_paths(doc.Header) <= set(header_fields({}, {}))
