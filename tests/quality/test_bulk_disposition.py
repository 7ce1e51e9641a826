"""Review by exception of a long run (issue 11): the out-of-specification result first, the operator's slips
folded by kind, a whole group dispositioned with one signing (a signature record each), refusals in words.

One signing, one record per disposition: each disposition is its own GMP record with its
own signature bound to its own exception (21 CFR 11.50, 11.70), judged one by one by
``rules.bindings`` like any other, so altering one disposition breaks only its signature.
"""

from __future__ import annotations

import html
import re

import pytest

from batchline.audit.models import AuditEntry
from batchline.execution import services as ex
from batchline.execution.models import BatchException, ExceptionDisposition
from batchline.quality import services as q
from batchline.signatures import status
from batchline.signatures.models import Signature
from tests.api.test_api import api
from tests.conftest import PASSWORD, make_user
from tests.execution.test_engine import A, new_batch, sign
from tests.quality.scenario import review_plant, run_batch
from tests.signatures.test_status import sql

pytestmark = pytest.mark.django_db


@pytest.fixture
def plant(db):
    """B-1 as the issue found it: the critical out-of-specification weight, the lubricant left in its
    container (a reconciliation exception), two hand-typed weights and 13 refused attempts."""
    people, recipe = review_plant(lubricant=True)
    return people, recipe, run_batch(people, recipe, "B-1", out_of_order=7, wrong_scans=5)


def text(response) -> str:
    return html.unescape(response.content.decode())


def ids(batch, code: str) -> list[int]:
    return list(BatchException.objects.filter(batch=batch, code=code).values_list("id", flat=True))


def written() -> tuple[int, int, int]:
    return AuditEntry.objects.count(), ExceptionDisposition.objects.count(), Signature.objects.count()


@pytest.mark.req("RBE-01", "RBE-02", "DI-06")
def test_the_review_page_reads_the_out_of_specification_result_first_and_folds_the_slips(
    plant, login
) -> None:
    people, _recipe, _batch = plant
    page = text(login(people["reviewer"]).get("/batches/B-1/review/"))
    exceptions = page.split('data-testid="exceptions"')[1].split("</form>")[0]
    rows = re.findall(r'data-code="(\w+)" data-severity="(\w+)" class="([\w -]+)"', exceptions)
    assert [code for code, _, _ in rows[:4]] == [
        "CRITICAL_OUT_OF_SPECIFICATION",
        "RECONCILIATION_OUT_OF_LIMITS",
        "MANUAL_WEIGHT_ENTRY",
        "MANUAL_WEIGHT_ENTRY",
    ]
    assert len(rows) == 17 and {code[:8] for code, _, _ in rows[4:]} == {"REFUSED_"}  # none left out
    # Styled by severity: the OOS critical, every slip low, never alike.
    assert rows[0][1:] == ("critical", "sev-critical") and {r[2] for r in rows[4:]} == {"sev-low"}
    summary = page.split('data-testid="refused-summary">')[1].split("<")[0]
    assert summary == "13 refused attempts: 7 out-of-sequence attempts, 6 materials refused"
    folded = re.findall(r'<details class="exc-group sev-low" data-group="([\w-]+)"( open)?>', exceptions)
    assert folded == [("refusedout-of-sequence-attempt", ""), ("refusedmaterial-condition-failed", "")]
    assert 'data-choose="all"' in exceptions and "Choose every open exception (17)" in exceptions
    assert 'data-choose="refusedout-of-sequence-attempt"' in exceptions  # "choose the 7 open"
    assert "choose the 7 open" in exceptions and "choose the 6 open" in exceptions


@pytest.mark.req("DEV-04", "P11-13", "P11-14", "RBE-02")
def test_a_group_is_dispositioned_with_one_signing_and_each_disposition_keeps_its_own_signature(
    plant, login, no_triggers
) -> None:
    people, _recipe, batch = plant
    reviewer = login(people["reviewer"])
    slips = ids(batch, "REFUSED_PREDECESSOR_OPEN")
    response = reviewer.post(
        "/batches/B-1/review/disposition/",
        {
            "exception": slips,
            "decision": "accepted",
            "comment": "Refused by the sequence gate; nothing was done out of order.",
            "signer_username": "reviewer",
            "signer_password": PASSWORD,
        },
    )
    assert response.status_code == 302
    assert "7 exceptions dispositioned." in text(reviewer.get(response.url))
    made = list(ExceptionDisposition.objects.filter(exception_id__in=slips).order_by("exception_id"))
    sigs = list(Signature.objects.filter(record_type="execution.exceptiondisposition").order_by("id"))
    assert len(made) == len(sigs) == 7
    assert sorted(s.record_id for s in sigs) == sorted(str(d.pk) for d in made)
    assert {s.signer_username for s in sigs} == {"reviewer"} and {s.meaning for s in sigs} == {"approved"}
    assert len({s.binding_hash for s in sigs}) == 7  # each bound to its own exception
    _, judged = status.statuses_of(batch)
    assert {judged[s.pk].state for s in sigs} == {"valid"}
    # Changing one disposition behind the application breaks that one signature, no other.
    sql("UPDATE execution_exceptiondisposition SET comment = %s WHERE id = %s", ["fine", made[3].pk])
    _, judged = status.statuses_of(batch)
    broken = [s.record_id for s in sigs if judged[s.pk].broken]
    assert broken == [str(made[3].pk)]
    page = text(reviewer.get("/batches/B-1/review/"))
    assert '7 out-of-sequence attempts <span class="help">· 0 open' in page
    assert 'data-testid="exception-count">10 of 17 open' in page


@pytest.mark.req("DEV-04", "RBE-02")
def test_refusals_name_the_exceptions_one_already_dispositioned_ones_own_another_batchs(plant, login) -> None:
    people, recipe, batch = plant
    people["supqa"] = make_user("supqa", ["supervisor", "qa_reviewer"])
    other = new_batch(people, recipe, number="B-2", quantity="100")
    sup = people["supqa"]
    ex.batch_command(actor=A(sup), batch=other, command="hold", signer=sign(sup), reason="press alarm")
    (hold,) = ids(other, "HOLD")
    scans = ids(batch, "REFUSED_LOT_EXPIRED")
    q.exceptions_disposition(
        actor=A(people["reviewer"]),
        signer=sign(people["reviewer"], "approved"),
        exception_ids=scans[:1],
        decision="accepted",
        comment="Refused at the booth.",
    )
    reviewer = login(people["reviewer"])
    before = written()
    form = {"decision": "accepted", "comment": "Slips.", "signer_username": "reviewer"}
    for chosen, words in (
        (
            scans,
            [
                f"Exception #{scans[0]} (REFUSED_LOT_EXPIRED, ",
                "has a disposition already, which stands: Accepted: no impact on quality (Reviewer Person, ",
            ],
        ),
        (
            [*scans[1:], hold],
            [f"Exception #{hold} (HOLD, ", "is batch B-2's, not B-1's: disposition it on B-2's review."],
        ),
        ([99999], ["No exception #99999."]),
    ):
        response = reviewer.post(
            "/batches/B-1/review/disposition/", {**form, "exception": chosen, "signer_password": PASSWORD}
        )
        refusal = text(response).split('data-testid="refusal">')[1].split("</div>")[0]
        assert response.status_code == 422 and all(w in refusal for w in words), refusal
        # The choice stays on the page, its folded group opened to show it.
        if scans[1] in chosen:
            assert re.search(rf'value="{scans[1]}" aria-label="[^"]+" checked', text(response))
            assert 'data-group="refusedmaterial-condition-failed" open>' in text(response)
    assert written() == before
    # One's own exception, over the API: refused in words unless self-approval is configured.
    response = api(
        sup,
        "post",
        "/quality/exceptions/disposition",
        {
            "exceptions": [hold],
            "decision": "accepted",
            "comment": "Alarm cleared.",
            "signature": {"username": "supqa", "password": PASSWORD},
        },
    )
    reasons = response.json()["reasons"]
    assert response.status_code == 409 and [r["code"] for r in reasons] == ["SELF_APPROVAL"]
    assert reasons[0]["message"].startswith(f"You raised exception #{hold} (HOLD, ")
    # Exceptions of two batches in one signing: refused, naming both.
    response = api(
        people["reviewer"],
        "post",
        "/quality/exceptions/disposition",
        {
            "exceptions": [hold, scans[1]],
            "decision": "accepted",
            "comment": "x",
            "signature": {"username": "reviewer", "password": PASSWORD},
        },
    )
    assert response.status_code == 409
    assert "these are of batches B-1, B-2" in response.json()["reasons"][0]["message"]
    # Pinned to its batch, a group goes through in one call; the API names each group's open ones.
    review = api(people["reviewer"], "get", "/quality/batches/B-1/review").json()
    group = next(g for g in review["groups"] if g["key"] == "refused:material condition failed")
    assert group["folded"] and group["severity"] == "low" and sorted(group["open"]) == sorted(scans[1:])
    assert review["groups"][0]["exceptions"][0] == ids(batch, "CRITICAL_OUT_OF_SPECIFICATION")[0]
    response = api(
        people["reviewer"],
        "post",
        "/quality/exceptions/disposition",
        {
            "exceptions": group["open"],
            "decision": "accepted",
            "comment": "Refused at the charge: the expired lot never reached the batch.",
            "batch": "B-1",
            "signature": {"username": "reviewer", "password": PASSWORD},
        },
    )
    assert response.status_code == 200 and len(response.json()) == 5
