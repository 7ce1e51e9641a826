"""The sampling step's ``result`` block: the laboratory's unit, limits and wait, checked at import (IPC-01)."""

from __future__ import annotations

import pytest

from batchline.recipes import document as doc
from batchline.recipes.compare import describe
from batchline.rules.changes import Tier
from tests.lims.plant import RECIPE


def problems(text: str) -> list[str]:
    with pytest.raises(doc.RecipeInvalid) as refused:
        doc.parse(text)
    return [str(p) for p in refused.value.problems]


@pytest.mark.req("IPC-01", "S88-04")
def test_a_sampling_step_states_its_results_unit_limits_and_wait() -> None:
    canonical = doc.canonical(doc.parse(RECIPE))
    blend = canonical["operations"][0]["steps"][1]["sampling"]["result"]
    assert blend == {
        "name": "blend_assay",
        "label": "Blend assay",
        "unit": "%",
        "specification": {"low": "95", "high": "105"},
        "action": {"low": "97", "high": "103"},
        "scales": False,
        "critical": True,
        "waits": True,
    }
    assert "result" not in canonical["operations"][0]["steps"][4]["sampling"]  # the retain sample: as before


@pytest.mark.req("IPC-01", "A11-05")
@pytest.mark.parametrize(
    ("change", "words"),
    [
        (
            ('unit: "%", specification: {low: 95', 'unit: "zorkmid", specification: {low: 95'),
            "unknown unit 'zorkmid'",
        ),
        (
            ("action: {low: 97, high: 103}", "action: {low: 90, high: 103}"),
            "action limits lie outside the specification limits",
        ),
        (("name: blend_assay", "name: api_total"), "value name 'api_total' is used twice"),
    ],
)
def test_a_result_block_that_cannot_judge_is_refused_where_it_stands(change, words) -> None:
    old, new = change
    assert old in RECIPE
    found = problems(RECIPE.replace(old, new, 1))
    assert any(words in p and "sampling.result" in p for p in found), found


@pytest.mark.req("IPC-02", "IPC-01")
def test_no_formula_counts_on_a_laboratory_result() -> None:
    text = RECIPE.replace(
        "      - key: retain\n",
        "      - key: blend_mean\n"
        "        kind: calculation\n"
        "        title: Mean assay\n"
        "        after: [blend_ipc]\n"
        "        calculations: [{name: mean_assay, label: Mean assay, formula: blend_assay * 1, unit: '%'}]\n"
        "      - key: retain\n",
    )
    assert any(
        "formula uses 'blend_assay', a laboratory result, which no formula uses" in p for p in problems(text)
    )


@pytest.mark.req("MBR-02", "IPC-01")
def test_a_changed_limit_or_wait_reads_as_a_limit_change_in_the_comparison() -> None:
    old = doc.canonical(doc.parse(RECIPE))
    new = doc.canonical(
        doc.parse(
            RECIPE.replace(
                "specification: {low: 95, high: 105}", "specification: {low: 96, high: 105}"
            ).replace("critical: true, waits: true", "critical: true, waits: false")
        )
    )
    lines = [(int(d.tier), d.words) for d in describe(old, new).lines]
    assert any(
        "Blend assay lower specification limit" in w and "95 %" in w and "96 %" in w for _, w in lines
    ), lines
    assert any("step waits for the laboratory's result" in w for _, w in lines), lines
    assert all(t == int(Tier.LIMIT) for t, w in lines if "Blend assay" in w or "waits" in w)
