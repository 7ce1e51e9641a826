"""The form editor: a new recipe, its steps and inputs, reordering; each change checked and audited."""

from __future__ import annotations

import html
from typing import Any

import pytest

from batchline.audit.models import AuditEntry
from batchline.recipes.models import MasterRecipe
from batchline.recipes.services import document_digest
from tests.conftest import make_user
from tests.recipes.test_recipe_services import SMALL, act

pytestmark = pytest.mark.django_db

NEW = {
    "code": "amx-250",
    "name": "Amoxicillin capsules",
    "product_code": "AMX",
    "product_name": "Amoxicillin 250 mg capsules",
    "quantity": "50000",
    "unit": "capsule",
    "operation": "Line clearance",
    "first_step": "Check the room is clear",
}

WEIGHT_STEP = {
    "title": "Fill weight check",
    "kind": "data_entry",
    "role": "operator",
    "order": "sequence",
    "in-0-label": "Fill weight",
    "in-0-type": "number",
    "in-0-unit": "mg",
    "in-0-target": "300",
    "in-0-plausible_low": "100",
    "in-0-plausible_high": "500",
    "in-0-spec_low": "285",
    "in-0-spec_high": "315",
    "in-0-critical": "1",
    "in-0-required": "1",
    "in-1-label": "",
    "in-1-name": "",
}


@pytest.fixture
def author(db, login):
    return login(make_user("author", ["recipe_author"]))


def text(response: Any) -> str:
    return html.unescape(response.content.decode())


def trail(recipe: MasterRecipe) -> int:
    return AuditEntry.objects.filter(record_type="recipes.masterrecipe", record_id=str(recipe.pk)).count()


@pytest.mark.req("MBR-01", "P11-04")
def test_an_author_creates_a_recipe_adds_a_checked_step_and_reorders_in_the_browser_forms(author) -> None:
    response = author.post("/recipes/new/", NEW)
    recipe = MasterRecipe.objects.get()
    assert response.url == f"/recipes/{recipe.pk}/editor/"
    assert (recipe.code, recipe.version, recipe.status) == ("AMX-250", 1, "draft")
    assert recipe.document["operations"][0]["steps"][0] == {
        **recipe.document["operations"][0]["steps"][0],
        "key": "check_the_room_is_clear",
        "kind": "instruction",
    }
    page = text(author.get(response.url))
    assert "Check the room is clear" in page and "Add a step to Line clearance" in page

    seen = document_digest(recipe.document)
    add = author.post(
        f"/recipes/{recipe.pk}/editor/operations/line_clearance/add-step/", {**WEIGHT_STEP, "seen": seen}
    )
    assert add.status_code == 302 and add.url.endswith("#step-fill_weight_check")
    recipe.refresh_from_db()
    step = recipe.document["operations"][0]["steps"][1]
    assert step["inputs"] == [
        {
            "name": "fill_weight",
            "label": "Fill weight",
            "type": "number",
            "unit": "mg",
            "target": "300",
            "plausible": {"low": "100", "high": "500"},
            "specification": {"low": "285", "high": "315"},
            "action": None,
            "choices": [],
            "critical": True,
            "scales": False,
            "required": True,
        }
    ]

    # Reorder with the buttons (as htmx posts them): the weight check moves above the clearance.
    seen = document_digest(recipe.document)
    moved = author.post(
        f"/recipes/{recipe.pk}/editor/change/",
        {"action": "move_step", "step": "fill_weight_check", "direction": "up", "seen": seen},
        HTTP_HX_REQUEST="true",
    )
    assert moved.status_code == 200 and 'id="editor"' in moved.content.decode()
    recipe.refresh_from_db()
    assert [s["key"] for s in recipe.document["operations"][0]["steps"]] == [
        "fill_weight_check",
        "check_the_room_is_clear",
    ]
    # Every change is one audit entry on the recipe: created, step added, step moved.
    entries = AuditEntry.objects.filter(record_type="recipes.masterrecipe", record_id=str(recipe.pk))
    assert [e.action for e in entries.order_by("id")] == ["create", "update", "update"]

    # The edited step's form shows what is stored.
    form = text(author.get(f"/recipes/{recipe.pk}/editor/steps/fill_weight_check/"))
    assert 'value="Fill weight"' in form and 'value="285"' in form and 'value="315"' in form


@pytest.mark.req("A11-05", "MBR-01")
@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"in-0-unit": "blorbs"}, "operation 1, step 2, input 1, unit: unknown unit 'blorbs'"),
        ({"in-0-spec_low": "320"}, "limits of 'fill_weight'"),
        ({"in-0-target": "three hundred"}, "Fill weight: target: three hundred is not a number"),
        # Typed numbers are read in the site's notation, like every entry (DI-05).
        ({"in-0-spec_high": "1,500"}, "Fill weight: specification, to: 1,500: did you mean 1.500 or 1500?"),
        (
            {"timer_min": "1e3"},
            "Timer: at least (min): 1e3: write the number out in digits, without an exponent",
        ),
        (
            {"kind": "calculation", "calc-0-label": "Mean", "calc-0-formula": "mean(fill_weight, w9)"},
            "formula uses 'w9', which no step records",
        ),
        ({"order": "after", "after": ["fill_weight_check"]}, "waits for itself"),
        ({"title": ""}, "operation 1, step 2, title: String should have at least 1 character"),
    ],
)
def test_a_step_that_would_break_the_recipe_is_refused_with_its_place_and_nothing_is_saved(
    author, change: dict[str, Any], problem: str
) -> None:
    author.post("/recipes/new/", NEW)
    recipe = MasterRecipe.objects.get()
    url = f"/recipes/{recipe.pk}/editor/operations/line_clearance/add-step/"
    if change.get("after"):
        author.post(url, WEIGHT_STEP)
        recipe.refresh_from_db()
        url = f"/recipes/{recipe.pk}/editor/steps/fill_weight_check/"
    before, entries = recipe.document, trail(recipe)
    response = author.post(url, {**WEIGHT_STEP, "key": "fill_weight_check", **change})
    assert response.status_code == 422
    assert problem in text(response)
    recipe.refresh_from_db()
    assert recipe.document == before and trail(recipe) == entries
    # The form comes back with what the author typed, to fix, not to retype.
    assert 'value="Fill weight"' in text(response)


@pytest.mark.req("MBR-01", "DI-05")
def test_a_comma_site_types_and_reads_its_recipe_numbers_with_a_comma(author) -> None:
    from tests.conftest import configure

    configure(decimal_separator="comma")
    new = {**NEW, "quantity": "1000,5"}
    assert author.post("/recipes/new/", new).status_code == 302
    recipe = MasterRecipe.objects.get()
    assert recipe.document["recipe"]["batch_size"]["quantity"] == "1000.5"  # the file keeps a point
    url = f"/recipes/{recipe.pk}/editor/operations/line_clearance/add-step/"
    step = {**WEIGHT_STEP, "in-0-target": "300,25", "in-0-spec_low": "285,5"}
    assert author.post(url, step).status_code == 302
    recipe.refresh_from_db()
    saved = recipe.document["operations"][0]["steps"][-1]["inputs"][0]
    assert (saved["target"], saved["specification"]["low"]) == ("300.25", "285.5")
    form = text(
        author.get(
            f"/recipes/{recipe.pk}/editor/steps/{recipe.document['operations'][0]['steps'][-1]['key']}/"
        )
    )
    assert 'value="300,25"' in form and 'value="285,5"' in form  # shown as the site writes them
    assert 'value="1000,5"' in text(author.get(f"/recipes/{recipe.pk}/editor/"))


@pytest.mark.req("MBR-01", "DI-05")
def test_a_save_over_a_newer_change_is_refused_not_lost(author) -> None:
    author.post("/recipes/new/", NEW)
    recipe = MasterRecipe.objects.get()
    stale = document_digest(recipe.document)
    author.post(
        f"/recipes/{recipe.pk}/editor/change/",
        {"action": "rename_operation", "operation": "line_clearance", "name": "Clearance", "seen": stale},
    )
    response = author.post(
        f"/recipes/{recipe.pk}/editor/change/",
        {"action": "rename_operation", "operation": "line_clearance", "name": "Room check", "seen": stale},
    )
    assert response.status_code == 422 and "Someone saved this draft after you opened it" in text(response)
    recipe.refresh_from_db()
    assert recipe.document["operations"][0]["name"] == "Clearance"


@pytest.mark.req("MBR-01", "P11-07")
def test_only_authors_edit_and_only_drafts_change(author, login) -> None:
    author.post("/recipes/import/", {"text": SMALL})
    recipe = MasterRecipe.objects.get()
    operator = login(make_user("op", ["operator"]), None)
    assert operator.get(f"/recipes/{recipe.pk}/editor/").status_code == 403
    assert (
        operator.post(
            f"/recipes/{recipe.pk}/editor/change/", {"action": "delete_step", "step": "mix"}
        ).status_code
        == 403
    )
    act(MasterRecipe.objects.get().author, recipe, "submit", "performed")
    response = author.post(f"/recipes/{recipe.pk}/editor/change/", {"action": "delete_step", "step": "mix"})
    assert response.status_code == 422 and "only a draft can be edited" in text(response)
    assert author.get(f"/recipes/{recipe.pk}/editor/steps/nope/").status_code == 404


@pytest.mark.req("MBR-01")
def test_a_new_recipe_needs_a_free_code_and_a_valid_header(author) -> None:
    author.post("/recipes/import/", {"text": SMALL})
    taken = author.post("/recipes/new/", {**NEW, "code": "TST-1"})
    assert taken.status_code == 422 and "Recipe TST-1 exists already" in text(taken)
    bad = author.post("/recipes/new/", {**NEW, "quantity": "0", "unit": "bushel-ish"})
    assert bad.status_code == 422
    assert "recipe, batch size, quantity: Input should be greater than 0" in text(bad)
    assert MasterRecipe.objects.count() == 1


@pytest.mark.req("MBR-01", "TRN-01", "WD-05")
def test_the_editor_writes_material_equipment_and_qualification_steps(author) -> None:
    author.post("/recipes/new/", NEW)
    recipe = MasterRecipe.objects.get()
    url = f"/recipes/{recipe.pk}/editor/operations/line_clearance/add-step/"
    charge = {
        "title": "Charge amoxicillin",
        "kind": "material_charge",
        "role": "operator",
        "order": "sequence",
        "material_code": "AMX-API",
        "material_quantity": "12.5",
        "material_unit": "kg",
        "material_tolerance_percent": "0.5",
        "material_scales": "1",
        "qualification": "sop-disp-002",
    }
    assert author.post(url, charge).status_code == 302
    both = author.post(url, {**charge, "title": "Charge again", "material_tolerance_absolute": "0.1"})
    assert both.status_code == 422 and "not both" in text(both)
    assert (
        author.post(
            url,
            {
                "title": "Identify the filler",
                "kind": "equipment_id",
                "equipment_class": "FILLER",
                "order": "sequence",
            },
        ).status_code
        == 302
    )
    recipe.refresh_from_db()
    steps = recipe.document["operations"][0]["steps"]
    assert steps[1]["material"] == {
        "code": "AMX-API",
        "quantity": "12.5",
        "unit": "kg",
        "scales": True,
        "tolerance_percent": "0.5",
        "tolerance_absolute": None,
        "potency_adjust": False,
        "compensates": None,
        "dispensed": None,
    }
    assert steps[1]["qualification"] == "SOP-DISP-002"
    assert steps[2]["kind"] == "equipment_id" and steps[2]["equipment_class"] == "FILLER"
