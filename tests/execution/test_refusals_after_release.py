"""An action refused on a released (or rejected) batch is a security/audit event, not an open exception.

The reproduction of issue 10: refused attempts after release added open
exceptions to the released record. Now the batch's exceptions and its
approved content stay as released; the attempt is an audit entry (and a
security event) naming who, what and why, and the release's binding holds.
"""

from __future__ import annotations

import pytest

from batchline.audit.models import AuditEntry
from batchline.audit.selectors import security_events
from batchline.audit.verify import verify
from batchline.execution import services as ex
from batchline.execution.models import BatchException
from batchline.reports.content import record_content
from batchline.rules.bindings import record_sha256
from tests.execution.test_engine import A, new_batch, sign
from tests.quality.test_quality_services import finish, make_people, stage

pytestmark = pytest.mark.django_db


@pytest.mark.req("P11-06", "P11-05", "DI-01")
@pytest.mark.parametrize("decision", ["released", "rejected"])
def test_refused_attempts_after_the_decision_are_audit_events_not_exceptions(decision) -> None:
    people, recipe = make_people()
    batch = finish(people, new_batch(people, recipe))
    stage(people, batch, "production_review", "supervisor")
    stage(people, batch, "qa_review", "reviewer")
    stage(
        people,
        batch,
        decision,
        "approver",
        comment="Out of trend hardness." if decision == "rejected" else "",
    )
    batch.refresh_from_db()
    exceptions_before = list(BatchException.objects.filter(batch=batch).values_list("pk", flat=True))
    approved_before = record_sha256(record_content(batch), None)

    op = people["operator"]
    with pytest.raises(ex.ExecutionRefused):
        ex.step_start(actor=A(op), user=op, batch=batch, step_key="weights")
    with pytest.raises(ex.ExecutionRefused):
        ex.value_correct(
            actor=A(op),
            user=op,
            batch=batch,
            step_key="weights",
            name="w2",
            text="600",
            reason="r",
            signer=sign(op),
        )

    assert list(BatchException.objects.filter(batch=batch).values_list("pk", flat=True)) == exceptions_before
    assert record_sha256(record_content(batch), None) == approved_before  # the release's binding holds
    events = list(AuditEntry.objects.filter(action="refused_after_release").order_by("id"))
    assert len(events) >= 2
    first = events[0]
    assert (first.record_type, first.record_id, first.actor_username) == (
        "execution.batch",
        str(batch.pk),
        "operator",
    )
    state = "released by QA" if decision == "released" else "rejected"  # as a sentence says it (issue 11)
    assert first.reason.startswith(f"Refused on batch {batch.number} ({state}), step weights: ")
    assert first.reason.endswith("no step can be worked on. [BATCH_NOT_ACTIVE]"), first.reason
    assert {e.pk for e in events} <= {e.pk for e in security_events()}
    assert verify().ok


@pytest.mark.req("P11-06")
def test_before_the_decision_a_refusal_is_still_an_exception_qa_sees() -> None:
    people, recipe = make_people()
    batch = finish(people, new_batch(people, recipe))
    op = people["operator"]
    with pytest.raises(ex.ExecutionRefused):
        ex.step_start(actor=A(op), user=op, batch=batch, step_key="weights")
    assert BatchException.objects.filter(batch=batch, code__startswith="REFUSED_").exists()
    assert not AuditEntry.objects.filter(action="refused_after_release").exists()
