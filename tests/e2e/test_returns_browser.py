"""What is left of a dispensed container, returned to stock and wasted from the execution screen in Chromium."""

from __future__ import annotations

from decimal import Decimal

import pytest

from batchline.materials.models import Container, LedgerEntry
from batchline.signatures.models import Signature
from tests.conftest import PASSWORD
from tests.e2e.test_browser import log_in
from tests.e2e.test_execution_browser import settle

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.req("WD-12", "YLD-03", "P11-13")
def test_an_operator_returns_part_of_a_remainder_on_the_scale_and_wastes_the_rest(page, live_db, sim) -> None:
    from tests.execution.test_engine import new_batch
    from tests.execution.test_returns import dispense_and_charge_part, make_plant

    people, recipe = make_plant(sim)
    batch = new_batch(people, recipe, quantity="100")
    dispense_and_charge_part(people, batch, sim)  # C-000003 holds 0.1953 kg
    log_in(page, "operator")
    page.goto(f"/batches/{batch.number}/")
    panel = page.get_by_test_id("remainders")
    panel.get_by_text("still holds").wait_for()
    assert "0.1953 kg" in panel.get_by_test_id("holds-C-000003").inner_text()

    # Weighed on the simulated bench scale: 150 g came back, less than the ledger's 195.3 g.
    sim.place("150.0")
    panel.get_by_text("Return to stock").first.click()
    panel.get_by_label("Put it at (location)").fill("WH-B-03")
    panel.get_by_label("Quantity").first.select_option("SCALE-01")
    panel.get_by_test_id("return-submit-C-000003").click()
    refusal = page.get_by_test_id("remainder-refusal")
    refusal.wait_for()
    assert "say why not all of it" in refusal.inner_text()
    assert not Container.objects.filter(returned_from=batch.number).exists()
    panel = page.get_by_test_id("remainders")
    panel.get_by_text("Return to stock").first.click()
    panel.get_by_label("Put it at (location)").fill("WH-B-03")
    panel.get_by_label("Quantity").first.select_option("SCALE-01")
    panel.get_by_label("Reason, if less than all of it comes back").fill("powder left in the scoop")
    panel.get_by_test_id("return-submit-C-000003").click()
    page.get_by_test_id("remainder-done").filter(has_text="went back to stock in C-000004").wait_for()
    assert Container.objects.get(code="C-000004").quantity == Decimal("0.15")
    assert page.get_by_test_id("returned-C-000004").is_visible()

    # The rest to waste, with the operator's signature.
    panel = page.get_by_test_id("remainders")
    panel.get_by_text("Waste…", exact=True).click()
    panel.get_by_label("Reason").last.fill("powder left in the scoop")
    panel.get_by_role("button", name="Waste and sign…").click()
    page.locator("dialog[open] input[name=signer_username]").fill("operator")  # the session's first signing
    page.locator("dialog[open] input[name=signer_password]").fill(PASSWORD)
    page.keyboard.press("Enter")
    page.get_by_test_id("remainder-done").filter(has_text="went to waste, signed").wait_for()
    settle(page)
    assert Container.objects.get(code="C-000003").quantity == 0
    wasted = LedgerEntry.objects.get(kind="destroy")
    assert wasted.quantity == Decimal("-0.0453")
    assert Signature.objects.filter(record_type="materials.ledgerentry", record_id=str(wasted.pk)).exists()
    assert page.get_by_test_id("remainders").get_by_text("still holds").count() == 0
