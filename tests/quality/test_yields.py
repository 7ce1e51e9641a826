"""Yields per operation and reconciliation per lot: computed, judged against limits, exceptions raised."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import transaction
from django.utils import timezone

from batchline.execution import yields
from batchline.execution.models import BatchException
from batchline.materials import services as stock
from batchline.quality import selectors
from batchline.quality import services as q
from batchline.recipes.document import RecipeInvalid, parse
from batchline.rules import yields as rules
from tests.configuration import configure
from tests.conftest import make_user
from tests.execution.test_engine import A, complete, effective_recipe, new_batch, sign, start
from tests.materials.test_charging import receive

pytestmark = pytest.mark.django_db

RECIPE = """\
format: batchline.recipe/1
recipe: {code: GRAN-Y, name: Granulate, product_code: GY, product_name: Granulate, batch_size: {quantity: 100, unit: kg}}
operations:
  - key: gran
    name: Granulation
    yield: {actual: granule_mass, theoretical: 100, unit: kg, low_percent: 95, high_percent: 102}
    steps:
      - key: weigh_granules
        kind: data_entry
        title: Weigh the dried granules
        inputs: [{name: granule_mass, label: Granule mass, unit: kg, plausible: {low: 0, high: 300}}]
"""


@pytest.fixture
def people(db):
    return {
        "author": make_user("author", ["recipe_author"]),
        "approver": make_user("approver", ["qa_approver"]),
        "supervisor": make_user("supervisor", ["supervisor"]),
        "operator": make_user("operator", ["operator"]),
        "warehouse": make_user("warehouse", ["warehouse"]),
        "reviewer": make_user("reviewer", ["qa_reviewer"]),
    }


@pytest.mark.req("YLD-01", "YLD-02")
def test_the_yield_rule_judges_on_the_exact_percentage() -> None:
    on_limit = rules.Yield("Granulation", Decimal("47.5"), Decimal("50"), "kg", Decimal(95), Decimal(102))
    assert (on_limit.percent, on_limit.within) == (Decimal(95), True)
    below = rules.Yield("Granulation", Decimal("47.49"), Decimal("50"), "kg", Decimal(95), Decimal(102))
    assert below.within is False and "yield 95.0 %" in below.text()  # 94.98 shown rounded, judged exact
    assert rules.Yield("G", None, Decimal(1), "kg", Decimal(0), Decimal(1)).within is None
    r = rules.Reconciliation(
        "L-1", "API", "kg", Decimal(10), Decimal("9.96"), Decimal(0), Decimal(0), Decimal("0.5")
    )
    assert (r.difference, r.within) == (Decimal("0.04"), True)
    assert not rules.Reconciliation(
        "L-1", "API", "kg", Decimal(10), Decimal(9), Decimal(0), Decimal(0), Decimal("0.5")
    ).within


@pytest.mark.req("YLD-01", "YLD-02", "RBE-03")
def test_a_low_yield_raises_an_exception_that_holds_the_release_until_dispositioned(people, client) -> None:
    recipe = effective_recipe(people, RECIPE)
    batch = new_batch(people, recipe, number="Y-1", quantity="50")  # theoretical 50 kg
    start(people, batch, "weigh_granules")
    complete(people, batch, "weigh_granules", entries={"granule_mass": "44"})
    exc = BatchException.objects.get(batch=batch, code="YIELD_OUT_OF_LIMITS")
    assert exc.message == "Granulation: yield 88.0 % (44 of 50 kg; limits 95–102 %)."
    assert exc.severity == "high" and not exc.blocks and exc.type.category == "value"
    batch.refresh_from_db()
    assert batch.state == "complete"
    (y,) = yields.batch_yields(batch)
    assert (y.actual, y.theoretical, y.percent, y.within) == (Decimal(44), Decimal(50), Decimal(88), False)
    checks = {c.code: c for c in selectors.completeness(batch)}
    # Outside its limits until QA decides: the checklist says no, naming the exception that waits.
    assert not checks["EXCEPTIONS"].ok and checks["LIMITS"].answer == "no"
    assert checks["LIMITS"].findings == (
        f"Granulation: yield 88.0 % (44 of 50 kg; limits 95–102 %): exception #{exc.pk} waits for its disposition",
    )
    client.force_login(people["reviewer"])
    page = client.get(f"/batches/{batch.number}/review/").content.decode()
    assert "88.0 %" in page and "95–102 %" in page  # QA sees it on the review page
    q.exceptions_disposition(
        actor=A(people["reviewer"]),
        signer=sign(people["reviewer"], "approved"),
        exception_ids=[exc.pk],
        decision="accepted",
        comment="Granules lost in the dryer's filter: assessed, no impact.",
    )
    checks = {c.code: c for c in selectors.completeness(batch)}
    # Accepted, not "within limits": the check passes on QA's decision and says so.
    assert checks["LIMITS"].ok and checks["LIMITS"].answer == "accepted"
    assert checks["LIMITS"].notes == (
        f"Granulation: yield 88.0 % (44 of 50 kg; limits 95–102 %): exception #{exc.pk} accepted by QA",
    )
    content = selectors.record_quality(batch)
    assert content["yields"] == [
        {
            "operation": "Granulation",
            "actual": "44",
            "theoretical": "50",
            "percent": "88.00",
            "low": "95",
            "high": "102",
            "unit": "kg",
            "within": False,
        }
    ]


@pytest.mark.req("YLD-01")
def test_a_yield_within_limits_raises_nothing_and_a_recipe_names_what_its_yield_needs(people) -> None:
    recipe = effective_recipe(people, RECIPE)
    batch = new_batch(people, recipe, number="Y-2", quantity="50")
    start(people, batch, "weigh_granules")
    complete(people, batch, "weigh_granules", entries={"granule_mass": "49.2"})
    assert not BatchException.objects.filter(batch=batch).exists()
    assert yields.batch_yields(batch)[0].percent == Decimal("98.4")
    for bad, message in (
        ("actual: granule_mass,", "actual: tablets,"),
        ("unit: kg, low", "unit: min, low"),
        ("low_percent: 95, high_percent: 102", "low_percent: 103, high_percent: 102"),
    ):
        with pytest.raises(RecipeInvalid) as invalid:
            parse(RECIPE.replace(bad, message))
        assert invalid.value.problems, message


def leave_unaccounted(people, batch_number: str, *, code: str, lot: str) -> None:
    """10 kg of a binder weighed out for the batch and 9 kg charged: 1 kg left in its container."""
    material = stock.material_create(
        actor=A(people["warehouse"]), code=code, name="Binder", kind="excipient", unit="kg"
    )
    received = receive(people, material, lot, containers=("20",))
    op = A(people["operator"])
    with transaction.atomic():
        weighed = stock.container_dispense(
            actor=op,
            source=stock.container_locked(received.containers.get().code),
            net=Decimal("10"),
            tare=Decimal("0.4"),
            batch_number=batch_number,
            step_key="weigh_granules",
            device="SCALE-01 #1",
            at=timezone.now(),
        )
        stock.container_consume(
            actor=op,
            container=stock.container_locked(weighed.code),
            quantity=Decimal("9"),
            batch_number=batch_number,
            step_key="weigh_granules",
            at=timezone.now(),
        )


@pytest.mark.req("YLD-03", "GEN-01")
def test_material_issued_to_a_batch_and_not_used_is_unaccounted_in_its_reconciliation(people) -> None:
    recipe = effective_recipe(people, RECIPE)
    batch = new_batch(people, recipe, number="Y-3", quantity="50")
    leave_unaccounted(people, batch.number, code="BIND", lot="L-77")
    (r,) = yields.batch_reconciliation(batch)
    assert (r.lot, r.issued, r.consumed, r.difference, r.within) == (
        "L-77",
        Decimal(10),
        Decimal(9),
        Decimal(1),
        False,
    )
    configure(reconciliation_tolerance_percent="10")  # the tolerance in force decides, at once
    assert yields.batch_reconciliation(batch)[0].within
    configure(reconciliation_tolerance_percent="0.5")
    start(people, batch, "weigh_granules")
    complete(people, batch, "weigh_granules", entries={"granule_mass": "49"})  # the batch completes
    exc = BatchException.objects.get(batch=batch, code="RECONCILIATION_OUT_OF_LIMITS")
    assert exc.material == "L-77" and "1 kg unaccounted" in exc.message
    assert selectors.record_quality(batch)["reconciliation"][0]["difference"] == "1"


@pytest.mark.req("YLD-01")
def test_a_yield_on_the_components_counts_its_own_operations_only(people) -> None:
    text = RECIPE.replace("theoretical: 100, unit: kg, ", "") + (  # theoretical: the components used
        "  - key: blend\n    name: Blending\n    steps:\n"
        "      - key: add_lubricant\n        kind: instruction\n        title: Add the lubricant\n"
    )
    recipe = effective_recipe(people, text)
    batch = new_batch(people, recipe, number="Y-4", quantity="50")
    material = stock.material_create(
        actor=A(people["warehouse"]), code="EXC", name="Excipient", kind="excipient", unit="kg"
    )
    lot = receive(people, material, "L-88", containers=("30",))
    op = A(people["operator"])
    code = lot.containers.get().code
    for step_key, quantity in (
        ("weigh_granules", "10"),
        ("add_lubricant", "5"),
    ):  # granulation, then blending
        with transaction.atomic():
            stock.container_consume(
                actor=op,
                container=stock.container_locked(code),
                quantity=Decimal(quantity),
                batch_number=batch.number,
                step_key=step_key,
                at=timezone.now(),
            )
    start(people, batch, "weigh_granules")
    complete(people, batch, "weigh_granules", entries={"granule_mass": "9.8"})
    (y,) = yields.batch_yields(batch)
    assert (y.theoretical, y.percent, y.within) == (Decimal(10), Decimal(98), True)  # not 9.8 of 15
    assert not BatchException.objects.filter(batch=batch, code="YIELD_OUT_OF_LIMITS").exists()
