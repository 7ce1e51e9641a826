"""Input found by review to break the engine: each now refused in words, nothing written."""

from __future__ import annotations

from decimal import Decimal

import pytest

from batchline.execution import services as ex
from batchline.execution.models import Batch, BatchException, BatchStep, StepValue
from batchline.recipes import document as doc
from batchline.recipes import services as recipes
from tests.execution.test_engine import A, effective_recipe, make_plant, new_batch, run_to_weights, sign
from tests.recipes.test_recipe_services import SMALL

pytestmark = pytest.mark.django_db


@pytest.mark.req("A11-05")
@pytest.mark.parametrize(
    ("number", "quantity", "code"),
    [
        ("A/B", "1000", "NUMBER_FORMAT"),
        ("B 1", "1000", "NUMBER_FORMAT"),
        ("B-1", "NaN", "QUANTITY"),
        ("B-1", "Infinity", "QUANTITY"),
        ("B-1", "999999999999", "QUANTITY"),
        ("B-1", "0.0000001", "QUANTITY"),
        ("B-1", "0.0001", "QUANTITY"),  # a ten-millionth of the nominal size
    ],
)
def test_bad_batch_numbers_and_quantities_are_refused(db, number: str, quantity: str, code: str) -> None:
    people, recipe = make_plant()
    with pytest.raises(ex.ExecutionRefused) as refused:
        ex.batch_create(
            actor=A(people["supervisor"]), recipe=recipe, number=number, planned_quantity=Decimal(quantity)
        )
    assert refused.value.verdict.codes == [code]
    assert not Batch.objects.exists()


@pytest.mark.req("A11-05", "IPC-01")
@pytest.mark.parametrize(
    "entry",
    ["1e30", "1e999999", "1.00000000001", "0" * 2500, "\ud800"],
    ids=["big", "huge", "precise", "long", "surrogate"],
)
def test_entries_a_record_cannot_hold_are_refused(db, entry: str) -> None:
    people, recipe = make_plant()
    batch = new_batch(people, recipe)
    run_to_weights(people, batch)
    with pytest.raises(ex.ExecutionRefused) as refused:
        ex.step_complete(
            actor=A(people["operator"]),
            user=people["operator"],
            batch=batch,
            step_key="weights",
            entries={"w1": entry, "w2": "600"},
        )
    assert refused.value.verdict.codes[0] in {"NOT_A_NUMBER", "TOO_LONG", "NOT_TEXT"}
    assert not StepValue.objects.exists()


@pytest.mark.req("DI-05", "A11-05")
def test_a_number_with_a_thousands_comma_is_refused_not_read_as_a_decimal(db) -> None:
    """'1,500' was judged as 1.5 and recorded as the text '1,500': now refused in words, nothing written."""
    people, recipe = make_plant()
    batch = new_batch(people, recipe)
    run_to_weights(people, batch)
    with pytest.raises(ex.ExecutionRefused) as refused:
        ex.step_complete(
            actor=A(people["operator"]),
            user=people["operator"],
            batch=batch,
            step_key="weights",
            entries={"w1": "1,500", "w2": "600"},
        )
    assert refused.value.verdict.codes == ["NOT_A_NUMBER"]
    assert "'1,500' could be 1.500 or 1500" in str(refused.value)
    assert not StepValue.objects.exists()
    done = ex.step_complete(
        actor=A(people["operator"]),
        user=people["operator"],
        batch=batch,
        step_key="weights",
        entries={"w1": "600,5", "w2": "600"},
    )
    (w1,) = StepValue.objects.filter(step=done, name="w1")
    assert (w1.text, w1.number) == ("600,5", Decimal("600.5"))


@pytest.mark.req("S88-04")
def test_scaled_limits_are_exact(db) -> None:
    text = SMALL.replace("quantity: 1000", "quantity: 300").replace(
        "specification: {low: 570, high: 630}, critical: true}\n          - {name: w2",
        "specification: {low: 570, high: 630}, critical: true, scales: true}\n          - {name: w2",
    )
    people, _ = make_plant()
    recipe = effective_recipe(people, text.replace("TST-1", "TST-2"))
    batch = new_batch(people, recipe, number="S-1", quantity="100")
    run_to_weights(people, batch)
    ex.step_complete(
        actor=A(people["operator"]),
        user=people["operator"],
        batch=batch,
        step_key="weights",
        entries={"w1": "210", "w2": "600"},
    )
    assert StepValue.objects.get(name="w1").in_specification is True  # 630 × 100 ÷ 300 = 210 exactly


@pytest.mark.req("MBR-01", "P11-07")
def test_someone_who_edited_a_draft_cannot_approve_it(db) -> None:
    from tests.conftest import make_user

    people, _ = make_plant()
    editor = make_user("editor", ["recipe_author", "qa_approver"])
    recipe = recipes.recipe_import(actor=A(people["author"]), text=SMALL.replace("TST-1", "TST-3"))
    recipes.recipe_update(
        actor=A(editor), recipe=recipe, text=SMALL.replace("TST-1", "TST-3").replace("Dry mix", "Mix")
    )
    recipes.recipe_transition(
        actor=A(people["author"]), recipe=recipe, command="submit", signer=sign(people["author"])
    )
    with pytest.raises(recipes.RecipeRefused) as refused:
        recipes.recipe_transition(
            actor=A(editor), recipe=recipe, command="approve", signer=sign(editor, "approved")
        )
    assert refused.value.verdict.codes == ["AUTHOR_APPROVES"]


@pytest.mark.req("DI-05")
def test_a_correction_on_a_held_batch_is_refused_and_logged(db) -> None:
    people, recipe = make_plant()
    batch = new_batch(people, recipe)
    run_to_weights(people, batch)
    op, sup = people["operator"], people["supervisor"]
    ex.step_complete(
        actor=A(op), user=op, batch=batch, step_key="weights", entries={"w1": "598", "w2": "604"}
    )
    ex.batch_command(actor=A(sup), batch=batch, command="hold", signer=sign(sup), reason="check")
    with pytest.raises(ex.ExecutionRefused):
        ex.value_correct(
            actor=A(op),
            user=op,
            batch=batch,
            step_key="weights",
            name="w2",
            text="600",
            reason="r",
            signer=sign(op),
        )
    assert BatchException.objects.filter(code="REFUSED_BATCH_NOT_ACTIVE").exists()
    assert StepValue.objects.filter(name="w2").count() == 1


@pytest.mark.req("DV-01")
def test_a_correction_needs_the_steps_role(db) -> None:
    from tests.conftest import make_user

    people, recipe = make_plant()
    batch = new_batch(people, recipe)
    run_to_weights(people, batch)
    op = people["operator"]
    ex.step_complete(
        actor=A(op), user=op, batch=batch, step_key="weights", entries={"w1": "598", "w2": "604"}
    )
    qa = make_user("qa", ["qa_reviewer"])
    with pytest.raises(ex.ExecutionRefused) as refused:
        ex.value_correct(
            actor=A(qa),
            user=qa,
            batch=batch,
            step_key="weights",
            name="w2",
            text="600",
            reason="r",
            signer=sign(qa, "verified"),
        )
    assert "ROLE_REQUIRED" in refused.value.verdict.codes
    assert StepValue.objects.filter(name="w2").count() == 1


@pytest.mark.req("A11-05")
@pytest.mark.parametrize("text", ["[" * 3000, "a: &a [*a]\\n"], ids=["deep", "recursive"])
def test_recipe_files_that_nest_too_deeply_are_refused(text: str) -> None:
    with pytest.raises(doc.RecipeInvalid):
        doc.parse(text)


@pytest.mark.req("DI-05", "DV-01")
def test_a_correction_after_verification_sends_the_step_back_to_its_verifier(db) -> None:
    people, _ = make_plant()
    text = SMALL.replace("TST-1", "TST-4").replace(
        "        title: Tablet weights\n", "        title: Tablet weights\n        verify: true\n"
    )
    recipe = effective_recipe(people, text)
    batch = new_batch(people, recipe, number="V-1")
    run_to_weights(people, batch)
    op, sup = people["operator"], people["supervisor"]
    ex.step_complete(
        actor=A(op), user=op, batch=batch, step_key="weights", entries={"w1": "598", "w2": "604"}
    )
    ex.step_verify(actor=A(sup), user=sup, batch=batch, step_key="weights", signer=sign(sup, "verified"))
    ex.value_correct(
        actor=A(op),
        user=op,
        batch=batch,
        step_key="weights",
        name="w2",
        text="600",
        reason="typo",
        signer=sign(op),
    )
    weights = BatchStep.objects.get(batch=batch, key="weights")
    assert weights.state == "awaiting_verification" and weights.verified_by is None
    assert BatchException.objects.filter(batch=batch, code="VERIFICATION_VOID").count() == 1
