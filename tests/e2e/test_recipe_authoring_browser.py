"""A recipe author builds a recipe in headless Chromium: new recipe, steps with limits, reorder, preview."""

from __future__ import annotations

import re

import pytest

from batchline.recipes.models import MasterRecipe
from tests.conftest import make_user
from tests.e2e.test_browser import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def step_titles(page) -> list[str]:
    return page.locator(".edit-step .edit-step-text strong").all_inner_texts()


@pytest.mark.req("MBR-01", "S88-02", "S88-04")
def test_an_author_builds_a_recipe_with_the_form_editor_and_reorders_its_steps(page, live_db) -> None:
    make_user("author", ["recipe_author"])
    log_in(page, "author")
    page.goto("/recipes/")
    page.get_by_role("link", name="New recipe").click()
    page.get_by_label("Recipe code").fill("AMX-250")
    page.get_by_label("Recipe name").fill("Amoxicillin capsules")
    page.get_by_label("Product code").fill("AMX")
    page.get_by_label("Product name").fill("Amoxicillin 250 mg capsules")
    page.get_by_label("Nominal batch size").fill("50000")
    page.get_by_label("Unit").fill("capsule")
    page.get_by_label("First operation").fill("Encapsulation")
    page.get_by_label("Its first step").fill("Set up the capsule filler")
    page.get_by_role("button", name="Create draft").click()
    page.get_by_role("heading", name="Edit draft AMX-250 version 1").wait_for()

    # A data entry step with a unit, plausibility and specification limits, a critical parameter.
    page.get_by_role("link", name="Add a step to Encapsulation").click()
    page.get_by_label("Title").fill("Fill weight check")
    page.get_by_label("Step type").select_option("data_entry")
    page.get_by_label("Input 1 label").fill("Fill weight")
    page.get_by_label("Input 1 unit").fill("mg")
    page.get_by_label("Input 1 target").fill("300")
    page.get_by_label("Input 1 plausible from").fill("100")
    page.get_by_label("Input 1 plausible to").fill("500")
    page.get_by_label("Input 1 specification from").fill("315")  # inverted on purpose
    page.get_by_label("Input 1 specification to").fill("285")
    page.get_by_label("Input 1: Critical process parameter").check()
    page.get_by_role("button", name="Save step").click()
    problems = page.get_by_test_id("problems")
    problems.wait_for()
    assert "limits of 'fill_weight'" in problems.inner_text()
    # What was typed is still there to fix.
    assert page.get_by_label("Input 1 label").input_value() == "Fill weight"
    page.get_by_label("Input 1 specification from").fill("285")
    page.get_by_label("Input 1 specification to").fill("315")
    page.get_by_role("button", name="Save step").click()
    page.get_by_role("heading", name="Edit draft AMX-250 version 1").wait_for()
    assert step_titles(page) == ["Set up the capsule filler", "Fill weight check"]

    # Reorder with the buttons: htmx swaps the editor in place, no page load.
    page.evaluate("window.__stayed = true")
    page.get_by_role("button", name="Move step Fill weight check up").click()
    page.locator(".edit-step strong").first.filter(has_text=re.compile(r"^Fill weight check$")).wait_for()
    assert page.evaluate("window.__stayed") is True
    assert step_titles(page) == ["Fill weight check", "Set up the capsule filler"]

    # A second operation, then the preview shows the procedure as the operator will meet it.
    page.get_by_label("Operation name").fill("Packaging")
    page.get_by_label("Its first step").fill("Count capsules into bottles")
    page.get_by_role("button", name="Add operation").click()
    page.get_by_text("Count capsules into bottles").wait_for()
    page.get_by_role("link", name="Preview and sign").click()
    preview = page.locator(".preview-step").all_inner_texts()
    assert preview[0].startswith("Fill weight check")
    assert "specification 285–315" in preview[0] and "CPP" in preview[0]
    assert len(preview) == 3

    recipe = MasterRecipe.objects.get()
    assert [[s["key"] for s in op["steps"]] for op in recipe.document["operations"]] == [
        ["fill_weight_check", "set_up_the_capsule_filler"],
        ["count_capsules_into_bottles"],
    ]
