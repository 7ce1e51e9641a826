"""Escalating an exception to a deviation keeps every signature honest (issue 11).

Raised from an exception and then escalated to it, the deviation already names
the exception: nothing is added, its signature stays valid and the exception is
listed once. Escalated to a deviation raised without it, the link added after
the deviation's signature makes that signature *superseded*, naming who added
the link, when and why; closing signs the deviation as it stands. Nowhere a
BROKEN signature: not on the pages, not in the API, not in ``audit verify``.
"""

from __future__ import annotations

import re

import pytest
from django.db import transaction

from batchline.audit.services import record_create
from batchline.execution.models import BatchException
from batchline.quality.models import Deviation, DeviationLink
from batchline.signatures import status
from batchline.signatures.models import Signature
from tests.api.test_api import api
from tests.conftest import PASSWORD
from tests.execution.test_engine import A
from tests.quality.test_quality_services import close
from tests.signatures.test_witness_status import audit_verify
from tests.web.test_quality_pages import plant, text

pytestmark = pytest.mark.django_db

__all__ = ["plant"]  # the fixture, used by name


def signed(who: str, **fields) -> dict:
    return {"signer_username": who, "signer_password": PASSWORD, **fields}


def statuses(page: str) -> list[str]:
    return re.findall(r'data-status="(\w+)"', page)


def exception_links(dev: Deviation) -> list[int | None]:
    return list(dev.links.exclude(exception=None).values_list("exception_id", flat=True))


@pytest.mark.req("P11-14", "DEV-03", "RBE-02")
def test_an_exception_escalated_to_the_deviation_raised_from_it_keeps_its_signature_valid_and_is_listed_once(
    plant, login
) -> None:
    people, batch = plant
    oos = BatchException.objects.get(batch=batch, code="CRITICAL_OUT_OF_SPECIFICATION")
    reviewer = login(people["reviewer"])
    form = {"exception": [oos.pk], "batches": "B-1", "title": "Tablet weight high", "classification": "major"}
    response = reviewer.post("/deviations/new/", signed("reviewer", **form, description="640 mg."))
    dev = Deviation.objects.get()
    assert response.status_code == 302 and exception_links(dev) == [oos.pk]
    response = reviewer.post(
        "/batches/B-1/review/disposition/",
        signed("reviewer", exception=[oos.pk], decision="deviation", deviation=dev.number, comment="See it."),
    )
    assert response.status_code == 302
    assert exception_links(dev) == [oos.pk]  # named once: the deviation was raised from it
    detail = text(reviewer.get(f"/deviations/{dev.number}/"))
    assert statuses(detail) == ["valid"]
    links = detail.split('data-testid="links"')[1].split("</ul>")[0]
    assert links.count("CRITICAL_OUT_OF_SPECIFICATION") == 1
    review = text(reviewer.get("/batches/B-1/review/"))
    assert "broken" not in statuses(review) and "BROKEN" not in review
    assert review.split('data-testid="deviations"')[1].split("</table>")[0].count("<tr class=") == 1
    record = text(reviewer.get("/batches/B-1/record/"))
    assert "broken" not in statuses(record)
    (sig,) = Signature.objects.filter(record_type="quality.deviation")
    _, judged = status.statuses_of(batch)
    assert judged[sig.pk].state == "valid"
    # The API reads the same deviation: the exception once, among what it concerns.
    read = api(people["reviewer"], "get", f"/quality/deviations/{dev.number}").json()
    assert [lk["exception"] for lk in read["links"] if lk["exception"]] == [oos.pk]
    assert "OK: audit trail verifies" in audit_verify()


@pytest.mark.req("P11-14", "DEV-03")
def test_escalating_to_a_deviation_raised_without_the_exception_supersedes_its_signature_in_words(
    plant, login
) -> None:
    people, batch = plant
    oos = BatchException.objects.get(batch=batch, code="CRITICAL_OUT_OF_SPECIFICATION")
    reviewer = login(people["reviewer"])
    form = {"batches": "B-1", "title": "Press trouble", "classification": "minor"}
    reviewer.post("/deviations/new/", signed("reviewer", **form, description="Press stopped twice."))
    dev = Deviation.objects.get()
    assert exception_links(dev) == []
    # Through the API this time, pinned to the batch: one signing.
    response = api(
        people["reviewer"],
        "post",
        "/quality/exceptions/disposition",
        {
            "exceptions": [oos.pk],
            "decision": "deviation",
            "deviation": dev.number,
            "comment": "Weight drift from the same press stops.",
            "batch": "B-1",
            "signature": {"username": "reviewer", "password": PASSWORD},
        },
    )
    assert response.status_code == 200, response.content
    assert exception_links(dev) == [oos.pk]
    detail = text(reviewer.get(f"/deviations/{dev.number}/"))
    assert statuses(detail) == ["superseded"]
    said = detail.split('data-status="superseded">')[1].split("</span>")[0]
    assert f"a link to exception #{oos.pk} of batch B-1, added by Reviewer Person at " in said
    assert ": exception escalated: Weight drift from the same press stops. (audit entry #" in said
    review = text(reviewer.get("/batches/B-1/review/"))
    assert "broken" not in statuses(review) and "superseded" in statuses(review)
    assert "OK: audit trail verifies" in audit_verify()
    # Closed, the deviation is signed as it stands: the newest signature valid, the others superseded.
    close(people, dev)
    detail = text(reviewer.get(f"/deviations/{dev.number}/"))
    assert statuses(detail) == ["superseded"] * 3 + ["valid"]
    assert "broken" not in statuses(text(reviewer.get("/batches/B-1/record/")))
    assert "OK: audit trail verifies" in audit_verify()


@pytest.mark.req("RBE-02")
def test_a_deviation_linked_twice_to_one_exception_before_issue_11_lists_it_once(plant, login) -> None:
    people, batch = plant
    oos = BatchException.objects.get(batch=batch, code="CRITICAL_OUT_OF_SPECIFICATION")
    reviewer = login(people["reviewer"])
    form = {"exception": [oos.pk], "batches": "B-1", "title": "Tablet weight high", "classification": "major"}
    reviewer.post("/deviations/new/", signed("reviewer", **form, description="640 mg."))
    dev = Deviation.objects.get()
    # What the escalation used to write: a second link to the same exception, through the audited path.
    with transaction.atomic():
        record_create(
            DeviationLink(deviation=dev, batch_number="B-1", exception=oos), actor=A(people["reviewer"])
        )
    assert exception_links(dev) == [oos.pk, oos.pk]
    links = text(reviewer.get(f"/deviations/{dev.number}/")).split('data-testid="links"')[1].split("</ul>")[0]
    assert (
        links.count("CRITICAL_OUT_OF_SPECIFICATION") == 1 and links.count("<li>") == 2
    )  # the batch, the OOS
