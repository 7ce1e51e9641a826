"""Set-up shared by the audit-trail review's tests: working hours that hold every test's entries, a
batch run to completion with its three exceptions, and a batch released through its review stages."""

from __future__ import annotations

from batchline.execution.models import Batch, BatchException
from batchline.quality import services as quality
from tests.conftest import configure
from tests.execution.test_engine import A, sign
from tests.quality.scenario import review_plant, run_batch

ALL_DAY = {"working_hours": "00:00-24:00", "working_days": "mon,tue,wed,thu,fri,sat,sun"}


def plant_with_batch(number: str = "B-1") -> tuple[dict, object, Batch]:
    """People, the recipe, and batch ``number`` complete with an out-of-limit weight, a weight typed
    by hand and a refused container of an expired lot; working hours that never flag an entry."""
    configure(**ALL_DAY)
    people, recipe = review_plant()
    return people, recipe, run_batch(people, recipe, number)


def release(people, batch: Batch) -> Batch:
    """Disposition every exception, sign the production and QA reviews and release (services)."""
    quality.exceptions_disposition(
        actor=A(people["reviewer"]),
        signer=sign(people["reviewer"], "approved"),
        exception_ids=list(BatchException.objects.filter(batch=batch).values_list("id", flat=True)),
        decision="accepted",
        comment="Assessed: no impact.",
    )
    for who, stage, meaning in (
        ("supervisor", "production_review", "reviewed"),
        ("reviewer", "qa_review", "reviewed"),
        ("approver", "released", "released"),
    ):
        quality.review_sign(actor=A(people[who]), signer=sign(people[who], meaning), batch=batch, stage=stage)
    return Batch.objects.get(pk=batch.pk)
