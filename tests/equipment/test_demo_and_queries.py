"""The demo plant shows every status; the board and a logbook read in a fixed number of queries."""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from batchline.audit.services import record_create
from batchline.audit.verify import verify
from batchline.equipment import demo as equipment_demo
from batchline.equipment import selectors as sel
from batchline.equipment.models import Equipment, Site
from batchline.masterdata.seeding import master_seed
from batchline.rules import equipment as eq
from batchline.training import demo as training_demo
from batchline.training.selectors import user_qualified
from tests.configuration.test_configuration import signer
from tests.conftest import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo_plant(db):
    people = {
        name: make_user(name, roles)
        for name, roles in (
            ("operator", ["operator"]),
            ("operator2", ["operator"]),
            ("supervisor", ["supervisor"]),
            ("reviewer", ["qa_reviewer"]),
            ("admin", ["administrator"]),
            ("approver", ["qa_approver"]),
        )
    }
    with transaction.atomic():
        site = record_create(
            Site(code="demo", name="Demo", time_zone="Europe/Zurich"), actor=equipment_demo.DEMO
        )
    equipment_demo.seed(site, people, master_of(people))
    training_demo.seed(site, people, master_of(people))
    return people


def master_of(people):
    """The demo's master-data entry with these personas: admin requests, approver approves."""

    def master(kind, rows):
        return master_seed(
            kind=kind,
            rows=rows,
            requester=people["admin"],
            approver=people["approver"],
            sign=lambda username, meaning: signer(people[username], meaning),
            reason="demo data",
            comment="demo data",
        )

    return master


@pytest.mark.req("EQ-01", "EQ-02", "EQ-04", "TRN-01")
def test_the_demo_has_equipment_in_every_status_and_one_expired_training(demo_plant) -> None:
    rows = sel.board(timezone.now())
    statuses = {r.condition.status for r in rows}
    assert statuses >= {*eq.STATUSES, eq.CLEAN_HOLD_EXPIRED, eq.DIRTY_HOLD_EXCEEDED}
    assert any(r.condition.calibration == eq.DUE_OVERDUE for r in rows)
    scales = {r.equipment.code: r for r in rows if r.equipment.equipment_class.is_scale}
    assert scales["SCALE-01"].today_checked and scales["SCALE-02"].today_checked
    assert (scales["SCALE-01"].equipment.host, scales["SCALE-01"].equipment.port) == ("127.0.0.1", 4305)
    now = timezone.now()
    assert user_qualified(demo_plant["operator"].pk, "SOP-WD-001", now).allowed
    assert user_qualified(demo_plant["operator2"].pk, "SOP-WD-001", now).codes == ["QUALIFICATION_EXPIRED"]
    assert user_qualified(demo_plant["operator2"].pk, "SOP-GRAN-001", now).allowed
    # A second run changes nothing.
    equipment_demo.seed(Site.objects.get(code="demo"), demo_plant, master_of(demo_plant))
    assert Equipment.objects.count() == len(rows)
    assert verify().ok


def test_the_board_and_a_logbook_read_in_a_fixed_number_of_queries(demo_plant) -> None:
    with CaptureQueriesContext(connection) as board_queries:
        sel.board(timezone.now())
    assert len(board_queries) == 1
    unit = Equipment.objects.get(code="PRESS-02")
    with CaptureQueriesContext(connection) as log_queries:
        entries = list(sel.logbook(unit))
        _ = [list(e.corrections.all()) for e in entries]
    assert len(log_queries) == 2


@pytest.mark.req("WD-02", "WD-01")
def test_every_dispensing_of_the_demo_product_fits_one_of_its_simulated_scales(demo_plant) -> None:
    """shared/domain/demo-product.md: 50 kg of paracetamol (about 50.2 kg at 99.6 %) down to 0.2 kg of silica."""
    from decimal import Decimal

    from batchline import units

    scales = list(Equipment.objects.filter(simulated=True).order_by("code"))
    assert [(s.code, s.host, s.port) for s in scales] == [
        ("SCALE-01", "127.0.0.1", 4305),
        ("SCALE-02", "127.0.0.1", 4306),
    ]
    now = timezone.now()
    for kg, percent in (
        ("50.2", "0.5"),
        ("12", "2"),
        ("6", "1"),
        ("1.8", "1"),
        ("1.5", "1"),
        ("0.5", "2"),
        ("0.2", "2"),
    ):
        quantity, tolerance = Decimal(kg), Decimal(kg) * Decimal(percent) / 100
        fitting = [
            s
            for s in scales
            if sel.scale_suitable(code=s.code, target=quantity, unit="kg", now=now).allowed
            # the scale shows steps at least ten times finer than the tolerance allows
            and units.convert(s.readability, s.unit, "kg") * 10 <= tolerance
        ]
        assert fitting, f"{kg} kg ± {percent} % fits no demo scale"
        if quantity >= 5:  # in its drum or bucket: more than the bench scale's 6.2 kg
            assert "SCALE-02" in [s.code for s in fitting], kg
