"""A new plant in Chromium: an engineer sets up a material, a scale and a station on the master-data pages,
a QA approver approves each with a signature, and an operator weighs with them at that station (issue 12)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import transaction
from django.utils import timezone

from batchline.audit.services import Actor, record_create
from batchline.equipment import services as eq
from batchline.equipment.models import Equipment, Site, Station
from batchline.materials.models import Container, LedgerEntry, Material
from tests.configuration.test_configuration import signer
from tests.conftest import PASSWORD, SETUP, configure, make_user
from tests.e2e.test_browser import log_in
from tests.e2e.test_execution_browser import start
from tests.execution.test_engine import effective_recipe, new_batch
from tests.masterdata.test_master_data import approve, request_new
from tests.materials.test_charging import receive

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

RECIPE = """
format: batchline.recipe/1
recipe: {code: LAC-1, name: Lactose blend, product_code: LB, product_name: Lactose blend, batch_size: {quantity: 100, unit: kg}}
operations:
  - key: dispensing
    name: Dispensing
    steps:
      - key: disp_lac
        kind: weigh_dispense
        title: Dispense lactose
        material: {code: LAC-200, quantity: 2, unit: kg, tolerance_percent: 1}
"""


def sign_in_dialog(page, username: str) -> None:
    dialog = page.locator("dialog[open]")
    if dialog.get_by_label("User ID").count():  # the first signing of a session asks for both
        dialog.get_by_label("User ID").fill(username)
    dialog.get_by_label("Password").fill(PASSWORD)
    dialog.get_by_role("button", name="Sign").click()


def field(form, label: str):
    # A label carries its unit ("Shelf life days"); "Name" and "Unit" must not find "Unit code".
    return form.get_by_label(label, exact=label in ("Name", "Unit", "Site", "Class", "Type"))


def request_on_page(page, kind: str, fields: dict[str, str], selects: dict[str, str]) -> None:
    page.goto(f"/master-data/{kind}/")
    page.get_by_test_id("md-new").locator("summary").click()
    form = page.get_by_test_id("md-create")
    for label, value in fields.items():
        field(form, label).fill(value)
    for label, value in selects.items():
        field(form, label).select_option(value)
    form.get_by_label("Reason").fill("new dispensing booth 7, CC-2026-077")
    page.get_by_test_id("md-create-sign").click()
    sign_in_dialog(page, "engineer")
    page.locator("li.success", has_text="requested: a QA approver approves it").wait_for()


def approve_all_on_page(page) -> None:
    page.goto("/master-data/changes/")
    while page.get_by_test_id("md-request").count():
        number = page.get_by_test_id("md-request").first.get_attribute("data-request")
        page.get_by_test_id(f"approve-{number}").click()
        sign_in_dialog(page, "approver")
        page.get_by_text(f"{number} approved").wait_for()


@pytest.mark.req("A11-14", "P11-08", "WD-01", "EQ-01")
def test_a_new_user_sets_up_a_material_a_scale_and_a_station_and_weighs_with_them(page, live_db, sim) -> None:
    people = {
        name: make_user(name, [role])
        for name, role in (
            ("engineer", "administrator"),
            ("approver", "qa_approver"),
            ("author", "recipe_author"),
            ("warehouse", "warehouse"),
            ("supervisor", "supervisor"),
            ("operator", "operator"),
        )
    }
    with transaction.atomic():
        record_create(Site(code="main", name="Main plant", time_zone="Europe/Zurich"), actor=SETUP)
    classes = {
        "code": "bench-scale",
        "name": "Bench scale",
        "is_scale": "yes",
        "calibration_interval_days": "90",
    }
    approve(people["approver"], request_new(people["engineer"], "equipment_class", classes))

    # The engineer requests the material and the scale on the pages, each with a signature.
    log_in(page, "engineer")
    request_on_page(
        page,
        "material",
        {"Item code": "LAC-200", "Name": "Lactose monohydrate", "Shelf life": "1095"},
        {"Type": "excipient", "Unit": "kg"},
    )
    request_on_page(
        page,
        "equipment",
        {
            "Unit code (its barcode)": "SCALE-77",
            "Name": "Bench scale booth 7",
            "Capacity": "6200",
            "Readability (d)": "0.1",
            "Minimum weight": "0.5",
            "Address (host)": "127.0.0.1",
            "Port": str(sim.port),
        },
        {"Site": "main", "Class": "bench-scale", "Unit": "g"},
    )
    assert not Material.objects.filter(code="LAC-200").exists()  # nothing before a second person approves
    page.get_by_role("button", name="Log out").click()
    log_in(page, "approver")
    approve_all_on_page(page)
    assert Equipment.objects.get(code="SCALE-77").capacity == Decimal("6200")

    # The station of booth 7 is this terminal, and it may use the new scale.
    page.get_by_role("button", name="Log out").click()
    log_in(page, "engineer")
    page.goto("/master-data/station/")
    page.get_by_test_id("md-new").locator("summary").click()
    form = page.get_by_test_id("md-create")
    form.get_by_label("Station code", exact=True).fill("BOOTH-77")
    form.get_by_label("Name", exact=True).fill("Booth 7 tablet")
    form.get_by_label("Site", exact=True).select_option("main")
    form.get_by_label("Network address", exact=True).fill("127.0.0.1")
    form.locator("fieldset.md-pick input[value='SCALE-77']").check()
    form.get_by_label("Reason").fill("booth 7 commissioned")
    page.get_by_test_id("md-create-sign").click()
    sign_in_dialog(page, "engineer")
    page.locator("li.success", has_text="requested: a QA approver approves it").wait_for()
    page.get_by_role("button", name="Log out").click()
    log_in(page, "approver")
    approve_all_on_page(page)
    assert Station.objects.get(code="BOOTH-77").devices == ["SCALE-77"]
    page.get_by_role("button", name="Log out").click()

    # What is not master data: the scale's calibration and daily check, a released lot, a batch.
    engineer = Actor.of(people["engineer"], via="web")
    eq.calibration_record(
        actor=engineer,
        code="SCALE-77",
        passed=True,
        next_due=None,
        signer=signer(people["engineer"], "performed"),
    )
    eq.scale_check_record(actor=Actor.of(people["operator"], via="web"), code="SCALE-77", passed=True)
    material = Material.objects.get(code="LAC-200")
    receive(people, material, "LAC-L001", containers=("25",))
    source = Container.objects.get(lot__number="LAC-L001")
    batch = new_batch(people, effective_recipe(people, RECIPE), quantity="100")
    configure(registered_stations_only=True)

    log_in(page, "operator")
    page.goto(f"/batches/{batch.number}/")
    start(page, "disp_lac")
    sim.place("2000.0")
    page.locator("[data-testid=reading]").first.filter(has_text="stable").wait_for()
    page.get_by_label("Source container (scan its label)").fill(source.code)
    page.get_by_test_id("weigh").click()
    page.get_by_text(f"from {source.code}").first.wait_for()
    dispensed = LedgerEntry.objects.get(kind="dispense", quantity__gt=0)
    assert dispensed.device.startswith("SCALE-77 ") and dispensed.station == "BOOTH-77"  # with its serial
    assert Equipment.objects.get(code="SCALE-77").calibration_due_at > timezone.now() + dt.timedelta(days=89)
