"""Recipe files: what is accepted, and every refusal with its line and reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from batchline.recipes import document as doc

SMALL = (Path(__file__).parent / "small.yaml").read_text()


def refused(text: str) -> list[str]:
    with pytest.raises(doc.RecipeInvalid) as e:
        doc.parse(text)
    return [str(p) for p in e.value.problems]


@pytest.mark.req("S88-02", "S88-04")
def test_a_valid_file_reads_into_a_canonical_document() -> None:
    parsed = doc.parse(SMALL)
    assert [s.key for _, s in parsed.steps()] == ["clearance", "mix", "weights", "mean"]
    assert parsed.predecessors() == {
        "clearance": [],
        "mix": ["clearance"],
        "weights": ["mix"],
        "mean": ["weights"],
    }
    data = doc.canonical(parsed)
    assert data["recipe"]["batch_size"] == {"quantity": "1000", "unit": "tablet"}
    # The canonical form reads back to itself, and so does its YAML export.
    assert doc.canonical(doc.from_canonical(data)) == data
    assert doc.canonical(doc.parse(doc.dump_yaml(parsed))) == data


def test_json_files_are_read_too() -> None:
    import json

    import yaml

    as_json = json.dumps(yaml.safe_load(SMALL), indent=2)
    assert doc.canonical(doc.parse(as_json)) == doc.canonical(doc.parse(SMALL))


@pytest.mark.req("S88-02")
def test_a_cycle_is_refused_with_its_line() -> None:
    text = SMALL.replace("        kind: checklist\n", "        kind: checklist\n        after: [mean]\n")
    (problem,) = refused(text)
    assert problem.startswith(
        "line 14 (operations.0.steps.0.after): the steps wait for each other in a circle"
    )


def test_an_unknown_unit_is_refused_with_its_line() -> None:
    text = SMALL.replace(
        "{name: w2, label: Weight 2, unit: mg", "{name: w2, label: Weight 2, unit: milligrammes"
    )
    (problem,) = refused(text)
    assert problem == "line 29 (operations.1.steps.0.inputs.1.unit): unknown unit 'milligrammes'"


@pytest.mark.req("IPC-01")
def test_an_inverted_limit_is_refused_with_its_line() -> None:
    text = SMALL.replace(
        "specification: {low: 570, high: 630}, critical: true}\n          - {name: w2",
        "specification: {low: 630, high: 570}, critical: true}\n          - {name: w2",
    )
    (problem,) = refused(text)
    assert problem.startswith(
        "line 28 (operations.1.steps.0.inputs.0): limits of 'w1': low limit 630 is above high limit 570"
    )


@pytest.mark.req("IPC-02")
def test_a_formula_using_a_missing_value_is_refused_with_its_line() -> None:
    (problem,) = refused(SMALL.replace("mean(w1, w2)", "mean(w1, w3)"))
    assert (
        problem
        == "line 34 (operations.1.steps.1.calculations.0.formula): formula uses 'w3', which no step records"
    )


def test_a_formula_using_a_value_recorded_later_is_refused() -> None:
    text = SMALL.replace(
        "        title: Tablet weights\n", "        title: Tablet weights\n        after: [clearance]\n"
    )
    text = text.replace("      - key: mean\n", "      - key: mean\n        after: [clearance]\n")
    problems = refused(text)
    assert "formula uses 'w1', recorded by step 'weights', which does not come before this one" in problems[0]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("recipe: [unclosed\n", "line 2: not valid YAML or JSON"),
        ("just text", "a recipe file is a mapping"),
        (
            SMALL.replace("kind: timer", "kind: teleport"),
            "line 18 (operations.0.steps.1.kind): Input should be",
        ),
        (
            SMALL.replace("title: Dry mix", "title: Dry mix\n        colour: blue"),
            "line 20 (operations.0.steps.1.colour): Extra inputs are not permitted",
        ),
        (
            SMALL.replace("key: mix", "key: Mix Step"),
            "line 17 (operations.0.steps.1.key): String should match pattern",
        ),
        (SMALL.replace("key: mean", "key: mix"), "step key 'mix' is used twice"),
        (
            SMALL.replace("after", "x").replace(
                "        timer: {min_minutes: 4, max_minutes: 6}",
                "        timer: {min_minutes: 7, max_minutes: 6}",
            ),
            "minimum duration is longer than the maximum",
        ),
        (SMALL.replace("kind: timer", "kind: data_entry"), "a data entry step needs at least one input"),
        (SMALL.replace("signs: true", "signs: true\n        role: wizard"), "unknown role 'wizard'"),
        (SMALL.replace("mean(w1, w2)", "__import__('os')"), "unknown function"),
        (SMALL.replace("unit: tablet", "unit: bananas"), "unknown unit"),
    ],
)
def test_bad_files_are_refused_with_the_place_and_the_reason(text: str, expected: str) -> None:
    problems = refused(text)
    assert any(expected in p for p in problems), problems
