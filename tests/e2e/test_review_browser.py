"""Review by exception in headless Chromium (issue 5): three exceptions and a deviation, reviewed in stages
and released; a second batch held back from release by an open deviation, the page saying why."""

from __future__ import annotations

import pytest

from batchline.execution.models import Batch, BatchException
from batchline.quality import services as quality
from batchline.quality.models import Deviation
from tests.conftest import PASSWORD
from tests.e2e.test_browser import log_in
from tests.execution.test_engine import A, sign
from tests.quality.scenario import review_plant, run_batch

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def as_user(page, username: str) -> None:
    page.context.clear_cookies()
    log_in(page, username)


def sign_with(page, button: str, username: str) -> None:
    """Open the signing dialog with ``button`` and sign: user ID on a session's first signing, then password."""
    page.get_by_role("button", name=button).click()
    dialog = page.locator("dialog[open]")
    if dialog.locator("input[name=signer_username]").count():
        dialog.locator("input[name=signer_username]").fill(username)
    dialog.locator("input[name=signer_password]").fill(PASSWORD)
    page.keyboard.press("Enter")


def done(page, text: str) -> None:
    page.locator(".messages .success", has_text=text).wait_for()


def choose(page, code: str) -> None:
    """Tick an exception, opening its folded group of refused attempts first (one click away)."""
    folded = page.locator(f"details:not([open]):has([data-code={code}]) > summary")
    if folded.count():
        folded.first.click()
    page.locator(f"[data-code={code}] input[name=exception]").check()


@pytest.mark.req("RBE-02", "RBE-03", "RBE-06", "RBE-07", "DEV-01", "DEV-03", "DEV-04", "P11-13", "P11-19")
def test_qa_reviews_by_exception_and_releases_and_an_open_deviation_holds_another_batch(
    page, live_db
) -> None:
    people, recipe = review_plant()
    run_batch(people, recipe, "B-1")  # 640 mg: out of limit, plus a hand-typed weight and an expired lot
    second = run_batch(people, recipe, "B-2", weight="600")
    # The second batch reached the end of its review through the services; its release is what matters.
    quality.exceptions_disposition(
        actor=A(people["reviewer"]),
        signer=sign(people["reviewer"], "approved"),
        exception_ids=list(BatchException.objects.filter(batch=second).values_list("id", flat=True)),
        decision="accepted",
        comment="Assessed: no impact.",
    )
    for who, stage in (("supervisor", "production_review"), ("reviewer", "qa_review")):
        quality.review_sign(
            actor=A(people[who]), signer=sign(people[who], "reviewed"), batch=second, stage=stage
        )

    # The QA reviewer finds B-1 in the worklist and reads only its exceptions.
    as_user(page, "reviewer")
    page.get_by_role("link", name="Quality").click()
    row = page.locator("[data-batch=B-1]")
    assert "3" in row.locator("td.num").inner_text() and "1 of 6 checks open" in row.inner_text()
    row.get_by_role("link", name="Review").click()
    exceptions = page.get_by_test_id("exceptions")
    # The expired lot's refused container is folded away as the operator's slip it was.
    for words in ("1 material refused", "Manual weight entry", "CPP/CQA out of specification"):
        assert words in exceptions.inner_text()
    assert "640 mg (out of specification)" in page.get_by_test_id("critical-values").inner_text()

    # The out-of-limit weight becomes a deviation, raised from the exception on the review page.
    choose(page, "CRITICAL_OUT_OF_SPECIFICATION")
    page.get_by_role("button", name="Raise a deviation from these").click()
    assert "Weight 1 640 mg is outside" in page.get_by_test_id("from-exceptions").inner_text()
    assert page.get_by_label("Batches (numbers, separated by spaces)").input_value() == "B-1"
    page.get_by_label("Title").fill("Tablet weight above specification")
    page.get_by_label("Classification").select_option("major")
    page.get_by_label("What happened").fill("Weight 1 was 640 mg against 570–630 mg.")
    sign_with(page, "Sign and raise…", "reviewer")
    done(page, "raised")
    number = Deviation.objects.get().number
    assert page.get_by_test_id("deviation-state").inner_text() == "Open"
    sign_with(page, "Start the investigation…", "reviewer")
    done(page, "under investigation")
    page.get_by_label("Investigation").fill("The upper punch was worn.")
    page.get_by_label("Root cause").fill("Punch wear beyond its inspection interval.")
    page.get_by_label("Impact on the batch").fill("None: the mean weight is within specification.")
    page.get_by_label("CAPA reference").fill("CAPA-2026-011")
    sign_with(page, "Submit for approval…", "reviewer")
    done(page, "pending approval")

    # Back on the review: the weight is escalated to the deviation, the other two accepted; each signed.
    page.goto("/batches/B-1/review/")
    choose(page, "CRITICAL_OUT_OF_SPECIFICATION")
    page.get_by_label("Decision").select_option("deviation")
    page.get_by_label("Deviation number (when escalated)").fill(number)
    page.get_by_label("Comment: what was assessed and why").fill(f"Assessed in {number}.")
    sign_with(page, "Sign the disposition of the chosen exceptions…", "reviewer")
    done(page, "1 exception dispositioned")
    choose(page, "MANUAL_WEIGHT_ENTRY")
    choose(page, "REFUSED_LOT_EXPIRED")
    page.get_by_label("Comment: what was assessed and why").fill(
        "Witnessed weight; the expired lot was refused."
    )
    sign_with(page, "Sign the disposition of the chosen exceptions…", "reviewer")
    done(page, "2 exceptions dispositioned")
    checklist = page.get_by_test_id("checklist")
    assert checklist.locator("[data-check=EXCEPTIONS].ok").count() == 1
    assert f"{number}: Tablet weight above specification (pending approval)" in checklist.inner_text()

    # The approver closes the deviation; production review, QA review and release follow, each signed.
    as_user(page, "approver")
    page.goto(f"/deviations/{number}/")
    sign_with(page, "Close the deviation…", "approver")
    done(page, "closed")
    as_user(page, "supervisor")
    page.goto("/batches/B-1/review/")
    sign_with(page, "Sign the production review…", "supervisor")
    done(page, "in review")
    as_user(page, "reviewer")
    page.goto("/batches/B-1/review/")
    sign_with(page, "Sign the QA review…", "reviewer")
    done(page, "QA review of batch B-1 signed")
    as_user(page, "approver")
    page.goto("/batches/B-1/review/")
    sign_with(page, "Sign the release…", "approver")
    done(page, "the batch is released by QA.")
    assert page.get_by_test_id("batch-state").inner_text() == "Released by QA"
    assert [
        s.inner_text().split("\t")[0] for s in page.get_by_test_id("stages").locator("tr[data-stage]").all()
    ] == [
        "Production review",
        "QA review",
        "Released",
    ]
    assert Batch.objects.get(number="B-1").state == "qa_released"

    # A deviation raised against B-2 holds its release: the page names it, and nothing changes.
    page.goto("/deviations/new/")
    page.get_by_label("Title").fill("Granulator alarm during B-2")
    page.get_by_label("Classification").select_option("minor")
    page.get_by_label("What happened").fill("A vibration alarm sounded during granulation.")
    page.get_by_label("Batches (numbers, separated by spaces)").fill("B-2")
    sign_with(page, "Sign and raise…", "approver")
    done(page, "raised")
    second_number = Deviation.objects.get(title__startswith="Granulator").number
    page.goto("/batches/B-2/review/")
    sign_with(page, "Sign the release…", "approver")
    refusal = page.get_by_test_id("refusal").inner_text()
    assert "Linked deviations closed: no." in refusal and second_number in refusal
    assert Batch.objects.get(number="B-2").state == "in_review"
