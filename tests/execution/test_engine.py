"""The execution engine on a real database: gates, values, exceptions, corrections, signatures."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import transaction
from django.utils import timezone

from batchline.audit.models import AuditEntry
from batchline.audit.services import Actor, ReasonRequired, record_update
from batchline.audit.verify import verify
from batchline.execution import prompts
from batchline.execution import services as ex
from batchline.execution.models import Batch, BatchException, BatchStep, StepValue
from batchline.materials import services as stock
from batchline.recipes import services as recipes
from batchline.signatures.models import Signature
from batchline.signatures.services import signature_intact, signer_authenticate
from tests.conftest import PASSWORD, make_user
from tests.recipes.test_recipe_services import SMALL
from tests.signatures.test_signing import station

pytestmark = pytest.mark.django_db


def effective_recipe(people, text: str):
    """Import ``text`` as the author, then submit, approve and make it effective, each signed."""
    recipe = recipes.recipe_import(actor=Actor.of(people["author"], via="web"), text=text)
    for who, command, meaning in (
        ("author", "submit", "performed"),
        ("approver", "approve", "approved"),
        ("approver", "make_effective", "approved"),
    ):
        recipe = recipes.recipe_transition(
            actor=Actor.of(people[who], via="web"),
            recipe=recipe,
            command=command,
            signer=sign(people[who], meaning),
        )
    return recipe


def make_plant():
    """People for every role and the small recipe, effective."""
    people = {
        "author": make_user("author", ["recipe_author"]),
        "approver": make_user("approver", ["qa_approver"]),
        "supervisor": make_user("supervisor", ["supervisor"]),
        "operator": make_user("operator", ["operator"]),
        "operator2": make_user("operator2", ["operator"]),
    }
    recipe = effective_recipe(people, SMALL)
    product_master_data(people["author"], "TST", "Test tablets 100 mg", "tablet")
    return people, recipe


def product_master_data(who, code: str, name: str, unit: str, *, shelf_life_days: int = 730):
    """The product's material in the master data, with the shelf life its output lots' expiry is counted
    by (a batch of a product without one is not released: its lot would have no expiry)."""
    return stock.material_create(
        actor=A(who), code=code, name=name, kind="finished", unit=unit, shelf_life_days=shelf_life_days
    )


@pytest.fixture
def plant(db):
    return make_plant()


def sign(user, meaning="performed", witness=False):
    return signer_authenticate(
        request=station(user), username=user.username, password=PASSWORD, meaning=meaning, witness=witness
    )


def A(user):
    return Actor.of(user, via="web")


def new_batch(people, recipe, number="B-001", quantity="500"):
    batch = ex.batch_create(
        actor=A(people["supervisor"]), recipe=recipe, number=number, planned_quantity=Decimal(quantity)
    )
    return ex.batch_command(
        actor=A(people["supervisor"]), batch=batch, command="release", signer=sign(people["supervisor"])
    )


def start(people, batch, key, who="operator"):
    return ex.step_start(actor=A(people[who]), user=people[who], batch=batch, step_key=key)


def complete(people, batch, key, who="operator", **kw):
    return ex.step_complete(actor=A(people[who]), user=people[who], batch=batch, step_key=key, **kw)


def age(step: BatchStep, minutes: int) -> None:
    """Let ``minutes`` pass on a running step (through the audited service, as the clock cannot be wound)."""
    with transaction.atomic():
        record_update(
            step,
            actor=Actor(None, "test-clock", "Test clock", "system"),
            values={"started_at": timezone.now() - dt.timedelta(minutes=minutes)},
        )


def run_to_weights(people, batch):
    start(people, batch, "clearance")
    complete(people, batch, "clearance", checklist=[True, True], signer=sign(people["operator"]))
    mix = start(people, batch, "mix")
    age(mix, 5)
    complete(people, batch, "mix")
    start(people, batch, "weights")


@pytest.mark.req("S88-03", "S88-04", "MBR-01")
def test_a_batch_freezes_its_control_recipe_and_scales(plant) -> None:
    people, recipe = plant
    batch = new_batch(people, recipe)
    assert batch.state == "released" and batch.scale == Decimal("0.5")
    assert list(BatchStep.objects.filter(batch=batch).values_list("key", flat=True)) == [
        "clearance",
        "mix",
        "weights",
        "mean",
    ]
    v2 = recipes.recipe_new_version(actor=A(people["author"]), recipe=recipe, reason="blend wording")
    recipes.recipe_update(actor=A(people["author"]), recipe=v2, text=SMALL.replace("Dry mix", "Blend"))
    batch.refresh_from_db()
    assert batch.control_recipe["operations"][0]["steps"][1]["title"] == "Dry mix"


@pytest.mark.req("MBR-01")
def test_only_an_effective_recipe_makes_a_batch(plant) -> None:
    people, recipe = plant
    draft = recipes.recipe_new_version(actor=A(people["author"]), recipe=recipe, reason="a draft")
    with pytest.raises(ex.ExecutionRefused) as refused:
        ex.batch_create(
            actor=A(people["supervisor"]), recipe=draft, number="B-9", planned_quantity=Decimal(1000)
        )
    assert refused.value.verdict.codes == ["RECIPE_NOT_EFFECTIVE"]
    assert not Batch.objects.exists()


@pytest.mark.req("P11-06")
def test_an_out_of_order_step_is_refused_in_words_writes_nothing_and_is_logged(plant) -> None:
    people, recipe = plant
    batch = new_batch(people, recipe)
    with pytest.raises(ex.ExecutionRefused) as refused:
        start(people, batch, "weights")
    assert str(refused.value) == "Step “Tablet weights” cannot start before “Dry mix” is complete."
    assert BatchStep.objects.get(batch=batch, key="weights").state == "pending"
    (logged,) = BatchException.objects.filter(batch=batch)
    assert (
        logged.code == "REFUSED_PREDECESSOR_OPEN"
        and logged.step.key == "weights"
        and logged.user == people["operator"]
    )


@pytest.mark.req("IPC-05")
def test_a_timer_step_completes_only_after_its_minimum(plant) -> None:
    people, recipe = plant
    batch = new_batch(people, recipe)
    start(people, batch, "clearance")
    complete(people, batch, "clearance", checklist=[True, True], signer=sign(people["operator"]))
    start(people, batch, "mix")
    with pytest.raises(ex.ExecutionRefused) as refused:
        complete(people, batch, "mix")
    assert refused.value.verdict.codes == ["TIMER_MINIMUM"] and "must run at least 4 min" in str(
        refused.value
    )


def test_a_checklist_and_a_signature_are_required(plant) -> None:
    people, recipe = plant
    batch = new_batch(people, recipe)
    start(people, batch, "clearance")
    with pytest.raises(ex.ExecutionRefused) as refused:
        complete(people, batch, "clearance", checklist=[True, False])
    assert set(refused.value.verdict.codes) == {"CHECKLIST_OPEN", "SIGNATURE_REQUIRED"}
    step = complete(people, batch, "clearance", checklist=[True, True], signer=sign(people["operator"]))
    assert step.state == "done"


@pytest.mark.req("IPC-01", "A11D-05", "DEV-01")
def test_an_implausible_value_is_refused_and_an_out_of_spec_value_is_recorded_with_an_exception(
    plant,
) -> None:
    people, recipe = plant
    batch = new_batch(people, recipe)
    run_to_weights(people, batch)
    with pytest.raises(ex.ExecutionRefused) as refused:
        complete(people, batch, "weights", entries={"w1": "6000", "w2": "600"})
    assert "Weight 1 6000 mg cannot be right" in str(refused.value)
    assert not StepValue.objects.filter(step__batch=batch).exists()
    # Outside its specification: asked first, and nothing written or recorded until confirmed.
    before = (AuditEntry.objects.count(), BatchException.objects.filter(batch=batch).count())
    with pytest.raises(prompts.ConfirmationRequired) as asked:
        complete(people, batch, "weights", entries={"w1": "640", "w2": "600"})
    assert asked.value.verdict.codes == ["CONFIRM_OUT_OF_SPECIFICATION"]
    assert "Weight 1 640 mg is outside its specification 570–630 mg" in str(asked.value)
    assert "stops the batch until QA dispositions it" in str(asked.value)
    assert (AuditEntry.objects.count(), BatchException.objects.filter(batch=batch).count()) == before
    assert BatchStep.objects.get(batch=batch, key="weights").state == "running"
    complete(people, batch, "weights", entries={"w1": "640", "w2": "600"}, confirm_out_of_specification=True)
    w1 = StepValue.objects.get(step__batch=batch, name="w1")
    assert (w1.number, w1.in_specification) == (Decimal("640"), False)
    exc = BatchException.objects.get(batch=batch, code="CRITICAL_OUT_OF_SPECIFICATION")
    assert exc.value == w1 and (exc.severity, exc.blocks) == ("critical", True)  # w1 is critical
    assert exc.message == "Weight 1 640 mg is outside its specification 570–630 mg."
    # A critical value out of specification stops the batch until QA has dispositioned it.
    with pytest.raises(ex.ExecutionRefused) as refused:
        start(people, batch, "mean")
    assert refused.value.verdict.codes == ["EXCEPTION_BLOCKS"]
    assert "Weight 1 640 mg is outside its specification" in str(refused.value)
    accept_exceptions(people, batch)
    assert start(people, batch, "mean").state == "running"


def accept_exceptions(people, batch) -> None:
    """QA (the approver) accepts every open exception of ``batch``, signed."""
    from batchline.quality.services import exceptions_disposition

    exceptions_disposition(
        actor=A(people["approver"]),
        signer=sign(people["approver"], "approved"),
        exception_ids=list(
            BatchException.objects.filter(batch=batch, disposition__isnull=True).values_list("id", flat=True)
        ),
        decision="accepted",
        comment="Assessed: the weighing was repeated within specification; no impact.",
    )


@pytest.mark.req("IPC-02", "DV-01", "DI-05")
def test_calculations_run_and_a_different_person_verifies(plant) -> None:
    people, recipe = plant
    batch = new_batch(people, recipe)
    run_to_weights(people, batch)
    complete(people, batch, "weights", entries={"w1": "598", "w2": "604"})
    start(people, batch, "mean")
    step = complete(people, batch, "mean")
    assert step.state == "awaiting_verification"
    assert StepValue.objects.get(step__batch=batch, name="mean_weight").number == Decimal("601.00")
    with pytest.raises(ex.ExecutionRefused) as refused:
        ex.step_verify(
            actor=A(people["operator"]),
            user=people["operator"],
            batch=batch,
            step_key="mean",
            signer=sign(people["operator"], "performed"),
        )
    assert "VERIFIER_IS_PERFORMER" in refused.value.verdict.codes
    sup = people["supervisor"]
    ex.step_verify(actor=A(sup), user=sup, batch=batch, step_key="mean", signer=sign(sup, "verified"))
    batch.refresh_from_db()
    assert batch.state == "complete"
    sig = Signature.objects.get(record_type="execution.batchstep", meaning="verified")
    assert sig.signer == sup and signature_intact(
        sig, ex.step_content(BatchStep.objects.get(batch=batch, key="mean"))
    )


@pytest.mark.req("DI-05", "P11-05", "DEV-02")
def test_a_correction_keeps_the_original_recalculates_and_raises_an_exception(plant) -> None:
    people, recipe = plant
    batch = new_batch(people, recipe)
    run_to_weights(people, batch)
    complete(people, batch, "weights", entries={"w1": "598", "w2": "640"}, confirm_out_of_specification=True)
    accept_exceptions(people, batch)  # w2 is critical: its exception stops the batch until dispositioned
    start(people, batch, "mean")
    complete(people, batch, "mean")
    with pytest.raises(ReasonRequired):
        ex.value_correct(
            user=people["operator"],
            actor=A(people["operator"]),
            batch=batch,
            step_key="weights",
            name="w2",
            text="604",
            reason="",
            signer=sign(people["operator"]),
        )
    fixed = ex.value_correct(
        user=people["operator"],
        actor=A(people["operator"]),
        batch=batch,
        step_key="weights",
        name="w2",
        text="604",
        reason="transcription error: balance showed 604",
        signer=sign(people["operator"]),
    )
    original = StepValue.objects.get(pk=fixed.corrects_id)
    assert (original.text, fixed.text) == ("640", "604")
    current = ex.current_values(batch)
    assert current["w2"] == fixed and current["mean_weight"].number == Decimal("601.00")
    assert current["mean_weight"].corrects is not None  # the old mean is kept too
    assert BatchException.objects.filter(batch=batch, code="CORRECTION").count() == 1


@pytest.mark.req("S88-05")
def test_hold_needs_a_reason_and_stops_the_floor_until_resumed(plant) -> None:
    people, recipe = plant
    batch = new_batch(people, recipe)
    sup = people["supervisor"]
    with pytest.raises(ReasonRequired):
        ex.batch_command(actor=A(sup), batch=batch, command="hold", signer=sign(sup))
    ex.batch_command(actor=A(sup), batch=batch, command="hold", signer=sign(sup), reason="granulator alarm")
    with pytest.raises(ex.ExecutionRefused) as refused:
        start(people, batch, "clearance")
    assert refused.value.verdict.codes == ["BATCH_NOT_ACTIVE"]
    assert BatchException.objects.filter(batch=batch, code="HOLD").exists()
    with pytest.raises(ex.ExecutionRefused):
        ex.batch_command(
            actor=A(people["operator"]), batch=batch, command="resume", signer=sign(people["operator"])
        )
    ex.batch_command(actor=A(sup), batch=batch, command="resume", signer=sign(sup))
    start(people, batch, "clearance")


@pytest.mark.req("P11-01")
def test_a_whole_batch_leaves_a_trail_that_verifies(plant) -> None:
    people, recipe = plant
    batch = new_batch(people, recipe)
    run_to_weights(people, batch)
    complete(people, batch, "weights", entries={"w1": "598", "w2": "604"})
    start(people, batch, "mean")
    complete(people, batch, "mean")
    report = verify()
    assert report.ok, [str(f) for f in report.findings]


@pytest.mark.req("DI-03")
def test_values_entered_long_after_the_step_started_are_a_late_entry(plant) -> None:
    people, recipe = plant
    batch = new_batch(people, recipe)
    run_to_weights(people, batch)
    age(BatchStep.objects.get(batch=batch, key="weights"), 90)
    complete(people, batch, "weights", entries={"w1": "600", "w2": "600"})
    (late,) = BatchException.objects.filter(batch=batch, code="LATE_ENTRY")
    assert late.message.startswith("Values of “Tablet weights” entered 90 min after the step started")
    assert "(more than 60 min)" in late.message


@pytest.mark.req("DI-03", "A11-14")
def test_the_late_entry_limit_is_the_one_of_the_configuration_in_force(plant) -> None:
    from tests.configuration import configure

    configure(late_entry_minutes=120)
    people, recipe = plant
    batch = new_batch(people, recipe)
    run_to_weights(people, batch)
    age(BatchStep.objects.get(batch=batch, key="weights"), 90)
    complete(people, batch, "weights", entries={"w1": "600", "w2": "600"})
    assert not BatchException.objects.filter(batch=batch, code="LATE_ENTRY").exists()


@pytest.mark.req("S88-05")
def test_resume_returns_a_batch_to_where_the_hold_found_it(plant) -> None:
    people, recipe = plant
    batch = new_batch(people, recipe)
    sup = people["supervisor"]
    ex.batch_command(actor=A(sup), batch=batch, command="hold", signer=sign(sup), reason="room not ready")
    assert ex.batch_command(actor=A(sup), batch=batch, command="resume", signer=sign(sup)).state == "released"
    start(people, batch, "clearance")
    ex.batch_command(actor=A(sup), batch=batch, command="hold", signer=sign(sup), reason="alarm")
    assert ex.batch_command(actor=A(sup), batch=batch, command="resume", signer=sign(sup)).state == "running"
