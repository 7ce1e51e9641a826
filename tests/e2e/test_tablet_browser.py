"""The operator's screen on a 10-inch tablet, in portrait (768x1024) and landscape (1280x800) (issue 11).

Operators wear gloves and scan with a keyboard-wedge scanner; a supervisor
verifies at the operator's station. Each test measures what Chromium lays out
(the page's width, every control's size, where the step being worked on
sits) and keeps a screenshot under ``$BATCHLINE_ARTEFACTS`` (tests/e2e/tablet.py).
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.db import transaction
from django.utils import timezone

from batchline.audit.models import AuditEntry
from batchline.audit.services import Actor, record_create, record_update
from batchline.equipment import services as eq
from batchline.equipment.models import Site
from batchline.execution import services as ex
from batchline.execution.models import Batch, BatchException, BatchStep, StepValue
from tests.conftest import PASSWORD, make_user
from tests.e2e.tablet import VIEWPORTS, keep_screenshot, measure, small_targets
from tests.e2e.test_browser import log_in
from tests.execution.test_engine import effective_recipe, sign

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

RECIPE = """
format: batchline.recipe/1
recipe: {code: TAB-1, name: Tablet screen test, product_code: TAB, product_name: Tablet screen tablets 100 mg, batch_size: {quantity: 1000, unit: tablet}}
operations:
  - key: prep
    name: Preparation
    steps:
      - {key: gowning, kind: instruction, title: Gown for the suite}
      - {key: documents, kind: instruction, title: Fetch the batch documents}
      - {key: labels, kind: instruction, title: Check the status labels}
      - key: clearance
        kind: checklist
        title: Line clearance
        checklist: [Previous product removed, Documents removed]
        signs: true
        verify: true
  - key: granulation
    name: Granulation
    steps:
      - key: granulator
        kind: equipment_id
        title: Identify the granulator
        equipment_class: GRAN
        after: [clearance]
      - key: binder
        kind: timer
        title: Prepare the binder
        timer: {min_minutes: 4, max_minutes: 10}
        after: [clearance]
      - key: weights
        kind: data_entry
        title: Tablet weights
        after: [granulator, binder]
        inputs:
          - {name: w1, label: Weight 1, unit: mg, target: 600, plausible: {low: 300, high: 900}, specification: {low: 570, high: 630}, critical: true}
"""


def A(user):
    return Actor.of(user, via="web")


@pytest.fixture
def plant(live_db: None):
    people = {
        name: make_user(name, roles)
        for name, roles in (
            ("author", ["recipe_author"]),
            ("approver", ["qa_approver"]),
            ("supervisor", ["supervisor"]),
            ("operator", ["operator"]),
            ("engineer", ["administrator"]),
            ("auditor", ["auditor"]),
        )
    }
    recipe = effective_recipe(people, RECIPE)
    engineer = A(people["engineer"])
    with transaction.atomic():
        site = record_create(Site(code="zh1", name="Plant 1", time_zone="Europe/Zurich"), actor=engineer)
    gran = eq.equipment_class_create(actor=engineer, code="GRAN", name="Granulator", clean_hold_hours=72)
    eq.equipment_create(actor=engineer, site=site, code="GRAN-01", name="Granulator 1", equipment_class=gran)
    eq.cleaning_start(actor=A(people["operator"]), code="GRAN-01")
    eq.cleaning_end(actor=A(people["operator"]), code="GRAN-01")
    sup = people["supervisor"]
    batch = ex.batch_create(actor=A(sup), recipe=recipe, number="TAB-0001", planned_quantity=Decimal(1000))
    batch = ex.batch_command(actor=A(sup), batch=batch, command="release", signer=sign(sup))
    return people, batch


def begin(people, batch, key, who="operator"):
    return ex.step_start(actor=A(people[who]), user=people[who], batch=batch, step_key=key)


def run(people, batch, key, who="operator", **kw):
    user = people[who]
    ex.step_start(actor=A(user), user=user, batch=batch, step_key=key)
    return ex.step_complete(actor=A(user), user=user, batch=batch, step_key=key, **kw)


def to_granulation(people, batch) -> None:
    """Preparation done: the line cleared, signed and verified."""
    for key in ("gowning", "documents", "labels"):
        run(people, batch, key)
    run(people, batch, "clearance", checklist=[True, True], signer=sign(people["operator"]))
    sup = people["supervisor"]
    ex.step_verify(actor=A(sup), user=sup, batch=batch, step_key="clearance", signer=sign(sup, "verified"))


def to_weights(people, batch) -> None:
    """The granulator identified and the binder prepared: the weights are being taken."""
    user = people["operator"]
    ex.step_start(actor=A(user), user=user, batch=batch, step_key="granulator")
    ex.step_scan(actor=A(user), user=user, batch=batch, step_key="granulator", scan="GRAN-01")
    ex.step_complete(actor=A(user), user=user, batch=batch, step_key="granulator")
    ex.step_start(actor=A(user), user=user, batch=batch, step_key="binder")
    age(batch, "binder", 5)
    ex.step_complete(actor=A(user), user=user, batch=batch, step_key="binder")
    ex.step_start(actor=A(user), user=user, batch=batch, step_key="weights")


def age(batch, key: str, minutes: int) -> None:
    """Let ``minutes`` pass on a running step (through the audited service: the clock cannot be wound)."""
    step = BatchStep.objects.get(batch=batch, key=key)
    with transaction.atomic():
        record_update(
            step,
            actor=Actor(None, "test-clock", "Test clock", "system"),
            values={"started_at": timezone.now() - dt.timedelta(minutes=minutes)},
        )


def settle(page) -> None:
    page.locator(".htmx-request").first.wait_for(state="detached")


def open_batch(page, who: str, viewport: str, step: str = "") -> None:
    page.set_viewport_size(VIEWPORTS[viewport])
    log_in(page, who)
    page.goto(f"/batches/TAB-0001/{'?step=' + step if step else ''}")
    page.get_by_test_id("current-step").wait_for()


def assert_fits_a_gloved_finger(page) -> dict:
    layout = measure(page)
    assert layout["scroll_width"] <= layout["viewport_width"], layout["scroll_width"]
    assert not small_targets(layout), small_targets(layout)
    return layout


@pytest.mark.req("DI-03", "S88-02", "P11-06")
@pytest.mark.parametrize("viewport", ["portrait", "landscape"])
def test_the_operator_sees_the_step_at_hand_first_with_targets_for_gloves_and_no_sideways_scroll(
    page, plant, viewport
) -> None:
    people, batch = plant
    to_granulation(people, batch)
    begin(people, batch, "granulator")
    open_batch(page, "operator", viewport)

    layout = assert_fits_a_gloved_finger(page)
    assert page.get_by_test_id("step-title").inner_text() == "Identify the granulator"
    # The step at hand is in view as the page opens, without scrolling, above the list of steps.
    assert layout["scroll_y"] == 0 and layout["current_title_bottom"] < layout["viewport_height"]
    title_top = page.get_by_test_id("current-step").bounding_box()["y"]
    if viewport == "portrait":  # one column: the work first, the list after it
        assert title_top < page.locator("nav.steps").bounding_box()["y"]
    # Completed steps are folded, the one completed last in view; one tap unfolds the rest.
    folded = page.get_by_test_id("done-steps")
    assert folded.locator("summary").inner_text() == "3 completed steps"
    assert not page.locator("[data-step=gowning]").is_visible()
    assert page.locator("[data-step=clearance]").is_visible()
    # What can start now is said, beside the step at hand.
    assert page.get_by_test_id("ready-now").get_by_role("link", name="Prepare the binder").is_visible()
    assert "can start now" in page.locator("[data-step=binder]").inner_text()
    keep_screenshot(page, f"execution-operator-{viewport}")
    folded.locator("summary").click()
    page.locator("[data-step=gowning]").wait_for()
    assert_fits_a_gloved_finger(page)


@pytest.mark.req("DV-01", "P11-20", "LC-01", "P11-13")
@pytest.mark.parametrize("viewport", ["portrait", "landscape"])
def test_the_verifier_sees_what_was_ticked_by_whom_and_when_before_signing_at_the_station(
    page, plant, viewport
) -> None:
    people, batch = plant
    for key in ("gowning", "documents", "labels"):
        run(people, batch, key)
    run(people, batch, "clearance", checklist=[True, True], signer=sign(people["operator"]))
    open_batch(page, "operator", viewport)

    done = page.get_by_test_id("what-was-done")
    text = done.inner_text()
    completed = BatchStep.objects.get(batch=batch, key="clearance").completed_at
    at = completed.astimezone(ZoneInfo("Europe/Zurich")).strftime("%H:%M:%S %Z")  # the site's zone
    for item in ("Previous product removed", "Documents removed"):
        assert f"✓ {item} — confirmed by Operator Person, {at}" in text
    assert_fits_a_gloved_finger(page)
    keep_screenshot(page, f"verify-supervisor-{viewport}")
    page.get_by_role("button", name="Verify…").click()
    page.locator("#sign-verify-username").fill("supervisor")
    page.locator("#sign-verify-password").fill(PASSWORD)
    page.keyboard.press("Enter")
    page.locator("[data-step=clearance].state-done").wait_for()


@pytest.mark.req("P11-19", "P11-18", "LC-01")
def test_a_refused_signing_reopens_with_what_was_typed_and_says_why_in_the_dialog(page, plant) -> None:
    people, batch = plant
    for key in ("gowning", "documents", "labels"):
        run(people, batch, key)
    begin(people, batch, "clearance")
    open_batch(page, "operator", "portrait")

    page.get_by_label("Previous product removed").check()  # one of two
    page.get_by_role("button", name="Complete and sign…").click()
    page.locator("#sign-step-username").fill("operator")
    page.locator("#sign-step-password").fill(PASSWORD)
    page.locator("#sign-step-comment").fill("both checked with the shift lead")
    page.keyboard.press("Enter")
    dialog = page.locator("dialog#sign-step[open]")
    dialog.get_by_test_id("dialog-refusal").wait_for()
    assert "Confirm every item of the checklist." in dialog.inner_text()
    assert page.locator("#sign-step-username").input_value() == "operator"
    assert page.locator("#sign-step-comment").input_value() == "both checked with the shift lead"
    assert page.locator("#sign-step-password").input_value() == ""
    assert 'value="correct-horse' not in page.content()
    assert page.get_by_label("Previous product removed").is_checked()
    keep_screenshot(page, "refused-signing-portrait")

    dialog.get_by_role("button", name="Cancel").click()
    page.get_by_label("Documents removed").check()
    page.get_by_role("button", name="Complete and sign…").click()
    page.locator("#sign-step-password").fill(PASSWORD)
    page.keyboard.press("Enter")
    page.locator("[data-step=clearance] .step-state", has_text="waiting for verification").wait_for()
    assert BatchStep.objects.get(batch=batch, key="clearance").state == "awaiting_verification"


@pytest.mark.req("IPC-01", "A11D-05", "DI-05")
@pytest.mark.parametrize("viewport", ["portrait", "landscape"])
def test_a_value_outside_its_specification_is_recorded_only_once_the_operator_confirms_it(
    page, plant, viewport
) -> None:
    people, batch = plant
    to_granulation(people, batch)
    to_weights(people, batch)
    open_batch(page, "operator", viewport)
    entries_before = AuditEntry.objects.count()  # after the login's own entry

    page.locator("#v-w1").fill("640")
    page.get_by_test_id("complete").click()
    question = page.get_by_test_id("confirm-oos")
    question.wait_for()
    assert (
        "Weight 1 640 mg is outside its specification 570–630 mg: recorded, it raises an exception for QA "
        "and, as a critical value, stops the batch until QA dispositions it." in question.inner_text()
    )
    # Asked, not refused: nothing written, nothing for QA, the value still in its field.
    assert AuditEntry.objects.count() == entries_before
    assert not StepValue.objects.filter(step__batch=batch, name="w1").exists()
    assert not BatchException.objects.filter(batch=batch, code__contains="SPECIFICATION").exists()
    assert page.locator("#v-w1").input_value() == "640"
    assert_fits_a_gloved_finger(page)
    keep_screenshot(page, f"confirm-out-of-specification-{viewport}")

    page.get_by_test_id("confirm-oos-record").click()
    page.locator("[data-step=weights] .step-state", has_text="complete").wait_for()
    value = StepValue.objects.get(step__batch=batch, name="w1")
    assert (value.text, value.in_specification) == ("640", False)
    assert BatchException.objects.filter(batch=batch, code="CRITICAL_OUT_OF_SPECIFICATION").count() == 1


@pytest.mark.req("S88-02", "EQ-05", "P11-06")
def test_parallel_steps_keep_their_own_panels_and_a_scan_goes_to_the_step_it_was_typed_for(
    page, plant
) -> None:
    people, batch = plant
    to_granulation(people, batch)
    begin(people, batch, "granulator")
    open_batch(page, "operator", "portrait", step="binder")

    page.get_by_test_id("start").click()  # the binder: the step started is the step shown
    page.locator("[data-current=binder] .badge", has_text="in progress").wait_for()
    assert page.get_by_test_id("step-title").inner_text() == "Prepare the binder"
    others = page.get_by_test_id("others-running")
    assert "Identify the granulator" in others.inner_text()
    keep_screenshot(page, "parallel-steps-portrait")
    # The granulator's own scan field, under "Also in progress", takes the tag for the granulator.
    field = page.get_by_test_id("scan-granulator")
    field.fill("GRAN-01")
    field.press("Enter")
    page.locator("[data-current=granulator]").wait_for()
    page.get_by_test_id("values").get_by_role("cell", name="GRAN-01 Granulator 1").wait_for()
    assert page.get_by_test_id("refusal").count() == 0
    assert StepValue.objects.filter(step__batch=batch, step__key="granulator").count() == 1
    # The step code field opens a step; anything else is answered with where to scan it.
    page.get_by_test_id("find-step").fill("GRAN-02")
    page.get_by_test_id("find-step").press("Enter")
    refusal = page.get_by_test_id("refusal")
    refusal.wait_for()
    assert "'GRAN-02' is not the code of a step of batch TAB-0001." in refusal.inner_text()


@pytest.mark.req("IPC-05", "NFR-02", "DI-03")
def test_a_timed_step_counts_from_the_servers_start_time_and_waits_for_its_minimum(page, plant) -> None:
    people, batch = plant
    to_granulation(people, batch)
    begin(people, batch, "binder")
    open_batch(page, "operator", "landscape", step="binder")

    timer = page.get_by_test_id("timer-binder")
    page.locator("[data-testid=timer-binder][data-state=wait]").wait_for()
    assert "Minimum 4 min: reached in" in timer.inner_text()
    assert page.get_by_test_id("complete").is_disabled()
    keep_screenshot(page, "timer-waiting-landscape")

    age(batch, "binder", 5)  # the server's record moves; the page counts from it
    page.reload()
    page.locator("[data-testid=timer-binder][data-state=ok]").wait_for()
    assert "Minimum 4 min reached; maximum 10 min in" in timer.inner_text()
    assert page.get_by_test_id("complete").is_enabled()

    age(batch, "binder", 11)
    page.reload()
    page.locator("[data-testid=timer-binder][data-state=over]").wait_for()
    assert "Maximum 10 min exceeded by 1 min" in timer.inner_text()
    keep_screenshot(page, "timer-exceeded-landscape")
    # Nothing of the page's clock is recorded: completing records the server's time.
    page.get_by_test_id("complete").click()
    page.locator("[data-step=binder] .step-state", has_text="complete").wait_for()
    assert BatchException.objects.filter(batch=batch, code="DURATION_EXCEEDED").count() == 1


@pytest.mark.req("S88-05", "P11-06")
@pytest.mark.parametrize("viewport", ["portrait", "landscape"])
def test_the_supervisor_is_offered_only_the_commands_the_batch_state_allows(page, plant, viewport) -> None:
    people, batch = plant
    run(people, batch, "gowning")  # running now
    open_batch(page, "supervisor", viewport)

    commands = page.get_by_test_id("batch-commands")
    offered = [b.get_attribute("data-command") for b in commands.locator("button[data-command]").all()]
    assert offered == ["hold", "abort"]
    assert commands.get_by_test_id("commands-not-now").inner_text() == (
        "Not now: release (a batch that is created); resume (a batch that is held)."
    )
    # A step that is the operator's to do is not offered to the supervisor, with why.
    assert page.get_by_test_id("start").is_disabled()
    assert "done by the operator role, which you do not have" in page.get_by_test_id("start-why").inner_text()
    assert_fits_a_gloved_finger(page)
    keep_screenshot(page, f"execution-supervisor-{viewport}")


@pytest.mark.req("P11-05", "NFR-02", "DI-07")
@pytest.mark.parametrize("viewport", ["portrait", "landscape"])
def test_the_audit_trail_record_and_review_pages_fit_the_screen_and_the_menu_one_line_in_landscape(
    page, plant, viewport
) -> None:
    people, batch = plant
    qa = make_user("qa", ["qa_reviewer"])
    to_granulation(people, batch)
    to_weights(people, batch)
    user = people["operator"]
    ex.step_complete(actor=A(user), user=user, batch=batch, step_key="weights", entries={"w1": "601"})
    assert Batch.objects.get(pk=batch.pk).state == "complete"
    page.set_viewport_size(VIEWPORTS[viewport])
    log_in(page, qa.username)
    page.goto("/audit/")
    layout = measure(page)
    assert layout["scroll_width"] <= layout["viewport_width"], layout["scroll_width"]
    if viewport == "landscape":  # the menu on one line, every QA page in it in view
        assert layout["menu_rows"] == 1 and not layout["menu_overflows"]
    assert re.search(r"\d\d:\d\d:\d\d CES?T", page.get_by_test_id("audit-entries").inner_text())
    keep_screenshot(page, f"audit-trail-qa-{viewport}")

    page.goto("/batches/TAB-0001/record/")
    layout = measure(page)
    assert layout["scroll_width"] <= layout["viewport_width"]
    assert "Times in Europe/Zurich" in page.locator("main").inner_text()
    keep_screenshot(page, f"batch-record-qa-{viewport}")
    page.goto("/batches/TAB-0001/review/")
    layout = measure(page)
    assert layout["scroll_width"] <= layout["viewport_width"]
    keep_screenshot(page, f"review-qa-{viewport}")
