"""The ERP's material master (SyncMaterialDefinition) and goods receipts and lot status (SyncMaterialLot)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from batchline.approvals.models import ChangeRequest
from batchline.audit.models import AuditEntry
from batchline.materials.models import Container, LedgerEntry, Lot, Material
from batchline.signatures.models import Signature
from tests.conftest import configure

from .documents import material_definition, material_lot, send
from .test_parking import approve

pytestmark = pytest.mark.django_db


@pytest.mark.req("S95-03", "S95-01", "A11-14")
def test_a_new_material_from_the_erp_is_a_request_of_the_interface_that_qa_approves(bare_plant) -> None:
    reply = send(bare_plant["erp"], material_definition("BOD-MD1"))
    assert (reply.state, reply.code) == ("applied", "REQUESTED"), reply.words
    request = ChangeRequest.objects.get(state="requested")
    assert request.requested_by == bare_plant["erp"] and request.kind == "master_data_import"
    assert "ERP message BOD-MD1" in request.summary
    # An interface is no person: its request carries no signature; QA's approval carries one.
    assert not Signature.objects.filter(
        record_type="approvals.changerequest", record_id=str(request.pk)
    ).exists()
    assert not Material.objects.filter(code="LAC-200").exists()
    approve(bare_plant["approver"], request)
    lactose = Material.objects.get(code="LAC-200")
    assert (lactose.name, lactose.unit, lactose.shelf_life_days) == (
        "Lactose monohydrate 200 mesh",
        "kg",
        1095,
    )
    signatures = Signature.objects.filter(record_type="approvals.changerequest", record_id=str(request.pk))
    assert [(s.signer_username, s.meaning) for s in signatures] == [("approver", "approved")]
    again = send(bare_plant["erp"], material_definition("BOD-MD2"))
    assert (again.state, again.code) == ("applied", "UNCHANGED")


@pytest.mark.req("S95-03", "A11-07")
def test_a_second_definition_while_the_first_waits_for_qa_is_refused_in_words(bare_plant) -> None:
    send(bare_plant["erp"], material_definition("BOD-MD1"))
    reply = send(bare_plant["erp"], material_definition("BOD-MD3", name="Lactose 200 mesh (new supplier)"))
    assert reply.state == "refused", reply.words
    assert ChangeRequest.objects.filter(state="requested").count() == 1


@pytest.mark.req("S95-02", "MAT-01", "DI-01")
def test_a_goods_receipt_from_the_erp_enters_quarantine_with_its_containers(plant) -> None:
    reply = send(plant["erp"], material_lot("BOD-GR1", "L-2026-001", containers=("25", "24.5")))
    assert reply.state == "applied", reply.words
    lot = Lot.objects.get(number="L-2026-001")
    assert (lot.status, lot.material.code, lot.supplier_lot) == ("quarantine", "LAC-200", "SUP-88")
    assert lot.expires_at.date().isoformat() == "2028-06-30"
    quantities = sorted(Container.objects.filter(lot=lot).values_list("quantity", flat=True))
    assert quantities == [Decimal("24.5"), Decimal("25")]
    assert LedgerEntry.objects.filter(container__lot=lot, kind="receipt").count() == 2
    made = AuditEntry.objects.get(record_type="materials.lot", record_id=str(lot.pk), action="create")
    assert (made.actor_username, made.via) == ("erp-sap", "erp-https")
    again = send(plant["erp"], material_lot("BOD-GR2", "L-2026-001"))
    assert (again.state, again.code) == ("applied", "UNCHANGED") and Lot.objects.count() == 1


LOT_REFUSALS = {
    "arrives released": (dict(status="Released"), "RECEIPT_STATUS", "every lot is received into quarantine"),
    "no expiry": (dict(expiry=""), "EXPIRY", "no expiry"),
    "unknown status": (dict(status="Frozen"), "LOT_STATUS", "'Frozen' is not a lot status"),
    "unit": (dict(unit="tablet"), "WRONG_UNIT", "cannot be expressed in kg"),
    "assay missing": (dict(code="API-1"), "POTENCY_REQUIRED", "give the lot's potency"),
}


@pytest.mark.req("S95-02", "A11-05", "MAT-01")
@pytest.mark.parametrize("case", sorted(LOT_REFUSALS))
def test_a_receipt_that_cannot_be_taken_is_refused_in_words(plant, case: str) -> None:
    kwargs, code, words = LOT_REFUSALS[case]
    reply = send(plant["erp"], material_lot(f"BOD-{case}", "L-9", **kwargs))
    assert (reply.state, reply.code) == ("refused", code), reply.words
    assert words in reply.words
    assert not Lot.objects.exists()


@pytest.mark.req("S95-04", "MAT-06", "A11-07")
def test_a_lot_status_from_the_erp_is_refused_while_the_gmp_configuration_does_not_allow_it(plant) -> None:
    send(plant["erp"], material_lot("BOD-GR1", "L-1"))
    mark = AuditEntry.objects.order_by("-id").first().pk
    reply = send(plant["erp"], material_lot("BOD-ST1", "L-1", status="Released"))
    assert (reply.state, reply.code) == ("refused", "ERP_STATUS_NOT_ALLOWED")
    assert "'Lot status from the ERP' is off" in reply.words and "QA changes it in Batchline" in reply.words
    assert Lot.objects.get(number="L-1").status == "quarantine"
    assert not AuditEntry.objects.filter(pk__gt=mark, record_type="materials.lot").exists()


@pytest.mark.req("S95-04", "MAT-06", "P11-05")
def test_where_the_configuration_allows_it_the_erps_release_is_applied_audited_under_the_interface(
    plant,
) -> None:
    configure(erp_lot_status=True)
    send(plant["erp"], material_lot("BOD-GR1", "L-1"))
    reply = send(plant["erp"], material_lot("BOD-ST2", "L-1", status="Released"))
    assert reply.state == "applied", reply.words
    lot = Lot.objects.get(number="L-1")
    assert lot.status == "released"
    entry = AuditEntry.objects.get(
        record_type="materials.lot", record_id=str(lot.pk), action="disposition_erp"
    )
    assert (entry.actor_username, entry.actor_name, entry.via) == (
        "erp-sap",
        "SAP PRD (ERP interface)",
        "erp-https",
    )
    assert "BOD-ST2" in entry.reason
    rejected = send(plant["erp"], material_lot("BOD-ST3", "L-1", status="rejected"))
    assert rejected.state == "applied" and Lot.objects.get(number="L-1").status == "rejected"
