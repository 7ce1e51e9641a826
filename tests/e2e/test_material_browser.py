"""The scenario this project exists for, in headless Chromium: a container of an expired lot is scanned."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest

from batchline.materials import services as stock
from batchline.materials.models import Container, LedgerEntry
from tests.e2e.test_browser import log_in
from tests.e2e.test_execution_browser import settle, start
from tests.execution.test_engine import A, new_batch
from tests.materials.test_charging import expire, people_and_recipe, receive

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.req("MAT-02", "P11-06", "WD-05")
def test_an_operator_scans_an_expired_container_is_refused_and_then_charges_good_ones(page, live_db) -> None:
    people, recipe = people_and_recipe()
    material = stock.material_create(
        actor=A(people["warehouse"]), code="PCM", name="Paracetamol", kind="api", unit="kg"
    )
    expired = receive(people, material, "L-0042", containers=("6",))  # C-000001
    expire(expired, dt.timedelta(minutes=90))
    receive(people, material, "L-0043", containers=("12",))  # C-000002
    batch = new_batch(people, recipe, quantity="100")

    log_in(page, "operator")
    page.goto(f"/batches/{batch.number}/")
    start(page, "charge_api")
    ledger = LedgerEntry.objects.count()

    page.get_by_test_id("scan").fill("C-000001")
    page.keyboard.press("Enter")
    refusal = page.get_by_test_id("refusal")
    refusal.wait_for()
    text = refusal.inner_text()
    assert "Lot L-0042 of Paracetamol expired at" in text and "90 minutes ago: it cannot be used." in text
    assert LedgerEntry.objects.count() == ledger
    assert Container.objects.get(code="C-000001").quantity == Decimal(6)

    page.get_by_test_id("scan").fill("C-000002")
    page.keyboard.press("Enter")
    page.locator("[data-testid=charged]").first.filter(has_text=re.compile(r"^10\.1 kg$")).wait_for()
    settle(page)
    assert page.get_by_test_id("refusal").count() == 0
    page.get_by_role("button", name="Complete step").click()
    page.locator("[data-step=charge_api].state-done").wait_for()
    assert Container.objects.get(code="C-000002").quantity == Decimal("1.9")
