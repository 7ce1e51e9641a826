"""An operator executes a batch in headless Chromium, with a second person verifying."""

from __future__ import annotations

from decimal import Decimal

import pytest

from batchline.accounts.models import User
from batchline.audit.services import Actor
from batchline.execution import services as ex
from batchline.execution.models import Batch, BatchException
from batchline.quality.services import exceptions_disposition
from tests.conftest import PASSWORD, make_user
from tests.e2e.test_browser import log_in
from tests.execution.test_engine import effective_recipe, sign
from tests.recipes.test_recipe_services import SMALL

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def released_batch(live_db: None) -> Batch:
    people = {
        name: make_user(name, roles)
        for name, roles in (
            ("author", ["recipe_author"]),
            ("approver", ["qa_approver"]),
            ("supervisor", ["supervisor"]),
            ("operator", ["operator"]),
        )
    }
    # The small recipe without the 4-minute minimum, so the browser need not wait.
    text = SMALL.replace("timer: {min_minutes: 4, max_minutes: 6}", "timer: {max_minutes: 6}")
    recipe = effective_recipe(people, text)
    sup = people["supervisor"]
    batch = ex.batch_create(
        actor=Actor.of(sup, via="web"), recipe=recipe, number="E2E-1", planned_quantity=Decimal(1000)
    )
    return ex.batch_command(actor=Actor.of(sup, via="web"), batch=batch, command="release", signer=sign(sup))


def settle(page) -> None:
    """Wait until htmx has no request in flight, so the next click lands on the panel it means."""
    page.locator(".htmx-request").first.wait_for(state="detached")


def start(page, key: str) -> None:
    settle(page)
    if page.locator(f"[data-step={key}].selected").count() == 0:
        page.locator(f"[data-step={key}]").click()
        page.locator(f"[data-step={key}].selected").wait_for()  # the new panel, not the old one
        settle(page)
    page.get_by_test_id("start").click()
    page.locator(f"[data-step={key}] .step-state", has_text="in progress").wait_for()


@pytest.mark.req("P11-06", "IPC-01", "DI-05", "DV-01", "P11-20", "P11-13")
def test_an_operator_executes_a_batch_with_a_verifier(page, released_batch) -> None:
    log_in(page, "operator")
    page.get_by_role("link", name="Floor").first.click()
    page.get_by_role("link", name="Open").click()
    page.get_by_test_id("step-title").wait_for()

    # Out of order: not offered, with why in words; nothing recorded, not even a refused attempt.
    page.locator("[data-step=weights]").click()
    page.locator("[data-step=weights].selected").wait_for()
    assert page.get_by_test_id("start").is_disabled()
    assert "cannot start before “Dry mix” is complete" in page.get_by_test_id("start-why").inner_text()
    assert not BatchException.objects.exists()

    # Line clearance: checklist and the performer's signature (first of the session: ID and password).
    start(page, "clearance")
    page.get_by_label("Previous product removed").check()
    page.get_by_label("Documents removed").check()
    page.get_by_role("button", name="Complete and sign…").click()
    page.fill("#sign-step-username", "operator")
    page.fill("#sign-step-password", PASSWORD)
    page.keyboard.press("Enter")
    page.locator("[data-step=clearance] .step-state", has_text="complete").wait_for()

    start(page, "mix")
    page.get_by_test_id("complete").click()
    page.locator("[data-step=mix] .step-state", has_text="complete").wait_for()

    # An out-of-limit weight is recorded, shown red, and raises an exception at once.
    start(page, "weights")
    page.fill("#v-w1", "640")
    page.fill("#v-w2", "600")
    page.get_by_test_id("complete").click()
    # Asked before it is recorded: which value, its limits, what recording it does.
    question = page.get_by_test_id("confirm-oos")
    question.wait_for()
    assert "Weight 1 640 mg is outside its specification 570–630 mg" in question.inner_text()
    question.get_by_role("button", name="Record out of specification").click()
    page.get_by_test_id("exceptions").get_by_text(
        "Weight 1 640 mg is outside its specification 570–630 mg."
    ).wait_for()
    page.locator("[data-step=weights]").click()
    assert "out" in (page.locator("table.values tr", has_text="Weight 1").get_attribute("class") or "")

    # A correction: reason and signature (the password alone now); the original stays visible.
    page.get_by_text("Correct a value…").click()
    page.select_option("#c-name", "w1")
    page.fill("#c-text", "600")
    page.fill("#c-reason", "misread the balance")
    page.get_by_role("button", name="Correct and sign…").click()
    assert page.locator("#sign-correct-username").count() == 0
    page.fill("#sign-correct-password", PASSWORD)
    page.keyboard.press("Enter")
    row = page.locator("table.values tr", has_text="Weight 1")
    row.get_by_text("(original)").wait_for()
    assert "640 mg" in row.locator(".original").inner_text() and "600 mg" in row.inner_text()

    # Weight 1 is critical: its exception stopped the batch until QA dispositions it.
    page.locator("[data-step=mean]").click()
    page.locator("[data-step=mean].selected").wait_for()
    settle(page)
    assert page.get_by_test_id("start").is_disabled()
    assert (
        "must be dispositioned by QA before work continues" in page.get_by_test_id("start-why").inner_text()
    )
    approver = User.objects.get(username="approver")
    exceptions_disposition(
        actor=Actor.of(approver, via="web"),
        signer=sign(approver, "approved"),
        exception_ids=[BatchException.objects.get(code="CRITICAL_OUT_OF_SPECIFICATION").pk],
        decision="accepted",
        comment="Balance misread; corrected with reason, true weight within specification.",
    )
    page.get_by_test_id("check-again").click()  # QA decided at another station: the screen asks again
    page.locator("[data-testid=start]:not([disabled])").wait_for()

    # The calculation step waits for a second person, who signs at this station with ID and password.
    start(page, "mean")
    page.get_by_test_id("complete").click()
    page.get_by_role("button", name="Verify…").click()
    page.fill("#sign-verify-username", "supervisor")
    page.fill("#sign-verify-password", PASSWORD)
    page.keyboard.press("Enter")
    page.get_by_test_id("batch-state").filter(has_text="Complete").wait_for()

    # The batch record shows values, the correction with its original, signatures and exceptions.
    page.get_by_role("link", name="Batch record").click()
    record = page.locator("main").inner_text()
    assert "(original, corrected)" in record and "misread the balance" in record
    assert "Supervisor Person — Verified — " in record and "Operator Person — Performed — " in record
    assert "CRITICAL_OUT_OF_SPECIFICATION" in record and "REFUSED_" not in record
    assert "Mean weight (calculated)\t600.00 mg" in record  # computed from the corrected weight
    page.screenshot(path="var/batch-record.png", full_page=True)
