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


def complete_weights(people, batch, **entries):
    return ex.step_complete(
        actor=A(people["operator"]), user=people["operator"], batch=batch, step_key="weights", entries=entries
    )


@pytest.mark.req("DI-05", "A11-05", "A11D-05")
def test_a_number_a_reader_could_take_two_ways_is_refused_with_both_readings_and_nothing_is_written(
    db,
) -> None:
    """'1,500' was judged as 1.5 and recorded as the text '1,500': refused in words offering both readings."""
    people, recipe = make_plant()
    batch = new_batch(people, recipe)
    run_to_weights(people, batch)
    with pytest.raises(ex.ExecutionRefused) as refused:
        complete_weights(people, batch, w1="1,500", w2="600")
    assert refused.value.verdict.codes == ["NOT_A_NUMBER"]
    assert str(refused.value) == "Weight 1: 1,500: did you mean 1.500 or 1500?"
    # A decimal comma on a site that writes decimals with a point: the one reading offered, not taken.
    with pytest.raises(ex.ExecutionRefused) as refused:
        complete_weights(people, batch, w1="600,5", w2="600")
    assert "600,5: this site writes decimals with a point; did you mean 600.5?" in str(refused.value)
    assert not StepValue.objects.exists()
    done = complete_weights(people, batch, w1="600.50", w2="600")
    (w1,) = StepValue.objects.filter(step=done, name="w1")
    assert (w1.text, w1.number, w1.unit) == ("600.50", Decimal("600.5"), "mg")


@pytest.mark.req("DI-05", "A11-05", "P11-11")
def test_a_comma_site_reads_a_decimal_comma_and_refuses_a_point_with_both_readings(db) -> None:
    from tests.conftest import configure

    configure(decimal_separator="comma")
    people, recipe = make_plant()
    batch = new_batch(people, recipe)
    run_to_weights(people, batch)
    with pytest.raises(ex.ExecutionRefused) as refused:
        complete_weights(people, batch, w1="600.500", w2="600")
    assert str(refused.value) == "Weight 1: 600.500: did you mean 600,500 or 600500?"
    assert not StepValue.objects.exists()
    done = complete_weights(people, batch, w1="600,5", w2="604")
    (w1,) = StepValue.objects.filter(step=done, name="w1")
    assert (w1.text, w1.number) == ("600,5", Decimal("600.5"))


@pytest.mark.req("DI-05", "A11-05")
@pytest.mark.parametrize(
    ("entry", "words"),
    [
        ("1e400", "write the number out in digits, without an exponent"),
        ("NaN", "NaN is not a number"),
        ("-Infinity", "-Infinity is not a number"),
        ("-0", "zero has no sign"),
        ("1" * 30, "more digits than a recorded value can hold"),
        ("1" * 100_000, "at most 2000 characters"),
    ],
    ids=["exponent", "nan", "infinity", "negative-zero", "30-digits", "100000-characters"],
)
def test_every_kind_of_bad_number_is_refused_in_words_and_nothing_is_written(
    db, entry: str, words: str
) -> None:
    people, recipe = make_plant()
    batch = new_batch(people, recipe)
    run_to_weights(people, batch)
    with pytest.raises(ex.ExecutionRefused) as refused:
        complete_weights(people, batch, w1=entry, w2="600")
    assert words in str(refused.value)
    assert not StepValue.objects.exists()


@pytest.mark.req("DI-05", "A11-05")
def test_a_correction_is_read_in_the_sites_notation_like_the_entry(db) -> None:
    people, recipe = make_plant()
    batch = new_batch(people, recipe)
    run_to_weights(people, batch)
    op = people["operator"]
    complete_weights(people, batch, w1="598", w2="604")
    with pytest.raises(ex.ExecutionRefused) as refused:
        ex.value_correct(
            actor=A(op),
            user=op,
            batch=batch,
            step_key="weights",
            name="w2",
            text="6,04",
            reason="typo",
            signer=sign(op),
        )
    assert "did you mean 6.04?" in str(refused.value)
    assert StepValue.objects.filter(name="w2").count() == 1
    corrected = ex.value_correct(
        actor=A(op),
        user=op,
        batch=batch,
        step_key="weights",
        name="w2",
        text="600.0",
        reason="typo",
        signer=sign(op),
    )
    assert (corrected.text, corrected.number) == ("600.0", Decimal("600"))
    message = BatchException.objects.get(code="CORRECTION").message
    assert "corrected from 604 to 600.0" in message


@pytest.mark.req("A11-05")
@pytest.mark.parametrize(
    ("quantity", "words"),
    [
        ("1e400", "Planned quantity: 1e400: write the number out in digits, without an exponent."),
        ("1,500", "Planned quantity: 1,500: did you mean 1.500 or 1500?"),
        ("-0", "zero has no sign"),
        (Decimal("1E+400"), "at most 12 digits before and 6 after the decimal mark"),
        (Decimal("-0"), "must be a number more than zero"),
        ("9" * 30, "at most 12 digits before and 6 after the decimal mark"),
    ],
)
def test_a_planned_quantity_that_is_no_number_a_batch_can_hold_is_refused_in_words(
    db, quantity, words: str
) -> None:
    people, recipe = make_plant()
    with pytest.raises(ex.ExecutionRefused) as refused:
        ex.batch_create(actor=A(people["supervisor"]), recipe=recipe, number="B-1", planned_quantity=quantity)
    assert words in str(refused.value)
    assert not Batch.objects.exists()


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
