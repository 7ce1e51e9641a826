"""Master data under change control: create, change, retire, approve, refuse (issue 12)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import transaction
from django.utils import timezone

from batchline.approvals import services as approvals
from batchline.approvals.models import RequestState
from batchline.audit.services import Actor, ReasonRequired, record_create
from batchline.equipment.models import Equipment, EquipmentClass, Site, Station
from batchline.masterdata import selectors
from batchline.masterdata.models import MasterChange
from batchline.masterdata.services import changes_due_apply, master_change, master_create, master_retire
from batchline.materials import services as stock
from batchline.materials.models import Material
from batchline.signatures.services import SignatureRefused
from batchline.training.models import Qualification
from tests.configuration.test_configuration import signer
from tests.conftest import SETUP, entries, make_user

pytestmark = pytest.mark.django_db

MATERIAL = {
    "code": "LAC-200",
    "name": "Lactose monohydrate 200 mesh",
    "kind": "excipient",
    "unit": "kg",
    "storage": "Store below 25 °C, dry",
    "shelf_life_days": "1095",
    "retest_days": "365",
}


def request_new(admin, kind, values, reason="new supplier qualified (CC-2026-041)", **extra):
    return master_create(
        actor=Actor.of(admin, via="web"),
        signer=signer(admin, "requested"),
        kind=kind,
        values=values,
        reason=reason,
        **extra,
    )


def approve(approver, request, comment="checked against the specification"):
    return approvals.change_approve(
        actor=Actor.of(approver, via="web"),
        signer=signer(approver, "approved"),
        request=request,
        comment=comment,
    )


def change(user, kind, code, values, reason="SOP-QA-012 revision 4", sign=True, **extra):
    return master_change(
        actor=Actor.of(user, via="web"),
        signer=signer(user, "requested") if sign else None,
        kind=kind,
        code=code,
        values=values,
        reason=reason,
        **extra,
    )


@pytest.fixture
def plant(personas):
    with transaction.atomic():
        site = record_create(Site(code="main", name="Main plant"), actor=SETUP)
    return personas, site


@pytest.mark.req("A11-14", "P11-11", "P11-05")
def test_a_new_material_exists_only_once_a_second_person_approves_it(plant) -> None:
    people, _site = plant
    admin, approver = people["admin"], people["qa_approver"]
    request = request_new(admin, "material", MATERIAL)
    assert "Material LAC-200: new" in request.summary and "Shelf life — → 1095 days" in request.summary
    assert not Material.objects.filter(code="LAC-200").exists()  # a draft until approved

    with pytest.raises(approvals.ChangeRefused, match="You requested this change"):
        approve(admin, request)
    approve(approver, request)
    material = Material.objects.get(code="LAC-200")
    assert (material.shelf_life_days, material.unit, material.storage) == (
        1095,
        "kg",
        "Store below 25 °C, dry",
    )
    created = entries(record_type="materials.material", record_id=str(material.pk))
    assert created[0].action == "master_create" and "CC-2026-041" in created[0].reason
    assert MasterChange.objects.get(change_request=request).applied_at is not None


@pytest.mark.req("A11-14", "P11-05", "LBL-01")
def test_a_gmp_change_waits_for_approval_and_so_does_a_name_printed_on_labels(plant) -> None:
    people, _site = plant
    admin, approver = people["admin"], people["qa_approver"]
    approve(approver, request_new(admin, "material", MATERIAL))

    outcome = change(admin, "material", "LAC-200", {"name": "Lactose 200M", "shelf_life_days": "730"})
    material = Material.objects.get(code="LAC-200")
    # The name prints on every container label (21 CFR 211.101(b)(1)): like the shelf life, not until approved.
    assert (material.name, material.shelf_life_days) == ("Lactose monohydrate 200 mesh", 1095)
    assert outcome.applied == [] and outcome.request is not None
    assert "Shelf life 1095 days → 730 days" in outcome.request.summary
    assert "Name Lactose monohydrate 200 mesh → Lactose 200M" in outcome.request.summary

    approve(approver, outcome.request)
    material.refresh_from_db()
    assert (material.name, material.shelf_life_days) == ("Lactose 200M", 730)
    change_entry = entries(
        record_type="materials.material", record_id=str(material.pk), action="master_change"
    )[-1]
    assert '"shelf_life_days":[1095,730]' in change_entry.changes
    assert change_entry.reason == "SOP-QA-012 revision 4"


@pytest.mark.req("A11-14", "P11-05")
def test_a_descriptive_name_changes_at_once_audited_with_its_reason(plant) -> None:
    people, _site = plant
    admin, approver = people["admin"], people["qa_approver"]
    approve(approver, request_new(admin, "equipment_class", SCALE_CLASS))

    outcome = change(
        admin, "equipment_class", "bench-scale", {"name": "Bench scales", "dirty_hold_hours": "8"}
    )
    eq_class = EquipmentClass.objects.get(code="bench-scale")
    assert eq_class.name == "Bench scales"  # descriptive: at once, audited
    assert outcome.applied == [f"Name {SCALE_CLASS['name']} → Bench scales"]
    assert outcome.request is not None and eq_class.dirty_hold_hours != 8  # GMP: not until approved
    renamed = entries(
        record_type="equipment.equipmentclass", record_id=str(eq_class.pk), action="master_change"
    )
    assert renamed[-1].reason == "SOP-QA-012 revision 4" and '"name":' in renamed[-1].changes


def test_a_gmp_change_needs_a_signature_and_every_change_a_reason(plant) -> None:
    people, _site = plant
    admin, approver = people["admin"], people["qa_approver"]
    approve(approver, request_new(admin, "material", MATERIAL))
    with pytest.raises(approvals.ChangeRefused, match="requested with your signature"):
        change(admin, "material", "LAC-200", {"retest_days": "180"}, sign=False)
    with pytest.raises(ReasonRequired):
        change(admin, "material", "LAC-200", {"name": "x"}, reason=" ")
    with pytest.raises(approvals.ChangeRefused, match="Unit of a material is fixed"):
        change(admin, "material", "LAC-200", {"unit": "g"})
    assert Material.objects.get(code="LAC-200").retest_days == 365


@pytest.mark.req("P11-07")
def test_only_who_may_request_master_data_changes_it(plant) -> None:
    people, _site = plant
    with pytest.raises(SignatureRefused, match="sign as 'Requested'"):
        request_new(people["operator"], "material", MATERIAL)
    with pytest.raises(approvals.ChangeRefused, match="do not allow"):
        change(people["qa_approver"], "material", "LAC-200", {"name": "x"}, sign=False)


def test_bad_values_are_refused_in_words_and_nothing_is_requested(plant) -> None:
    people, _site = plant
    admin = people["admin"]
    for values, words in (
        (
            {**MATERIAL, "shelf_life_days": "three years"},
            "Shelf life: 'three years' is not a whole number of days",
        ),
        ({**MATERIAL, "unit": "bucket"}, "Unit: 'bucket' is not one of"),
        ({**MATERIAL, "code": "LAC 200"}, "no spaces"),
        ({k: v for k, v in MATERIAL.items() if k != "kind"}, "A new material needs: Type"),
        ({**MATERIAL, "colour": "white"}, "Material has no field colour"),
        ({**MATERIAL, "gtin": "04012345678902"}, "not a valid GTIN"),
    ):
        with pytest.raises(approvals.ChangeRefused, match=words):
            request_new(admin, "material", values)
    assert not approvals.ChangeRequest.objects.exists()


@pytest.mark.req("P11-03", "A11-14")
def test_a_retired_material_is_received_no_more_and_stays_readable(plant) -> None:
    people, _site = plant
    admin, approver, warehouse = people["admin"], people["qa_approver"], make_user("stores", ["warehouse"])
    approve(approver, request_new(admin, "material", MATERIAL))
    material = Material.objects.get(code="LAC-200")
    lot = stock.lot_receive(
        actor=Actor.of(warehouse, via="web"),
        material=material,
        number="L-1",
        expires_at=timezone.now() + dt.timedelta(days=300),
        containers=["25"],
    )
    request = master_retire(
        actor=Actor.of(admin, via="web"),
        signer=signer(admin, "requested"),
        kind="material",
        code="LAC-200",
        reason="supplier discontinued",
    )
    assert Material.objects.get(code="LAC-200").retired_at is None
    approve(approver, request)
    material.refresh_from_db()
    assert material.retired_at is not None
    with pytest.raises(stock.MaterialRefused, match="retired in the master data"):
        stock.lot_receive(
            actor=Actor.of(warehouse, via="web"),
            material=material,
            number="L-2",
            expires_at=timezone.now() + dt.timedelta(days=300),
            containers=["25"],
        )
    lot.refresh_from_db()
    assert lot.material.code == "LAC-200"  # its lot and records keep it
    view = selectors.item_view(selectors.KINDS["material"], "LAC-200")
    assert view is not None and view["retired_at"] is not None and "1 lots" in view["uses"][0]
    assert [r["operation"] for r in view["requests"]] == ["retire", "create"]
    with pytest.raises(approvals.ChangeRefused, match="is retired"):
        change(admin, "material", "LAC-200", {"name": "again"}, sign=False)


def test_a_material_whose_lots_carry_an_assay_refuses_a_receipt_without_one(plant) -> None:
    people, _site = plant
    approve(
        people["qa_approver"],
        request_new(people["admin"], "material", {**MATERIAL, "potency_required": "yes"}),
    )
    with pytest.raises(stock.MaterialRefused, match="give the lot's potency"):
        stock.lot_receive(
            actor=Actor.of(make_user("stores", ["warehouse"]), via="web"),
            material=Material.objects.get(code="LAC-200"),
            number="L-1",
            expires_at=timezone.now() + dt.timedelta(days=300),
            containers=["25"],
        )


SCALE_CLASS = {
    "code": "bench-scale",
    "name": "Bench scale",
    "is_scale": "yes",
    "calibration_interval_days": "90",
}
SCALE = {
    "code": "SCALE-09",
    "name": "Bench scale booth 9",
    "site": "main",
    "equipment_class": "bench-scale",
    "capacity": "6.2",
    "readability": "0.0001",
    "minimum_weight": "0.02",
    "unit": "kg",
    "host": "127.0.0.1",
    "port": "4309",
}


@pytest.mark.req("EQ-01", "P11-08", "A11-14")
def test_a_scale_and_a_station_are_set_up_under_approval(plant) -> None:
    people, _site = plant
    admin, approver = people["admin"], people["qa_approver"]
    with pytest.raises(approvals.ChangeRefused, match="there is no equipment class 'bench-scale'"):
        request_new(admin, "equipment", SCALE)
    approve(approver, request_new(admin, "equipment_class", SCALE_CLASS))
    assert EquipmentClass.objects.get(code="bench-scale").calibration_interval_days == 90
    with pytest.raises(approvals.ChangeRefused, match="A scale needs its minimum weight"):
        request_new(admin, "equipment", {**SCALE, "minimum_weight": ""})
    with pytest.raises(approvals.ChangeRefused, match="readability"):
        request_new(admin, "equipment", {**SCALE, "minimum_weight": "7"})
    approve(approver, request_new(admin, "equipment", SCALE))
    scale = Equipment.objects.get(code="SCALE-09")
    assert (scale.capacity, scale.readability, scale.site.code) == (Decimal("6.2"), Decimal("0.0001"), "main")

    station = {"code": "BOOTH-09", "name": "Booth 9 tablet", "site": "main", "address": "10.20.9.0/29"}
    with pytest.raises(approvals.ChangeRefused, match="no equipment 'SCALE-99'"):
        request_new(admin, "station", {**station, "devices": "SCALE-99"})
    with pytest.raises(approvals.ChangeRefused, match="not an IP address"):
        request_new(admin, "station", {**station, "address": "booth nine"})
    approve(approver, request_new(admin, "station", {**station, "devices": "SCALE-09"}))
    assert Station.objects.get(code="BOOTH-09").devices == ["SCALE-09"]
    with pytest.raises(approvals.ChangeRefused, match="overlaps station BOOTH-09"):
        request_new(admin, "station", {**station, "code": "BOOTH-10", "address": "10.20.9.3"})


@pytest.mark.req("A11-14")
def test_an_approval_is_refused_when_what_it_needs_was_retired_meanwhile(plant) -> None:
    people, _site = plant
    admin, approver = people["admin"], people["qa_approver"]
    approve(approver, request_new(admin, "equipment_class", SCALE_CLASS))
    approve(approver, request_new(admin, "equipment", SCALE))
    pending = request_new(
        admin,
        "station",
        {"code": "B9", "name": "B9", "site": "main", "address": "10.0.0.9", "devices": "SCALE-09"},
    )
    approve(
        approver,
        master_retire(
            actor=Actor.of(admin, via="web"),
            signer=signer(admin, "requested"),
            kind="equipment",
            code="SCALE-09",
            reason="scrapped",
        ),
    )
    with pytest.raises(approvals.ChangeRefused, match="SCALE-09 is retired"):
        approve(approver, pending)
    pending.refresh_from_db()
    assert pending.state == RequestState.REQUESTED and not Station.objects.filter(code="B9").exists()


@pytest.mark.req("TRN-01", "A11-14")
def test_a_change_with_an_effective_date_takes_effect_on_that_date(plant) -> None:
    people, _site = plant
    admin, approver = people["admin"], people["qa_approver"]
    approve(
        approver,
        request_new(
            admin,
            "qualification",
            {"code": "SOP-DISP-001", "title": "Dispensing", "kind": "sop", "version": "3"},
        ),
    )
    when = timezone.now() + dt.timedelta(days=7)
    outcome = change(
        admin, "qualification", "SOP-DISP-001", {"version": "4", "roles": "operator"}, effective_at=when
    )
    approve(approver, outcome.request)
    assert Qualification.objects.get(code="SOP-DISP-001").version == 3  # approved, not yet effective
    assert changes_due_apply(timezone.now()) == []
    assert changes_due_apply(when + dt.timedelta(seconds=1)) == [outcome.request.number]
    qualification = Qualification.objects.get(code="SOP-DISP-001")
    assert (qualification.version, qualification.roles) == (4, ["operator"])
    with pytest.raises(approvals.ChangeRefused, match="a version is never lowered"):
        change(admin, "qualification", "SOP-DISP-001", {"version": "2"})


@pytest.mark.req("A11-14")
def test_the_worker_puts_a_change_into_effect_when_its_date_comes(plant) -> None:
    import time

    from batchline.integrity.verification import tick

    people, _site = plant
    admin, approver = people["admin"], people["qa_approver"]
    when = timezone.now() + dt.timedelta(seconds=2)
    approve(approver, request_new(admin, "equipment_class", SCALE_CLASS, effective_at=when))
    assert not EquipmentClass.objects.filter(code="bench-scale").exists()
    time.sleep(max(0.0, (when - timezone.now()).total_seconds()) + 0.1)
    assert tick().master_changes  # the worker's round
    created = EquipmentClass.objects.get(code="bench-scale")
    entry = entries(record_type="equipment.equipmentclass", record_id=str(created.pk))[0]
    assert entry.actor_username == "system" and "approved, effective" in entry.reason


@pytest.mark.req("A11-14", "P11-11")
def test_no_approval_lands_on_an_item_whose_approved_change_waits_for_its_date(plant) -> None:
    people, _site = plant
    admin, approver = people["admin"], people["qa_approver"]
    approve(approver, request_new(admin, "material", MATERIAL))
    later = timezone.now() + dt.timedelta(days=7)
    approve(
        approver, change(admin, "material", "LAC-200", {"shelf_life_days": "730"}, effective_at=later).request
    )
    sooner = change(admin, "material", "LAC-200", {"shelf_life_days": "365"}).request
    with pytest.raises(approvals.ChangeRefused, match="waits for its effective date"):
        approve(approver, sooner)  # else the dated 730 would land over an approved 365 that nobody saw
    assert changes_due_apply(later + dt.timedelta(seconds=1))
    assert Material.objects.get(code="LAC-200").shelf_life_days == 730


def test_what_a_field_cannot_hold_is_refused_in_words(plant) -> None:
    people, _site = plant
    admin, approver = people["admin"], people["qa_approver"]
    with pytest.raises(approvals.ChangeRefused, match="'²' is not a whole number of days"):
        request_new(admin, "material", {**MATERIAL, "shelf_life_days": "²"})
    approve(approver, request_new(admin, "material", {**MATERIAL, "gtin": "04012345678901"}))
    with pytest.raises(approvals.ChangeRefused, match="GTIN 04012345678901 is material LAC-200's"):
        request_new(admin, "material", {**MATERIAL, "code": "LAC-201", "gtin": "04012345678901"})


@pytest.mark.req("P11-08")
def test_unit_and_station_codes_are_the_capitals_a_scanner_reads(plant) -> None:
    people, _site = plant
    admin, approver = people["admin"], people["qa_approver"]
    approve(approver, request_new(admin, "equipment_class", SCALE_CLASS))
    approve(approver, request_new(admin, "equipment", {**SCALE, "code": "scale-09"}))
    station = {"code": "booth-9", "name": "B9", "site": "main", "address": "10.0.0.9", "devices": "scale-09"}
    approve(approver, request_new(admin, "station", station))
    assert Station.objects.get(code="BOOTH-9").devices == ["SCALE-09"]
    assert Equipment.objects.filter(code="SCALE-09").exists()
