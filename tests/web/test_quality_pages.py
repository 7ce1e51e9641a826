"""QA's pages: worklist, review by exception, dispositions, deviations and release, with every refusal."""

from __future__ import annotations

import html

import pytest

from batchline.audit.models import AuditEntry
from batchline.execution import services as ex
from batchline.execution.models import Batch, BatchException, ExceptionDisposition
from batchline.quality.models import Deviation, ReviewStage
from batchline.signatures.models import Signature
from tests.conftest import PASSWORD
from tests.execution.test_engine import A
from tests.quality.scenario import review_plant, run_batch

pytestmark = pytest.mark.django_db


@pytest.fixture
def plant(db):
    people, recipe = review_plant()
    return people, run_batch(people, recipe, "B-1")


def text(response) -> str:
    return html.unescape(response.content.decode())


def written() -> tuple[int, int, int, int]:
    return (
        AuditEntry.objects.count(),
        ExceptionDisposition.objects.count(),
        ReviewStage.objects.count(),
        Deviation.objects.count(),
    )


def signed(**fields) -> dict:
    return {"signer_username": fields.pop("who"), "signer_password": PASSWORD, **fields}


def open_ids(batch) -> list[int]:
    return list(
        BatchException.objects.filter(batch=batch, disposition__isnull=True).values_list("id", flat=True)
    )


@pytest.mark.req("RBE-02", "RBE-03", "RBE-01")
def test_the_worklist_and_review_page_show_only_what_went_differently(plant, login) -> None:
    people, _batch = plant
    reviewer = login(people["reviewer"])
    worklist = text(reviewer.get("/quality/"))
    assert 'href="/quality/"' in worklist  # in the navigation
    row = worklist.split('data-batch="B-1"')[1].split("</tr>")[0]
    assert '<td class="num out" data-testid="open-exceptions">3</td>' in row and "1 of 6 checks open" in row
    assert "All exceptions dispositioned: no (3 exceptions open)" in row
    page = text(reviewer.get("/batches/B-1/review/"))
    checklist = page.split('data-testid="checklist"')[1].split("</ul>\n")[0]
    assert (
        'data-check="EXCEPTIONS" class="out"' in checklist
        and 'data-check="GENEALOGY" class="ok"' in checklist
    )
    assert "Lot L-OLD of Paracetamol expired at" in checklist
    exceptions = page.split('data-testid="exceptions"')[1].split("</form>")[0]
    for kind, context in (
        ("Material condition failed", "Material C-000001"),
        ("Manual weight entry", "Material C-000002"),
        ("CPP/CQA out of specification", "Step “Tablet weight”"),
    ):
        assert kind in exceptions and context in exceptions
    assert exceptions.count("blocks</span>") == 1 and "Operator Person" in exceptions
    critical = page.split('data-testid="critical-values"')[1].split("</table>")[0]
    assert "640 mg (out of specification)" in critical
    assert 'href="/batches/B-1/record/"' in page and "2026-" in page.split('data-testid="rules-version"')[1]
    assert 'Next: <strong data-testid="next-stage">Production review' in page
    # The floor and the record link finished batches to their review; the operator has no QA pages.
    operator = login(people["operator"])
    assert 'href="/batches/B-1/review/"' in text(operator.get("/floor/"))
    assert 'href="/batches/B-1/review/"' in text(reviewer.get("/batches/B-1/record/"))
    assert operator.get("/quality/").status_code == 403 and 'href="/quality/"' not in text(operator.get("/"))


@pytest.mark.req("DEV-04", "P11-13", "P11-06")
def test_a_disposition_needs_a_comment_and_a_signature_and_then_unblocks(plant, login) -> None:
    people, batch = plant
    reviewer = login(people["reviewer"])
    ids = open_ids(batch)
    form = {"exception": ids, "decision": "accepted", "comment": "Assessed: no impact."}
    for bad, problem in (
        ({"comment": "  "}, "A disposition needs a comment"),
        ({"signer_password": "wrong"}, "User ID or password is wrong"),
        ({"exception": []}, "Choose the exceptions to disposition"),
        ({"decision": "deviation", "deviation": "DEV-1999-0001"}, "No deviation 'DEV-1999-0001'"),
    ):
        before = written()
        response = reviewer.post(
            "/batches/B-1/review/disposition/", {**signed(who="reviewer", **form), **bad}
        )
        assert response.status_code == 422 and problem in text(response), bad
        # A failed signing is itself recorded (and counts towards lockout, 21 CFR 11.300(d)); nothing else.
        failed_signing = 1 if "signer_password" in bad else 0
        assert written() == (before[0] + failed_signing, *before[1:]), bad
    response = reviewer.post("/batches/B-1/review/disposition/", signed(who="reviewer", **form))
    assert response.status_code == 302 and response.url == "/batches/B-1/review/"
    assert ExceptionDisposition.objects.filter(by=people["reviewer"]).count() == 3
    assert Batch.objects.get(pk=batch.pk).blocking_exceptions == 0
    sigs = Signature.objects.filter(record_type="execution.exceptiondisposition", meaning="approved")
    assert sigs.count() == 3 and {s.signer_username for s in sigs} == {"reviewer"}
    page = text(reviewer.get("/batches/B-1/review/"))
    assert page.count("Accepted: no impact on quality") == 3 and "“Assessed: no impact.”" in page
    # An operator cannot disposition, whatever they post.
    assert login(people["operator"]).post("/batches/B-1/review/disposition/", form).status_code == 403


@pytest.mark.req("RBE-06", "RBE-07", "P11-13", "P11-14")
def test_stages_in_order_release_only_by_qa_and_never_with_an_open_exception(plant, login) -> None:
    people, batch = plant
    supervisor, reviewer, approver = (login(people[n]) for n in ("supervisor", "reviewer", "approver"))
    before = written()
    # Nothing moves while an exception is open: the reason is on the page.
    response = supervisor.post(
        "/batches/B-1/review/sign/", signed(who="supervisor", stage="production_review")
    )
    assert response.status_code == 422
    refusal = text(response).split('data-testid="refusal">')[1].split("</div>")[0]
    assert (
        "All exceptions dispositioned: no." in refusal
        and "MANUAL_WEIGHT_ENTRY: Weight typed by hand" in refusal
    )
    # A supervisor may not release at all; their signature is refused before anything is judged.
    response = supervisor.post("/batches/B-1/review/sign/", signed(who="supervisor", stage="released"))
    assert response.status_code == 422 and "Your roles do not allow you to sign as 'Released'" in text(
        response
    )
    assert written()[1:] == before[1:] and Batch.objects.get(pk=batch.pk).state == "complete"
    reviewer.post(
        "/batches/B-1/review/disposition/",
        signed(who="reviewer", exception=open_ids(batch), decision="accepted", comment="No impact."),
    )
    assert (
        supervisor.post(
            "/batches/B-1/review/sign/", signed(who="supervisor", stage="production_review")
        ).status_code
        == 302
    )
    assert Batch.objects.get(pk=batch.pk).state == "in_review"
    response = reviewer.post("/batches/B-1/review/sign/", signed(who="reviewer", stage="released"))
    assert response.status_code == 422 and "Your roles do not allow you to sign as 'Released'" in text(
        response
    )
    assert (
        reviewer.post("/batches/B-1/review/sign/", signed(who="reviewer", stage="qa_review")).status_code
        == 302
    )
    # Someone tries to work on the batch in review: refused, and the refusal is an open exception QA must see.
    with pytest.raises(ex.ExecutionRefused):
        ex.step_start(actor=A(people["operator"]), user=people["operator"], batch=batch, step_key="weights")
    before = written()
    response = approver.post("/batches/B-1/review/sign/", signed(who="approver", stage="released"))
    assert response.status_code == 422
    assert "All exceptions dispositioned: no. 2 out-of-sequence attempts (REFUSED_BATCH_NOT_ACTIVE" in text(
        response
    )
    assert written() == before and Batch.objects.get(pk=batch.pk).state == "in_review"
    # A rejection needs its reason.
    response = approver.post("/batches/B-1/review/sign/", signed(who="approver", stage="rejected"))
    assert response.status_code == 422 and "Give the reason the batch is rejected" in text(response)
    approver.post(
        "/batches/B-1/review/disposition/",
        signed(
            who="approver",
            exception=open_ids(batch),
            decision="accepted",
            comment="Attempt refused; no impact.",
        ),
    )
    response = approver.post(
        "/batches/B-1/review/sign/", signed(who="approver", stage="released", comment="OK")
    )
    assert response.status_code == 302
    assert Batch.objects.get(pk=batch.pk).state == "qa_released"
    page = text(approver.get("/batches/B-1/review/"))
    assert "its review is finished" in page
    assert [s.stage for s in ReviewStage.objects.order_by("at", "id")] == [
        "production_review",
        "qa_review",
        "released",
    ]
    assert 'data-batch="B-1"' not in text(approver.get("/quality/"))


@pytest.mark.req("DEV-01", "DEV-03", "RBE-03", "P11-13")
def test_a_deviation_raised_from_exceptions_blocks_until_closed_through_its_signed_workflow(
    plant, login
) -> None:
    people, batch = plant
    reviewer, approver = login(people["reviewer"]), login(people["approver"])
    oos = BatchException.objects.get(batch=batch, code="CRITICAL_OUT_OF_SPECIFICATION")
    prefilled = text(reviewer.get("/deviations/new/", {"exception": [oos.pk]}))
    assert 'name="batches" value="B-1"' in prefilled and "Weight 1 640 mg is outside" in prefilled
    form = {"exception": [oos.pk], "batches": "B-1", "title": "Tablet weight high", "classification": "major"}
    before = written()
    response = reviewer.post("/deviations/new/", signed(who="reviewer", **form, description=""))
    assert response.status_code == 422 and written() == before
    assert "Describe what happened." in text(response), text(response).split('data-testid="refusal">')[1][
        :300
    ]
    response = reviewer.post("/deviations/new/", signed(who="reviewer", **form, description="640 mg."))
    dev = Deviation.objects.get()
    assert response.url == f"/deviations/{dev.number}/"
    assert set(dev.links.values_list("batch_number", flat=True)) == {"B-1"}
    reviewer.post(
        "/batches/B-1/review/disposition/",
        signed(
            who="reviewer",
            exception=[oos.pk],
            decision="deviation",
            deviation=dev.number,
            comment="See deviation.",
        ),
    )
    reviewer.post(
        "/batches/B-1/review/disposition/",
        signed(who="reviewer", exception=open_ids(batch), decision="accepted", comment="No impact."),
    )
    page = text(reviewer.get("/batches/B-1/review/"))
    assert "Linked deviations closed" in page and f"{dev.number}: Tablet weight high (open)" in page
    assert "Escalated to a deviation" in page
    listing = text(reviewer.get("/deviations/?state=open"))
    assert dev.number in listing and "batch B-1" in listing
    detail = text(reviewer.get(f"/deviations/{dev.number}/"))
    assert 'data-testid="step-investigate"' in detail and 'data-testid="step-close"' not in detail
    step = f"/deviations/{dev.number}/"
    assert reviewer.post(step + "investigate/", signed(who="reviewer")).status_code == 302
    response = reviewer.post(step + "submit/", signed(who="reviewer", investigation="Die worn."))
    assert (
        response.status_code == 422
        and "Before approval, write the root cause, the impact on the batch" in text(response)
    )
    full = {
        "investigation": "Die worn.",
        "root_cause": "Die wear",
        "impact": "None: tablets within 640 mg",
        "capa_reference": "CAPA-7",
    }
    assert reviewer.post(step + "submit/", signed(who="reviewer", **full)).status_code == 302
    response = approver.post(step + "return/", signed(who="approver"))
    assert response.status_code == 422 and "Give a reason to return the deviation" in text(response)
    # The reviewer submitted it, so cannot close it; the approver's role alone offers "close".
    assert 'data-testid="step-close"' not in text(reviewer.get(step))
    assert approver.post(step + "close/", signed(who="approver")).status_code == 302
    dev.refresh_from_db()
    assert dev.state == "closed" and dev.root_cause == "Die wear" and dev.capa_reference == "CAPA-7"
    detail = text(approver.get(step))
    assert detail.count('class="manifestation"') == 4 and detail.count('data-status="valid"') == 1
    assert "(Approved)" in detail or "Approved" in detail.split('class="manifestation"')[-1]
    page = text(approver.get("/batches/B-1/review/"))
    assert 'data-check="DEVIATIONS" class="ok"' in page
