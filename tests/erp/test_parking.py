"""Out of order: a message that refers to what is not here yet is parked, applied when it arrives, or expires."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import transaction
from django.utils import timezone

from batchline.approvals import services as approvals
from batchline.approvals.models import ChangeRequest
from batchline.audit.models import AuditEntry
from batchline.audit.services import Actor, record_update
from batchline.erp import inbound
from batchline.erp.models import ErpOrder, InboundMessage
from batchline.execution.models import Batch
from batchline.integrity.verification import tick
from batchline.materials.models import Material
from batchline.recipes import services as recipes
from tests.configuration.test_configuration import signer
from tests.conftest import SETUP
from tests.execution.test_engine import sign

from .conftest import material
from .documents import material_definition, material_lot, order, reply_status, request, schedule, send

pytestmark = pytest.mark.django_db


def approve(approver, request: ChangeRequest) -> None:
    approvals.change_approve(
        actor=Actor.of(approver, via="web"),
        signer=signer(approver, "approved"),
        request=request,
        comment="checked against the supplier's specification",
    )


@pytest.mark.req("S95-02", "S95-01", "S95-03")
def test_an_order_before_its_material_is_parked_and_applied_when_qa_approves_the_material(
    bare_plant, django_capture_on_commit_callbacks
) -> None:
    erp = bare_plant["erp"]
    parked = send(erp, order("BOD-O1", "4711"))
    assert (parked.state, parked.code) == ("parked", "WAITING")
    assert reply_status(parked) == ("Accepted", "Parked", "WAITING")
    assert "material LAC-200 is not in Batchline's master data yet" in parked.words
    message = InboundMessage.objects.get(bodid="BOD-O1")
    assert message.waits_for == ["material:LAC-200"] and message.parked_at is not None
    assert not Batch.objects.exists()
    # The material's definition arrives: a change request of the interface, waiting for QA.
    with django_capture_on_commit_callbacks(execute=True):
        definition = send(erp, material_definition("BOD-M1"))
    assert (definition.state, definition.code) == ("applied", "REQUESTED"), definition.words
    request = ChangeRequest.objects.get(state="requested")
    assert request.requested_by == erp and "CR-" in definition.words
    assert InboundMessage.objects.get(bodid="BOD-O1").state == "parked"  # not in force yet
    # QA approves: the material is in force, and the parked order is applied on that commit.
    with django_capture_on_commit_callbacks(execute=True):
        approve(bare_plant["approver"], request)
    assert Material.objects.filter(code="LAC-200").exists()
    message.refresh_from_db()
    assert message.state == "applied" and message.waits_for == [] and message.settled_at is not None
    batch = ErpOrder.objects.get(order_id="4711").batch
    assert batch.state == "created"
    # The order's batch was made by the interface, not by the approver who triggered it.
    made = AuditEntry.objects.get(record_type="execution.batch", record_id=str(batch.pk), action="create")
    assert made.actor_username == "erp-sap"
    # A resend now gets the reply that says what became of it.
    again = send(erp, order("BOD-O1", "4711"))
    assert again.repeat and again.state == "applied" and "batch 4711 created" in again.words


@pytest.mark.req("S95-02")
def test_an_order_waits_for_a_recipe_on_its_way_and_is_applied_when_it_becomes_effective(
    plant, django_capture_on_commit_callbacks
) -> None:
    people = plant
    text = people["recipe"].document
    from batchline.recipes.document import dump_yaml, from_canonical

    second = (
        dump_yaml(from_canonical(text))
        .replace("code: ERP-1", "code: ERP-2")
        .replace("product_code: ERPTAB", "product_code: ERPTAB2")
    )
    draft = recipes.recipe_import(actor=Actor.of(people["author"], via="web"), text=second)
    draft = recipes.recipe_transition(
        actor=Actor.of(people["author"], via="web"),
        recipe=draft,
        command="submit",
        signer=sign(people["author"]),
    )
    reply = send(people["erp"], order("BOD-R1", "5000", product="ERPTAB2"))
    assert reply.state == "parked" and "ERP-2 v1 (in review) is on its way" in reply.words
    assert InboundMessage.objects.get(bodid="BOD-R1").waits_for == ["recipe:ERPTAB2"]
    approver = people["approver"]
    with django_capture_on_commit_callbacks(execute=True):
        for command in ("approve", "make_effective"):
            draft = recipes.recipe_transition(
                actor=Actor.of(approver, via="web"),
                recipe=draft,
                command=command,
                signer=sign(approver, "approved"),
            )
    assert ErpOrder.objects.get(order_id="5000").batch.recipe == draft


@pytest.mark.req("S95-02", "A11-07")
def test_a_parked_message_expires_into_a_refusal_after_the_configured_time(bare_plant, settings) -> None:
    settings.BATCHLINE_ERP_PARKED_HOURS = 6
    send(bare_plant["erp"], order("BOD-E1", "4711"))
    message = InboundMessage.objects.get(bodid="BOD-E1")
    assert inbound.parked_due(now=message.parked_at + dt.timedelta(hours=5)).expired == []
    done = inbound.parked_due(now=message.parked_at + dt.timedelta(hours=6, seconds=1))
    assert done.expired == ["BOD-E1"]
    message.refresh_from_db()
    assert (message.state, message.code) == ("expired", "EXPIRED")
    assert "waited 6 h" in message.reason and "material LAC-200" in message.reason
    again = send(bare_plant["erp"], order("BOD-E1", "4711"))
    assert (
        again.repeat
        and again.state == "expired"
        and reply_status(again) == ("Rejected", "Expired", "EXPIRED")
    )
    # What it waited for arriving later changes nothing: it was refused.
    material(bare_plant, "LAC-200")
    inbound.parked_due()
    assert not Batch.objects.exists()


@pytest.mark.req("S95-02")
def test_the_workers_round_applies_a_parked_message_whose_announcement_was_missed(bare_plant) -> None:
    send(bare_plant["erp"], order("BOD-W1", "4711"))
    material(bare_plant, "LAC-200")  # committed with the test; its on-commit announcement never runs here
    assert InboundMessage.objects.get(bodid="BOD-W1").state == "parked"
    ran = tick()
    assert ran.erp_applied == ["BOD-W1"]
    assert ErpOrder.objects.filter(order_id="4711").exists()


@pytest.mark.req("S95-02")
def test_a_lot_of_an_unknown_material_and_a_change_of_an_unknown_order_are_parked(
    bare_plant, django_capture_on_commit_callbacks
) -> None:
    erp = bare_plant["erp"]
    lot = send(erp, material_lot("BOD-L1", "L-1", "LAC-200"))
    assert lot.state == "parked" and "material LAC-200" in lot.words
    change = send(erp, schedule("Change", "BOD-C1", request("4711", quantity="2000", bom=[])))
    assert change.state == "parked" and "Order 4711 is not known yet" in change.words
    with django_capture_on_commit_callbacks(execute=True):
        material(bare_plant, "LAC-200")
    assert InboundMessage.objects.get(bodid="BOD-L1").state == "applied"
    # The order comes, is applied, and the change waiting for it follows on that commit.
    with django_capture_on_commit_callbacks(execute=True):
        made = send(erp, order("BOD-O2", "4711"))
    assert made.state == "applied"
    assert InboundMessage.objects.get(bodid="BOD-C1").state == "applied"
    assert ErpOrder.objects.get(order_id="4711").batch.planned_quantity == 2000


@pytest.mark.req("S95-02", "P11-07")
def test_a_parked_message_of_an_account_since_deactivated_is_refused_not_applied(
    bare_plant, django_capture_on_commit_callbacks
) -> None:
    erp = bare_plant["erp"]
    send(erp, order("BOD-D1", "4711"))
    with transaction.atomic():
        record_update(erp, actor=SETUP, values={"is_active": False}, action="deactivate")
    with django_capture_on_commit_callbacks(execute=True):
        material(bare_plant, "LAC-200")
    message = InboundMessage.objects.get(bodid="BOD-D1")
    assert (message.state, message.code) == ("refused", "NOT_ALLOWED")
    assert not Batch.objects.exists()


def test_parked_messages_wait_no_longer_than_the_setting_says(bare_plant, settings) -> None:
    settings.BATCHLINE_ERP_PARKED_HOURS = 0.5
    send(bare_plant["erp"], order("BOD-H", "4711"))
    later = timezone.now() + dt.timedelta(minutes=31)
    assert inbound.parked_due(now=later).expired == ["BOD-H"]
