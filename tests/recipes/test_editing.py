"""Editor changes as functions from one recipe document to the next (no database)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from batchline.recipes import document as doc
from batchline.recipes import editing

SMALL = (Path(__file__).parent / "small.yaml").read_text()


@pytest.fixture
def data() -> dict[str, Any]:
    return doc.canonical(doc.parse(SMALL))


def order(d: dict[str, Any]) -> list[list[str]]:
    return [[s["key"] for s in op["steps"]] for op in d["operations"]]


def problem(exc: pytest.ExceptionInfo[doc.RecipeInvalid]) -> str:
    return exc.value.problems[0].message


@pytest.mark.req("MBR-01", "S88-02")
def test_a_step_moves_within_its_operation_and_across_the_edge_into_the_next(data) -> None:
    assert order(data) == [["clearance", "mix"], ["weights", "mean"]]
    assert order(editing.move_step(data, "mix", -1)) == [["mix", "clearance"], ["weights", "mean"]]
    assert order(editing.move_step(data, "mix", +1)) == [["clearance"], ["mix", "weights", "mean"]]
    assert order(editing.move_step(data, "weights", -1)) == [["clearance", "mix", "weights"], ["mean"]]
    # At the very top or bottom nothing moves; the input is never changed in place.
    assert editing.move_step(data, "clearance", -1) == data
    assert editing.move_step(data, "mean", +1) == data
    assert order(data) == [["clearance", "mix"], ["weights", "mean"]]
    # The moved document is still a valid recipe: order is sequential by default.
    moved = doc.validate(editing.move_step(data, "mix", -1))
    assert moved.predecessors() == {
        "mix": [],
        "clearance": ["mix"],
        "weights": ["clearance"],
        "mean": ["weights"],
    }


@pytest.mark.req("MBR-01", "A11-05")
def test_an_operation_keeps_a_step_and_a_recipe_keeps_an_operation(data) -> None:
    one = editing.delete_step(data, "mix")
    with pytest.raises(doc.RecipeInvalid) as exc:
        editing.delete_step(one, "clearance")
    assert problem(exc) == "An operation keeps at least one step; delete the operation instead."
    with pytest.raises(doc.RecipeInvalid) as exc:
        editing.move_step(one, "clearance", +1)
    assert "keeps at least one step" in problem(exc)
    single = editing.delete_operation(data, "press")
    with pytest.raises(doc.RecipeInvalid) as exc:
        editing.delete_operation(single, "prep")
    assert problem(exc) == "A recipe keeps at least one operation."
    with pytest.raises(doc.RecipeInvalid) as exc:
        editing.delete_step(data, "nope")
    assert "There is no step 'nope'" in problem(exc)


@pytest.mark.req("S88-02")
def test_deleting_a_step_hands_its_predecessors_on_to_the_steps_that_waited_for_it(data) -> None:
    # A parallel branch: weights and mix both wait for clearance; mean waits for both.
    data["operations"][1]["steps"][0]["after"] = ["clearance"]
    data["operations"][1]["steps"][1]["after"] = ["weights", "mix"]
    assert doc.validate(data).predecessors()["mean"] == ["weights", "mix"]
    without_mix = editing.delete_step(data, "mix")
    assert without_mix["operations"][1]["steps"][1]["after"] == ["weights", "clearance"]
    # The calculation's formula still finds its values: the result is a valid recipe.
    assert doc.validate(without_mix).predecessors()["mean"] == ["weights", "clearance"]
    gone = editing.delete_operation(data, "prep")
    assert gone["operations"][0]["steps"][0]["after"] == []
    assert gone["operations"][0]["steps"][1]["after"] == ["weights"]


@pytest.mark.req("MBR-01")
def test_a_renamed_step_is_renamed_where_others_wait_for_it(data) -> None:
    data["operations"][1]["steps"][1]["after"] = ["weights"]
    weights = dict(data["operations"][1]["steps"][0], key="tablet_weights")
    renamed = editing.put_step(data, operation="press", step=weights, replaces="weights")
    assert order(renamed) == [["clearance", "mix"], ["tablet_weights", "mean"]]
    assert renamed["operations"][1]["steps"][1]["after"] == ["tablet_weights"]
    doc.validate(renamed)
    with pytest.raises(doc.RecipeInvalid) as exc:
        editing.put_step(data, operation="press", step=dict(weights, key="mix"), replaces="weights")
    assert problem(exc) == "A step 'mix' exists already; choose another key."


@pytest.mark.req("MBR-01", "A11-05")
def test_an_added_step_or_operation_goes_at_the_end_and_must_leave_a_valid_recipe(data) -> None:
    step = {"key": "yield", "kind": "calculation", "title": "Yield", "calculations": []}
    added = editing.put_step(data, operation="press", step=step)
    assert order(added)[1] == ["weights", "mean", "yield"]
    with pytest.raises(doc.RecipeInvalid) as exc:
        doc.validate(added)
    assert [(p.place(), p.message) for p in exc.value.problems] == [
        ("operation 2, step 3, calculations", "a calculation step needs a formula")
    ]
    with pytest.raises(doc.RecipeInvalid):
        editing.put_step(data, operation="nowhere", step=step)
    first = {"key": "pack", "kind": "instruction", "title": "Pack"}
    more = editing.add_operation(data, key="packing", name="Packing", first_step=first)
    assert order(more)[-1] == ["pack"] and more["operations"][-1]["name"] == "Packing"
    with pytest.raises(doc.RecipeInvalid):
        editing.add_operation(more, key="packing", name="Again", first_step={**first, "key": "pack2"})
    assert [op["key"] for op in editing.move_operation(more, "packing", -1)["operations"]] == [
        "prep",
        "packing",
        "press",
    ]


@pytest.mark.req("MBR-01")
def test_header_changes_keep_the_code_and_product(data) -> None:
    changed = editing.set_header(data, name="Renamed", quantity="2000", unit="tablet", description="d")
    assert changed["recipe"]["code"] == "TST-1" and changed["recipe"]["product_code"] == "TST"
    assert doc.validate(changed).recipe.batch_size.quantity == 2000
    with pytest.raises(doc.RecipeInvalid) as exc:
        doc.validate(editing.set_header(data, name="x", quantity="-1", unit="parsec²", description=""))
    assert {p.place() for p in exc.value.problems} == {"recipe, batch size, quantity"}


def test_keys_come_from_titles_and_stay_unique() -> None:
    assert editing.suggest_key("Dry granules at 60 °C", set()) == "dry_granules_at_60_c"
    assert editing.suggest_key("Dry granules at 60 °C", {"dry_granules_at_60_c"}) == "dry_granules_at_60_c_2"
    assert editing.suggest_key("1st weighing", set()) == "s_1st_weighing"
    assert editing.suggest_key("¿?", set()) == "step"
    taken = {f"{'x' * 34}", *(f"{'x' * 34}_{n}" for n in range(2, 12))}
    assert re.fullmatch(r"[a-z][a-z0-9_]{0,39}", editing.suggest_key("x" * 100, taken))  # the schema's key
