"""PCM-0001, the demo's headline batch, executed in Chromium as the README tells it, to QA release.

The operator works on a tablet in portrait (768x1024): every dispensing on the demo's
simulated scales through the booth's Simulator control, every container's label printed,
every charge and unit scanned into the step's own field, samples and output labelled, the
bulk labels issued, reconciled and examined; the supervisor verifies at the operator's
station and signs the batch off at their own; the reviewer and the approver sign the review
stages and release it. Screenshots of the way are kept as test artefacts.
"""

from __future__ import annotations

import re
import time

import pytest
from django.urls import reverse

from batchline.execution.models import Batch, BatchException, BatchStep
from batchline.materials.models import Lot
from batchline.simulation.scales import serving
from batchline.web.management.commands.demo import seed
from tests.e2e import demo_story as story
from tests.e2e.tablet import PORTRAIT, keep_screenshot
from tests.e2e.test_browser import log_in
from tests.execution.test_engine import age

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

BATCH_URL = f"/batches/{story.BATCH}/"


def settle(page) -> None:
    """No htmx request in flight: the next action lands on the panel it means."""
    page.locator(".htmx-request").first.wait_for(state="detached")


def state_of(key: str) -> str:
    return BatchStep.objects.get(batch__number=story.BATCH, key=key).state


def until(what, timeout: float = 15.0) -> None:
    """Wait until ``what()`` holds (the database, read beside the browser), or fail saying what."""
    end = time.monotonic() + timeout
    while not what():
        if time.monotonic() > end:
            raise AssertionError(f"still not so after {timeout} s: {what.__doc__ or what}")
        time.sleep(0.1)


def show(page, key: str) -> None:
    page.goto(f"{BATCH_URL}?step={key}")
    page.locator(f"[data-current={key}]").wait_for()
    settle(page)


def sign(page, button, username: str) -> None:
    """Press the button that opens a signing dialog and sign as ``username`` (the user ID when asked)."""
    button.click()
    dialog = page.locator("dialog[open]")
    user_id = dialog.locator("input[name=signer_username]")
    if user_id.count() and user_id.is_visible() and not user_id.input_value():
        user_id.fill(username)
    dialog.locator("input[name=signer_password]").fill(story.PASSWORD)
    page.keyboard.press("Enter")


def print_labels(page, buttons) -> None:
    """Print each label (the PDF opens in a tab of its own, closed again); the prints are logged."""
    for i in range(buttons.count()):
        with page.expect_popup() as label:
            buttons.nth(i).click()
        label.value.close()


def scan(page, key: str, code: str) -> None:
    field = page.locator(f"#scan-{key}")
    field.fill(code)
    field.press("Enter")
    settle(page)


def weigh(page, key: str) -> None:
    material, scale, load, _unit = story.WEIGHINGS[key]
    lot = Lot.objects.get(number=story.SOURCE_LOTS[material])
    proposed = page.get_by_test_id("fefo").locator("strong").first
    proposed.wait_for()
    assert proposed.inner_text() in set(lot.containers.values_list("code", flat=True)), proposed.inner_text()
    # The operator pours onto the pan: on the demo's simulated scale, the Simulator control says how much.
    page.locator("#sim-scale").select_option(scale)
    page.locator("#sim-load").fill(load)
    page.get_by_role("button", name="Place on the scale").click()
    page.get_by_test_id("simulator-result").filter(has_text="placed on the pan").wait_for()
    page.locator("#d-scale").select_option(scale)
    page.locator("#d-source").fill(proposed.inner_text())
    page.get_by_test_id("weigh").click()
    page.get_by_role("button", name="Print its label").wait_for()
    settle(page)
    print_labels(page, page.get_by_role("button", name="Print its label"))


SHOTS = ("disp_api", "charge_api", "blend_lubricant", "blend_sample", "compression_end", "label_bulk")


def run_step(page, key: str, kind: str) -> None:
    """One step of PCM-0001 at the operator's tablet, from start to done (or waiting for its verifier)."""
    show(page, key)
    page.get_by_test_id("start").click()
    until(lambda: state_of(key) == "running")
    show(page, key)
    if key in SHOTS:  # the step at hand, as the operator sees it when it opens
        keep_screenshot(page, f"demo-story-{key}-portrait")
    if kind == "weigh_dispense":
        weigh(page, key)
    elif kind == "equipment_id":
        scan(page, key, story.UNITS[key])
    elif key == "take_drums":
        scan(page, key, Lot.objects.get(number=story.PACKAGING_LOT).containers.get().code)
    elif kind == "material_charge":
        for code in page.get_by_test_id("to-charge").locator("strong").all_inner_texts():
            scan(page, key, code)
    elif kind == "timer":
        age(BatchStep.objects.get(batch__number=story.BATCH, key=key), story.TIMERS[key])
        if key == "drying_hold":  # the dryer's controller reports through the gateway
            story.dryer_reads(key)
    elif kind == "data_entry":
        if key == "lod":  # loss on drying from the dryer's moisture analyser: the operator takes it
            story.moisture_reads()
            page.get_by_test_id("live-value").wait_for()
            page.get_by_test_id("take-reading-lod_pct").click()
            page.get_by_test_id("device-inputs").wait_for(state="detached")
            settle(page)
        for name, value in story.ENTRIES[key].items():
            page.locator(f"#v-{name}").fill(value)
    elif kind == "checklist":
        for box in page.locator("#complete-form input[type=checkbox]").all():
            box.check()
    elif kind == "sampling":
        sources = {"blend_sample": "BLEND-01"}
        for position in story.POSITIONS if key == "blend_sample" else [None]:
            if key == "release_sample":
                sources[key] = Lot.objects.get(number=story.BATCH).containers.order_by("-code").first().code
            page.locator("#smp-source").fill(sources[key])
            page.locator("#smp-qty").fill("1.8" if key == "blend_sample" else "120")
            if position:
                page.locator("#smp-pos").select_option(position)
            page.get_by_test_id("take-sample").click()
            settle(page)
        print_labels(page, page.get_by_test_id("sample-label"))
        if key == "blend_sample":  # the step waits for the laboratory: the LIMS answers, the page shows it
            story.laboratory_answers([f"{story.BATCH}-S{n:02d}" for n in range(1, 11)])
            page.reload()
            settle(page)
    elif kind == "produce":
        for count in story.DRUMS:
            page.locator("#out-qty").fill(count)
            page.get_by_test_id("record-output").click()
            settle(page)
        print_labels(page, page.get_by_test_id("output-label"))
    elif kind == "labelling":
        page.locator("#lbl-issued").fill(story.LABELS["issued"])
        page.get_by_test_id("issue-labels").click()
        page.get_by_test_id("specimen").wait_for()
        for field in ("applied", "destroyed", "returned"):
            page.locator(f"#lbl-{field}").fill(story.LABELS[field])
        page.get_by_test_id("reconcile-labels").click()
        page.get_by_test_id("reconciliation").wait_for()
        for item in range(story.EXAMINATION):
            page.locator(f"input[name=item_{item}][value=pass]").check()
        page.locator("#exam-units").fill("4")
        page.get_by_test_id("examine-labels").click()
        page.get_by_test_id("examination").wait_for()
    if kind == "timer":
        show(page, key)  # the timer has run its minimum: the screen offers Complete
    settle(page)
    if key in story.SIGNS:
        sign(page, page.get_by_test_id("complete-sign"), "operator")
    else:
        page.get_by_test_id("complete").click()
    until(lambda: state_of(key) in ("done", "awaiting_verification"))
    if key in story.VERIFIED:
        # The supervisor verifies at the operator's station, with their own user ID and password.
        show(page, key)
        sign(page, page.get_by_role("button", name="Verify…"), "supervisor")
        until(lambda: state_of(key) == "done")


def sign_stage(page, stage_label: str, username: str) -> None:
    page.goto(reverse("review", args=[story.BATCH]))
    page.get_by_test_id("next-stage").filter(has_text=stage_label).wait_for()
    sign(page, page.get_by_role("button", name=re.compile(f"Sign the {stage_label}", re.I)), username)
    page.locator("[data-stage]").filter(has_text=re.compile(stage_label, re.I)).wait_for()


@pytest.mark.req("S88-05", "WD-01", "WD-05", "WD-07", "WD-08", "EQ-01", "GEN-01", "IPC-01", "LBL-02")
@pytest.mark.req("LBL-03", "YLD-01", "RBE-03", "RBE-06", "RBE-07", "BR-01", "NFR-06", "P11-13")
def test_the_demo_batch_runs_in_chromium_from_dispensing_to_qa_release(
    browser, live_server, page, monkeypatch
):
    story.demo_scales_on_free_ports(monkeypatch)
    seed()
    page.set_viewport_size(PORTRAIT)
    log_in(page, "operator", story.PASSWORD)
    steps = list(
        BatchStep.objects.filter(batch__number=story.BATCH).order_by("seq").values_list("key", "kind")
    )
    with serving(report=lambda line: None):
        for key, kind in steps:
            if key == "batch_signoff":
                continue
            run_step(page, key, kind)

    # The supervisor signs the batch off at their own station, then signs the production review.
    office = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 800})
    desk = office.new_page()
    log_in(desk, "supervisor", story.PASSWORD)
    show(desk, "batch_signoff")
    desk.get_by_test_id("start").click()
    until(lambda: state_of("batch_signoff") == "running")
    show(desk, "batch_signoff")
    sign(desk, desk.get_by_test_id("complete-sign"), "supervisor")
    until(lambda: Batch.objects.get(number=story.BATCH).state == "complete")
    assert not BatchException.objects.filter(batch__number=story.BATCH).exists()
    sign_stage(desk, "production review", "supervisor")
    for username, stage in (("reviewer", "QA review"), ("approver", "release")):
        desk.context.clear_cookies()
        log_in(desk, username, story.PASSWORD)
        sign_stage(desk, stage, username)
    until(lambda: Batch.objects.get(number=story.BATCH).state == "qa_released")
    keep_screenshot(desk, "demo-story-released-landscape")
    desk.goto(reverse("batch_record", args=[story.BATCH]))
    record = desk.locator("main").inner_text()
    for needle in ("BOOTH-01", "GRAN-01", "PCM-L0101", f"{story.BATCH}-S01", "Label matches the specimen"):
        assert needle in record, needle
    assert Lot.objects.get(number=story.BATCH, produced_by_batch=story.BATCH).status == "released"
    office.close()
