"""Review by exception of a long run in headless Chromium (issue 11): the OOS first, a dozen slips folded,
a group dispositioned with one signature, and the checklist and the worklist agreeing afterwards."""

from __future__ import annotations

import re

import pytest

from batchline.execution.models import ExceptionDisposition
from batchline.signatures.models import Signature
from tests.e2e.test_review_browser import as_user, done, sign_with
from tests.quality.scenario import review_plant, run_batch

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def worklist_row(page) -> tuple[int, str]:
    page.goto("/quality/")
    row = page.locator("[data-batch=B-1]")
    return int(row.get_by_test_id("open-exceptions").inner_text()), row.inner_text()


def open_on_page(page) -> int:
    return int(re.match(r"(\d+) of", page.get_by_test_id("exception-count").inner_text()).group(1))


def checklist(page, code: str) -> str:
    return page.get_by_test_id("checklist").locator(f"[data-check={code}]").get_attribute("data-answer")


@pytest.mark.req("RBE-02", "RBE-03", "DEV-04", "P11-13", "P11-19", "DI-06")
def test_a_reviewer_reads_the_oos_first_and_dispositions_the_folded_slips_with_one_signature(
    page, live_db, tmp_path
) -> None:
    people, recipe = review_plant(lubricant=True)
    # 640 mg (critical OOS), the lubricant never charged (reconciliation), two hand-typed weights, and
    # the operator's slips: 7 starts out of order, 5 uses of the expired lot refused (4 scans, 1 weighing).
    run_batch(people, recipe, "B-1", out_of_order=7, wrong_scans=4)

    as_user(page, "reviewer")
    listed, row = worklist_row(page)
    assert listed == 16 and "All exceptions dispositioned: no (16 exceptions open)" in row
    page.locator("[data-batch=B-1]").get_by_role("link", name="Review").click()

    # The real result first; the slips folded into one line per kind, out of sight until opened.
    exceptions = page.get_by_test_id("exceptions")
    first = exceptions.locator("tr[data-code]").first
    assert first.get_attribute("data-code") == "CRITICAL_OUT_OF_SPECIFICATION" and first.is_visible()
    assert "sev-critical" in first.get_attribute("class")
    assert page.get_by_test_id("refused-summary").inner_text() == (
        "12 refused attempts: 7 out-of-sequence attempts, 5 materials refused"
    )
    slips = exceptions.locator("tr[data-code^=REFUSED_]")
    assert slips.count() == 12 and not any(s.is_visible() for s in slips.all())
    sequence = exceptions.locator("details[data-group=refusedout-of-sequence-attempt]")
    sequence.locator("summary").click()  # the details, one click away
    assert sequence.locator("tr[data-code]").first.is_visible()
    assert "sev-low" in sequence.locator("tr[data-code]").first.get_attribute("class")
    page.screenshot(path=str(tmp_path / "review-triage.png"), full_page=True)

    # Both groups of slips chosen with their group's box, signed once.
    for group in ("refusedout-of-sequence-attempt", "refusedmaterial-condition-failed"):
        exceptions.locator(f"input[data-choose={group}]").check()
    assert page.locator("[data-chosen-count]").inner_text() == "12 chosen"
    assert exceptions.locator("input[name=exception]:checked").count() == 12
    page.get_by_label("Comment: what was assessed and why").fill(
        "Refused by their gates as they happened: nothing out of order or expired reached the batch."
    )
    sign_with(page, "Sign the disposition of the chosen exceptions…", "reviewer")
    done(page, "12 exceptions dispositioned")
    assert ExceptionDisposition.objects.count() == 12
    assert Signature.objects.filter(record_type="execution.exceptiondisposition").count() == 12

    # The page, its checklist and the worklist say the same: four open, the limits not met.
    assert open_on_page(page) == 4 and checklist(page, "EXCEPTIONS") == "no"
    assert "(4 exceptions open)" in page.get_by_test_id("checklist").inner_text()
    assert checklist(page, "LIMITS") == "no"  # the lubricant's reconciliation waits for QA
    assert "0.5 kg unaccounted" in page.get_by_test_id("checklist").inner_text()
    listed, row = worklist_row(page)
    assert listed == 4 and "All exceptions dispositioned: no (4 exceptions open)" in row

    # Everything else chosen at once and signed (the password alone now): the limits accepted by QA.
    page.goto("/batches/B-1/review/")
    page.get_by_test_id("exceptions").locator("input[data-choose=all]").check()
    assert page.locator("[data-chosen-count]").inner_text() == "4 chosen"
    page.get_by_label("Comment: what was assessed and why").fill("Assessed: see the batch file.")
    sign_with(page, "Sign the disposition of the chosen exceptions…", "reviewer")
    done(page, "4 exceptions dispositioned")
    assert open_on_page(page) == 0 and checklist(page, "EXCEPTIONS") == "yes"
    assert checklist(page, "LIMITS") == "accepted" and checklist(page, "GENEALOGY") == "no"
    listed, row = worklist_row(page)
    assert listed == 0 and "All exceptions dispositioned" not in row
    assert "Genealogy balanced: no (1 container not accounted for)" in row
