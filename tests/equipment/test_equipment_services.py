"""Equipment services on a real database: gates at use, hold times, logbook, calibration, scales."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from batchline.audit.models import AuditEntry
from batchline.audit.services import Actor, record_create, record_update
from batchline.audit.verify import verify
from batchline.equipment import selectors as sel
from batchline.equipment import services as svc
from batchline.equipment.models import Equipment, EquipmentClass, LogbookEntry, Site
from batchline.rules import equipment as eq
from batchline.signatures.models import Signature
from batchline.signatures.services import signature_intact, signer_authenticate
from tests.conftest import PASSWORD, entries, make_user
from tests.signatures.test_signing import station

pytestmark = pytest.mark.django_db
CLOCK = Actor(None, "test-clock", "Test clock", "system")
SETUP = Actor(None, "test-setup", "Test set-up", "cli")
PRODUCT = "PCM500 Paracetamol 500 mg tablets"


def A(user) -> Actor:
    return Actor.of(user, via="web")


def sign(user, meaning: str = "performed"):
    return signer_authenticate(
        request=station(user), username=user.username, password=PASSWORD, meaning=meaning
    )


def make_equipment_plant() -> dict[str, Any]:
    """A site in Zurich, a granulator (72 h holds), a press and two scales; people; units cleaned just now."""
    with transaction.atomic():
        site = record_create(Site(code="p1", name="Plant 1", time_zone="Europe/Zurich"), actor=SETUP)
    granulator = svc.equipment_class_create(
        actor=SETUP, code="granulator", name="High-shear granulator", dirty_hold_hours=72, clean_hold_hours=72
    )
    press = svc.equipment_class_create(
        actor=SETUP, code="tablet_press", name="Tablet press", dirty_hold_hours=72, clean_hold_hours=120
    )
    scale = svc.equipment_class_create(actor=SETUP, code="scale", name="Scale", is_scale=True)
    later = timezone.now() + dt.timedelta(days=90)
    gran = svc.equipment_create(
        actor=SETUP,
        site=site,
        code="gran-01",
        name="Granulator",
        equipment_class=granulator,
        calibration_due_at=later,
        maintenance_due_at=later,
    )
    svc.equipment_create(actor=SETUP, site=site, code="PRESS-01", name="Rotary press", equipment_class=press)
    svc.equipment_create(
        actor=SETUP,
        site=site,
        code="SCALE-01",
        name="Bench scale",
        equipment_class=scale,
        calibration_due_at=later,
        capacity=Decimal("6200"),
        minimum_weight=Decimal("0.5"),
        unit="g",
        host="127.0.0.1",
        port=4305,
    )
    svc.equipment_create(
        actor=SETUP,
        site=site,
        code="SCALE-02",
        name="Floor scale",
        equipment_class=scale,
        calibration_due_at=later,
        capacity=Decimal("64"),
        minimum_weight=Decimal("0.02"),
        unit="kg",
    )
    people = {
        "operator": make_user("operator", ["operator"]),
        "operator2": make_user("operator2", ["operator"]),
        "supervisor": make_user("supervisor", ["supervisor"]),
        "engineer": make_user("engineer", ["administrator"]),
        "auditor": make_user("auditor", ["auditor"]),
    }
    for code in ("GRAN-01", "PRESS-01", "SCALE-01", "SCALE-02"):
        svc.cleaning_start(actor=A(people["operator"]), code=code)
        svc.cleaning_end(actor=A(people["operator"]), code=code, text="Full clean per SOP-CLN-001")
    return {"site": site, "people": people, "gran": gran, "granulator": granulator}


@pytest.fixture
def plant(db) -> dict[str, Any]:
    return make_equipment_plant()


def unit(code: str = "GRAN-01") -> Equipment:
    return Equipment.objects.select_related("equipment_class", "site").get(code=code)


def wind(code: str, **values: Any) -> None:
    """Set times on a unit as if hours had passed (the clock cannot be wound; this goes through the trail)."""
    with transaction.atomic():
        record_update(unit(code), actor=CLOCK, values=values)


def claim(plant, code: str = "GRAN-01", batch: str = "B-1", who: str = "operator", **kw) -> Equipment:
    return svc.equipment_claim(
        actor=A(plant["people"][who]), code=code, batch_number=batch, product=PRODUCT, **kw
    )


def refused_codes(action, **kw) -> list[str]:
    before = AuditEntry.objects.count()
    with pytest.raises(svc.EquipmentRefused) as refusal:
        action(**kw)
    assert AuditEntry.objects.count() == before, "a refusal writes nothing"
    return refusal.value.verdict.codes


def log_kinds(code: str = "GRAN-01") -> list[str]:
    return list(sel.logbook(unit(code)).values_list("kind", flat=True))


# --- claim and release -------------------------------------------------------------------


@pytest.mark.req("EQ-01", "EQ-05", "LOG-02")
def test_a_claim_puts_clean_equipment_in_use_and_writes_the_logbook_itself(plant) -> None:
    claimed = claim(plant, step="dry_mix")
    assert (claimed.status, claimed.current_batch) == ("in_use", "B-1")
    last = sel.logbook(unit()).last()
    assert (last.kind, last.batch_number, last.product, last.user) == (
        "use_start",
        "B-1",
        PRODUCT,
        plant["people"]["operator"],
    )
    assert "dry_mix" in last.text
    (change,) = entries(record_type="equipment.equipment", record_id=str(claimed.pk), action="claim")
    assert change.actor_username == "operator"


@pytest.mark.req("EQ-01")
def test_the_same_batch_may_scan_its_equipment_again_without_a_second_entry(plant) -> None:
    claim(plant)
    before = (AuditEntry.objects.count(), LogbookEntry.objects.count())
    claim(plant)
    assert (AuditEntry.objects.count(), LogbookEntry.objects.count()) == before


@pytest.mark.req("EQ-01")
def test_equipment_in_use_by_another_batch_is_refused_with_the_batch(plant) -> None:
    claim(plant)
    with pytest.raises(svc.EquipmentRefused) as refusal:
        claim(plant, batch="B-2", who="operator2")
    assert refusal.value.verdict.codes == ["EQUIPMENT_BUSY"]
    assert "in use by batch B-1" in str(refusal.value)


@pytest.mark.req("EQ-01", "EQ-02", "LOG-02")
def test_release_leaves_it_dirty_and_dirty_equipment_is_refused(plant) -> None:
    claim(plant)
    released = svc.equipment_release(actor=A(plant["people"]["operator"]), code="GRAN-01", batch_number="B-1")
    assert (
        released.status == "dirty" and released.current_batch is None and released.last_used_end is not None
    )
    assert log_kinds()[-2:] == ["use_start", "use_end"]
    assert refused_codes(claim, plant=plant, batch="B-2") == ["EQUIPMENT_DIRTY"]


def test_only_the_batch_using_it_releases_it(plant) -> None:
    claim(plant)
    codes = refused_codes(
        svc.equipment_release, actor=A(plant["people"]["operator"]), code="GRAN-01", batch_number="B-9"
    )
    assert codes == ["NOT_IN_USE_BY_BATCH"]


@pytest.mark.req("EQ-02")
def test_a_clean_hold_that_has_ended_refuses_use(plant) -> None:
    wind("GRAN-01", cleaned_at=timezone.now() - dt.timedelta(hours=72))
    assert refused_codes(claim, plant=plant) == ["CLEAN_HOLD_EXPIRED"]
    wind("GRAN-01", cleaned_at=timezone.now() - dt.timedelta(hours=71, minutes=59))
    assert claim(plant).status == "in_use"


@pytest.mark.req("EQ-04", "EQ-01")
@pytest.mark.parametrize(
    ("field", "code"),
    [("calibration_due_at", "CALIBRATION_OVERDUE"), ("maintenance_due_at", "MAINTENANCE_OVERDUE")],
)
def test_overdue_calibration_or_maintenance_refuses_use(plant, field: str, code: str) -> None:
    wind("GRAN-01", **{field: timezone.now() - dt.timedelta(seconds=1)})
    assert refused_codes(claim, plant=plant) == [code]


@pytest.mark.req("EQ-01")
def test_each_status_that_forbids_use_refuses_a_claim(plant) -> None:
    engineer, operator = A(plant["people"]["engineer"]), A(plant["people"]["operator"])
    svc.cleaning_start(actor=operator, code="GRAN-01")
    assert refused_codes(claim, plant=plant) == ["CLEANING_IN_PROGRESS"]
    svc.status_set(actor=engineer, code="GRAN-01", command="take_out_of_service", reason="seal leaks")
    codes = refused_codes(claim, plant=plant)
    assert codes == ["OUT_OF_SERVICE"]
    svc.maintenance_start(actor=engineer, code="GRAN-01", reason="replace the seal")
    assert refused_codes(claim, plant=plant) == ["IN_MAINTENANCE"]
    assert refused_codes(claim, plant=plant, required_class="tablet_press") == ["WRONG_EQUIPMENT_CLASS"]


def test_an_unknown_code_is_refused_in_words(plant) -> None:
    with pytest.raises(svc.EquipmentRefused, match="No equipment has the code 'NOPE-1'"):
        claim(plant, code="NOPE-1")


@pytest.mark.req("LOG-02")
def test_a_claim_runs_inside_the_callers_transaction_and_a_refusal_leaves_it_usable(plant) -> None:
    """As the execution engine calls it: inside its own atomic block, a refusal rolls back only the claim."""
    claim(plant, code="PRESS-01", batch="B-1")
    with transaction.atomic():
        claim(plant, code="GRAN-01", batch="B-2")
        with pytest.raises(svc.EquipmentRefused):
            claim(plant, code="PRESS-01", batch="B-2")
        record_create(Site(code="p2", name="Still writable"), actor=SETUP)
    assert unit().current_batch == "B-2" and Site.objects.filter(code="p2").exists()


# --- cleaning, maintenance, status ------------------------------------------------------------


@pytest.mark.req("EQ-02", "LOG-01")
def test_cleaning_started_after_the_dirty_hold_says_so_in_the_logbook(plant) -> None:
    claim(plant)
    svc.equipment_release(actor=A(plant["people"]["operator"]), code="GRAN-01", batch_number="B-1")
    now = timezone.now()
    wind("GRAN-01", cleaned_at=now - dt.timedelta(hours=80), last_used_end=now - dt.timedelta(hours=73))
    assert sel.board_row(unit(), timezone.now()).condition.status == eq.DIRTY_HOLD_EXCEEDED
    svc.cleaning_start(actor=A(plant["people"]["operator"]), code="GRAN-01", text="manual wash")
    line = sel.logbook(unit()).last()
    assert line.kind == "cleaning_start" and line.text.startswith("Dirty hold of 72 h exceeded")
    cleaned = svc.cleaning_end(actor=A(plant["people"]["operator"]), code="GRAN-01")
    assert cleaned.status == "clean" and cleaned.cleaned_at is not None
    assert sel.board_row(cleaned, timezone.now()).condition.clean_until == cleaned.cleaned_at + dt.timedelta(
        hours=72
    )


@pytest.mark.req("EQ-01")
def test_a_transition_the_table_does_not_allow_is_refused(plant) -> None:
    codes = refused_codes(svc.cleaning_end, actor=A(plant["people"]["operator"]), code="GRAN-01")
    assert codes == ["ILLEGAL_TRANSITION"]
    claim(plant)
    codes = refused_codes(
        svc.status_set,
        actor=A(plant["people"]["engineer"]),
        code="GRAN-01",
        command="take_out_of_service",
        reason="x",
    )
    assert codes == ["ILLEGAL_TRANSITION"]


def test_out_of_service_needs_a_reason_and_comes_back_dirty(plant) -> None:
    engineer = A(plant["people"]["engineer"])
    codes = refused_codes(
        svc.status_set, actor=engineer, code="GRAN-01", command="take_out_of_service", reason=" "
    )
    assert codes == ["REASON_REQUIRED"]
    svc.status_set(actor=engineer, code="GRAN-01", command="take_out_of_service", reason="motor noise")
    back = svc.status_set(
        actor=engineer, code="GRAN-01", command="return_to_service", reason="motor replaced"
    )
    assert back.status == "dirty" and back.status_reason == ""


@pytest.mark.req("EQ-04", "LOG-01")
def test_maintenance_done_sets_the_next_due_date_and_leaves_it_to_be_cleaned(plant) -> None:
    engineer = A(plant["people"]["engineer"])
    svc.maintenance_start(actor=engineer, code="GRAN-01", reason="preventive maintenance")
    due = timezone.now() + dt.timedelta(days=180)
    done = svc.maintenance_end(actor=engineer, code="GRAN-01", text="bearings greased", next_due=due)
    assert done.status == "dirty" and done.maintenance_due_at == due
    assert log_kinds()[-2:] == ["maintenance", "maintenance"]


# --- calibration -----------------------------------------------------------------------------


@pytest.mark.req("EQ-04", "LOG-01", "P11-13", "P11-14")
def test_a_passed_calibration_is_signed_and_moves_the_due_date(plant) -> None:
    engineer = plant["people"]["engineer"]
    wind("GRAN-01", calibration_due_at=timezone.now() - dt.timedelta(days=1))
    due = timezone.now() + dt.timedelta(days=365)
    entry = svc.calibration_record(
        actor=A(engineer), code="GRAN-01", passed=True, next_due=due, signer=sign(engineer), text="cert 4711"
    )
    assert unit().calibration_due_at == due and entry.kind == "calibration"
    (signature,) = Signature.objects.filter(record_type="equipment.logbookentry", record_id=str(entry.pk))
    assert signature.signer == engineer and signature.meaning == "performed"
    entry.refresh_from_db()
    assert signature_intact(signature, sel.signed_content(entry))
    assert claim(plant).status == "in_use"


@pytest.mark.req("EQ-04")
def test_a_failed_calibration_takes_the_unit_out_of_service(plant) -> None:
    engineer = plant["people"]["engineer"]
    svc.calibration_record(
        actor=A(engineer),
        code="GRAN-01",
        passed=False,
        next_due=None,
        signer=sign(engineer),
        text="torque off",
    )
    assert unit().status == "out_of_service" and "failed calibration" in unit().status_reason
    assert refused_codes(claim, plant=plant) == ["OUT_OF_SERVICE"]


def test_a_calibration_is_signed_by_who_records_it(plant) -> None:
    people = plant["people"]
    with pytest.raises(svc.EquipmentRefused, match="your own user ID"):
        svc.calibration_record(
            actor=A(people["engineer"]),
            code="GRAN-01",
            passed=True,
            next_due=timezone.now() + dt.timedelta(days=1),
            signer=sign(people["operator"]),
        )


# --- scales (WD-02) ----------------------------------------------------------------------------


def suitable(code: str, target: str, unit_: str) -> list[str]:
    return sel.scale_suitable(code=code, target=Decimal(target), unit=unit_, now=timezone.now()).codes


@pytest.mark.req("WD-02")
def test_a_scale_weighs_only_after_todays_check(plant) -> None:
    assert suitable("SCALE-01", "500", "g") == ["DAILY_CHECK_MISSING"]
    svc.scale_check_record(
        actor=A(plant["people"]["operator"]), code="SCALE-01", passed=True, text="2 kg E2 weight"
    )
    assert suitable("SCALE-01", "500", "g") == []
    assert log_kinds("SCALE-01")[-1] == "check"
    svc.scale_check_record(actor=A(plant["people"]["operator"]), code="SCALE-01", passed=False)
    assert suitable("SCALE-01", "500", "g") == ["DAILY_CHECK_FAILED"]


@pytest.mark.req("WD-02")
def test_capacity_and_minimum_weight_are_compared_in_the_scales_unit(plant) -> None:
    for code in ("SCALE-01", "SCALE-02"):
        svc.scale_check_record(actor=A(plant["people"]["operator"]), code=code, passed=True)
    assert suitable("SCALE-01", "6.2", "kg") == []
    assert suitable("SCALE-01", "6.3", "kg") == ["CAPACITY_EXCEEDED"]
    assert suitable("SCALE-02", "64000", "g") == []
    assert suitable("SCALE-02", "10", "g") == ["BELOW_MINIMUM_WEIGHT"]
    assert suitable("SCALE-02", "1", "L") == ["WRONG_UNIT"]
    assert suitable("GRAN-01", "1", "g") == ["NOT_A_SCALE"]
    assert suitable("NOPE", "1", "g") == ["UNKNOWN_EQUIPMENT"]


@pytest.mark.req("WD-02", "EQ-04")
def test_a_scale_past_its_calibration_is_refused(plant) -> None:
    svc.scale_check_record(actor=A(plant["people"]["operator"]), code="SCALE-01", passed=True)
    wind("SCALE-01", calibration_due_at=timezone.now())
    assert suitable("SCALE-01", "500", "g") == ["CALIBRATION_OVERDUE"]


# --- the logbook --------------------------------------------------------------------------------


@pytest.mark.req("LOG-01")
def test_the_logbook_holds_uses_cleanings_and_notes_in_time_order(plant) -> None:
    claim(plant)
    svc.equipment_release(actor=A(plant["people"]["operator"]), code="GRAN-01", batch_number="B-1")
    svc.logbook_note(actor=A(plant["people"]["supervisor"]), code="GRAN-01", text="Lid gasket looks worn")
    assert log_kinds() == [
        "note",
        "cleaning_start",
        "cleaning_end",
        "use_start",
        "use_end",
        "note",
    ]
    times = list(sel.logbook(unit()).values_list("at", flat=True))
    assert times == sorted(times)


@pytest.mark.req("LOG-03", "P11-05")
def test_a_correction_is_a_new_signed_entry_and_the_original_stays(plant) -> None:
    supervisor = plant["people"]["supervisor"]
    note = svc.logbook_note(actor=A(supervisor), code="GRAN-01", text="Gasket worn on the left")
    correction = svc.logbook_correct(
        actor=A(supervisor),
        entry=note,
        text="Gasket worn on the right",
        reason="wrong side",
        signer=sign(supervisor),
    )
    note.refresh_from_db()
    assert note.text == "Gasket worn on the left"
    assert (correction.kind, correction.corrects, correction.reason) == ("correction", note, "wrong side")
    assert list(sel.logbook(unit()).get(pk=note.pk).corrections.all()) == [correction]
    assert Signature.objects.filter(
        record_type="equipment.logbookentry", record_id=str(correction.pk)
    ).exists()
    with pytest.raises(svc.EquipmentRefused):
        svc.logbook_correct(actor=A(supervisor), entry=note, text="x", reason=" ", signer=sign(supervisor))


@pytest.mark.req("LOG-03", "P11-05")
@pytest.mark.parametrize(
    "statement",
    ["UPDATE equipment_logbookentry SET text = 'rewritten'", "DELETE FROM equipment_logbookentry"],
    ids=["update", "delete"],
)
def test_the_database_refuses_to_change_the_logbook(plant, statement: str) -> None:
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(statement)
    assert not LogbookEntry.objects.filter(text="rewritten").exists()


@pytest.mark.req("P11-01", "P11-05")
def test_every_equipment_write_is_in_the_trail_and_verifies(plant) -> None:
    people = plant["people"]
    claim(plant)
    svc.equipment_release(actor=A(people["operator"]), code="GRAN-01", batch_number="B-1")
    svc.cleaning_start(actor=A(people["operator"]), code="GRAN-01")
    svc.cleaning_end(actor=A(people["operator"]), code="GRAN-01")
    svc.scale_check_record(actor=A(people["operator"]), code="SCALE-01", passed=True)
    svc.calibration_record(
        actor=A(people["engineer"]),
        code="SCALE-01",
        passed=True,
        next_due=timezone.now() + dt.timedelta(days=30),
        signer=sign(people["engineer"]),
    )
    note = svc.logbook_note(actor=A(people["operator"]), code="GRAN-01", text="ok")
    svc.logbook_correct(
        actor=A(people["operator"]), entry=note, text="fine", reason="typo", signer=sign(people["operator"])
    )
    report = verify()
    assert report.ok, [str(f) for f in report.findings]
    assert entries(record_type="equipment.logbookentry", action="create")


def test_bulk_writes_to_equipment_are_refused(plant) -> None:
    from batchline.audit.models import AuditBypassError

    with pytest.raises(AuditBypassError):
        Equipment.objects.filter(code="GRAN-01").update(status="clean")
    with pytest.raises(AuditBypassError):
        EquipmentClass.objects.all().delete()


# --- what the machine reports of itself, from the gateway ------------------------------------


@pytest.mark.req("EQ-01", "S95-06", "DI-01")
def test_a_unit_its_plc_reports_held_is_refused_until_it_reports_idle_and_each_change_is_audited(
    plant,
) -> None:
    gateway = Actor(id=None, username="gateway", name="Equipment gateway", via="system")
    t0 = timezone.now() - dt.timedelta(minutes=5)
    assert svc.machine_report(actor=gateway, code="GRAN-01", at=t0, state=11, mode=1)
    assert refused_codes(lambda **kw: claim(plant)) == ["MACHINE_NOT_READY"]
    # The same report again, and an older one replayed after a gateway restart: nothing written.
    assert not svc.machine_report(actor=gateway, code="GRAN-01", at=t0 + dt.timedelta(seconds=1), state=11)
    assert not svc.machine_report(actor=gateway, code="GRAN-01", at=t0 - dt.timedelta(minutes=1), state=4)
    assert svc.machine_report(actor=gateway, code="GRAN-01", at=t0 + dt.timedelta(minutes=1), mode=2)
    assert refused_codes(lambda **kw: claim(plant)) == ["MACHINE_IN_MAINTENANCE"]
    # The gateway lost the PLC: the last report stays, unknown, and is refused as such.
    svc.machine_report(actor=gateway, code="GRAN-01", at=t0 + dt.timedelta(minutes=2), state=4, mode=1)
    assert svc.machine_report(actor=gateway, code="GRAN-01", at=t0 + dt.timedelta(minutes=3), known=False)
    assert refused_codes(lambda **kw: claim(plant)) == ["MACHINE_STATE_UNKNOWN"]
    assert svc.machine_report(actor=gateway, code="GRAN-01", at=t0 + dt.timedelta(minutes=4), state=4)
    assert claim(plant).status == "in_use"
    changes = AuditEntry.objects.filter(record_type="equipment.equipment", action="machine_report")
    assert changes.count() == 5 and {e.actor_username for e in changes} == {"gateway"}
