"""ERP orders become batches: ProcessOperationsSchedule, ChangeOperationsSchedule, CancelOperationsSchedule."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import transaction

from batchline.audit.models import AuditEntry
from batchline.audit.services import record_create, record_update
from batchline.erp.models import ErpOrder
from batchline.execution import services as ex
from batchline.execution.models import Batch, BatchException
from tests.conftest import SETUP
from tests.execution.test_engine import A, sign

from .documents import cancel_reason, order, reply_status, request, schedule, send

pytestmark = pytest.mark.django_db


@pytest.mark.req("S95-01", "S95-02")
def test_an_order_becomes_a_created_batch_of_the_effective_recipe(plant) -> None:
    reply = send(
        plant["erp"],
        order(
            "BOD-1",
            "4711",
            quantity="2000",
            batch="ERP-B-001",
            bom=[("LAC-200", "4", "KG"), ("API-1", "0.2", "kg")],
        ),
    )
    assert reply.state == "applied", reply.words
    assert reply_status(reply) == ("Accepted", "Applied", "APPLIED")
    batch = Batch.objects.get(number="ERP-B-001")
    assert (batch.state, batch.recipe, batch.planned_quantity) == (
        "created",
        plant["recipe"],
        Decimal("2000"),
    )
    erp = ErpOrder.objects.get(order_id="4711")
    assert erp.batch == batch and erp.message.bodid == "BOD-1"
    created = AuditEntry.objects.get(record_type="execution.batch", record_id=str(batch.pk), action="create")
    assert (created.actor_username, created.via) == ("erp-sap", "erp-https")
    assert "waits for a supervisor's release" in reply.words


def refused(plant, body: str) -> tuple[str, str]:
    before = (Batch.objects.count(), ErpOrder.objects.count())
    reply = send(plant["erp"], body)
    assert reply.state == "refused", reply.words
    assert (Batch.objects.count(), ErpOrder.objects.count()) == before
    return reply.code, reply.words


REFUSALS = {
    "unknown product": (dict(product="NOPE"), "UNKNOWN_PRODUCT", "Batchline has no product NOPE"),
    "zero": (dict(quantity="0"), "QUANTITY", "the quantity 0 is not a quantity more than zero"),
    "not a number": (dict(quantity="lots"), "QUANTITY", "'lots' is not a number"),
    "no unit": (dict(unit=""), "QUANTITY", "has no UnitOfMeasure"),
    "wrong unit": (dict(unit="kg"), "UNIT", "cannot be counted in tablet"),
    "unknown unit": (dict(unit="zorkmid"), "UNIT", "'zorkmid' is not a unit Batchline knows"),
    "out of proportion": (
        dict(quantity="2000000000", bom=[]),
        "QUANTITY",
        "out of proportion to the recipe's batch size",
    ),
    "no quantity": (dict(quantity=None), "QUANTITY", "gives no quantity of ERPTAB"),
    "bom lacks a material": (
        dict(bom=[("LAC-200", "2", "kg")]),
        "BOM_MISMATCH",
        "recipe ERP-1 v1 charges API-1, which the order's bill of materials lacks",
    ),
    "bom names another": (
        dict(bom=[("LAC-200", "2", "kg"), ("API-1", "0.1", "kg"), ("TALC", "1", "kg")]),
        "BOM_MISMATCH",
        "names TALC, which recipe ERP-1 v1 does not charge",
    ),
    "bom quantity": (
        dict(bom=[("LAC-200", "2.5", "kg"), ("API-1", "0.1", "kg")]),
        "BOM_MISMATCH",
        "asks 2.5 kg of LAC-200; recipe ERP-1 v1 charges 2 kg for 1000 tablet (± 0.02 kg)",
    ),
    "recipe named is not effective": (
        dict(recipe="ERP-9"),
        "NO_EFFECTIVE_RECIPE",
        "no effective recipe ERP-9",
    ),
    "batch number": (dict(batch="has space"), "BATCH_NUMBER", "cannot be a batch number"),
}


@pytest.mark.req("S95-02", "A11-05", "DI-05")
@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_an_order_that_cannot_be_made_is_refused_in_words(plant, case: str) -> None:
    kwargs, code, words = REFUSALS[case]
    got_code, got_words = refused(plant, order(f"BOD-{case}", "4711", **kwargs))
    assert got_code == code, got_words
    assert words in got_words


@pytest.mark.req("S95-02")
def test_the_bill_of_materials_is_compared_in_its_own_units_and_within_the_recipes_tolerance(plant) -> None:
    reply = send(plant["erp"], order("BOD-G", "4711", bom=[("LAC-200", "2015", "G"), ("API-1", "100", "g")]))
    assert reply.state == "applied", reply.words
    assert "API-1: weighed to each lot's assay, so its quantity is not compared" in reply.words


@pytest.mark.req("S95-02")
def test_an_order_without_a_bill_of_materials_is_made_and_says_it_was_not_compared(plant) -> None:
    reply = send(plant["erp"], order("BOD-NB", "4711", bom=[]))
    assert reply.state == "applied" and "sends no bill of materials" in reply.words


@pytest.mark.req("S95-02")
def test_a_product_with_no_effective_recipe_is_refused_and_an_order_is_made_once(plant) -> None:
    from batchline.recipes.models import Product

    with transaction.atomic():
        record_create(Product(code="BARE", name="No recipe"), actor=SETUP)
    assert refused(plant, order("BOD-N", "4711", product="BARE"))[0] == "NO_EFFECTIVE_RECIPE"
    send(plant["erp"], order("BOD-1", "4711"))
    code, words = refused(plant, order("BOD-2", "4711"))
    assert code == "ORDER_EXISTS" and "ChangeOperationsSchedule" in words


@pytest.mark.req("S95-02", "A11-07")
def test_a_message_of_several_orders_is_applied_whole_or_not_at_all(plant) -> None:
    good, bad = request("A-1", batch="A-1"), request("A-2", quantity="-1")
    code, words = refused(plant, schedule("Process", "BOD-S", good, bad))
    assert code == "QUANTITY" and "Order A-2" in words
    reply = send(plant["erp"], schedule("Process", "BOD-S2", good, request("A-2", batch="A-2")))
    assert reply.state == "applied" and Batch.objects.filter(number__in=["A-1", "A-2"]).count() == 2


# --- Change and Cancel ------------------------------------------------------------------------


def made(plant, number: str = "4711") -> Batch:
    assert send(plant["erp"], order(f"BOD-make-{number}", number)).state == "applied"
    return ErpOrder.objects.get(order_id=number).batch


@pytest.mark.req("S95-02")
def test_a_change_sets_the_new_quantity_and_dates_of_a_created_batch(plant) -> None:
    batch = made(plant)
    body = schedule(
        "Change",
        "BOD-CH",
        request(
            "4711",
            quantity="1500",
            bom=[("LAC-200", "3", "kg"), ("API-1", "0.15", "kg")],
            start="2026-12-09T06:00:00Z",
        ),
    )
    reply = send(plant["erp"], body)
    assert reply.state == "applied", reply.words
    batch.refresh_from_db()
    assert (batch.planned_quantity, batch.scale) == (Decimal("1500"), Decimal("1.5"))
    assert "planned quantity 1000 → 1500 tablet" in reply.words
    entry = AuditEntry.objects.get(record_type="execution.batch", record_id=str(batch.pk), action="replan")
    assert entry.actor_username == "erp-sap" and "BOD-CH" in entry.reason
    assert ErpOrder.objects.get(order_id="4711").planned_start.day == 9
    assert (
        send(
            plant["erp"],
            schedule(
                "Change", "BOD-CH2", request("4711", quantity="1500", bom=[], start="2026-12-09T06:00:00Z")
            ),
        ).code
        == "UNCHANGED"
    )


@pytest.mark.req("S95-02", "S88-05")
def test_a_change_of_quantity_after_the_release_to_the_floor_is_refused(plant) -> None:
    batch = made(plant)
    ex.batch_command(
        actor=A(plant["supervisor"]), batch=batch, command="release", signer=sign(plant["supervisor"])
    )
    code, words = refused(plant, schedule("Change", "BOD-CR", request("4711", quantity="1500", bom=[])))
    assert code == "BATCH_NOT_CREATED" and "released to the floor" in words
    batch.refresh_from_db()
    assert batch.planned_quantity == 1000


@pytest.mark.req("S95-02")
def test_a_change_cannot_change_the_product_or_the_batch_number(plant) -> None:
    made(plant)
    code, _ = refused(plant, schedule("Change", "BOD-P", request("4711", product="OTHER", bom=[])))
    assert code == "PRODUCT_CHANGE"
    code, _ = refused(plant, schedule("Change", "BOD-B", request("4711", batch="NEW-1", bom=[])))
    assert code == "BATCH_NUMBER_CHANGE"


@pytest.mark.req("S95-02", "S88-05")
@pytest.mark.parametrize("release", [False, True])
def test_a_cancel_aborts_a_batch_not_yet_started_with_the_erps_reason(plant, release: bool) -> None:
    batch = made(plant)
    if release:
        ex.batch_command(
            actor=A(plant["supervisor"]), batch=batch, command="release", signer=sign(plant["supervisor"])
        )
    body = schedule(
        "Cancel", "BOD-X", request("4711", bom=[]), action=cancel_reason("customer order withdrawn")
    )
    reply = send(plant["erp"], body)
    assert reply.state == "applied", reply.words
    batch.refresh_from_db()
    assert batch.state == "aborted"
    entry = AuditEntry.objects.get(record_type="execution.batch", record_id=str(batch.pk), action="abort")
    assert entry.actor_username == "erp-sap" and "customer order withdrawn" in entry.reason
    exception = BatchException.objects.get(batch=batch, code="ABORT")
    assert "customer order withdrawn" in exception.message
    again = send(plant["erp"], schedule("Cancel", "BOD-X2", request("4711", bom=[])))
    assert (again.state, again.code) == ("applied", "UNCHANGED") and "aborted already" in again.words


@pytest.mark.req("S95-02", "S88-05")
def test_a_cancel_of_a_started_batch_is_refused_in_words(plant) -> None:
    batch = made(plant)
    with transaction.atomic():
        record_update(batch, actor=SETUP, values={"state": "running"}, action="test_setup")
    code, words = refused(plant, schedule("Cancel", "BOD-XR", request("4711", bom=[])))
    assert code == "BATCH_STARTED" and "a supervisor holds or aborts it, with a signature" in words
    batch.refresh_from_db()
    assert batch.state == "running"
