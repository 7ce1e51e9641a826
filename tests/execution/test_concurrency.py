"""Two people complete the same step at the same moment: exactly one succeeds.

On PostgreSQL the batch row lock decides; on SQLite, BEGIN IMMEDIATE does.
"""

from __future__ import annotations

import threading

import pytest
from django.db import connections

from batchline.audit.verify import verify
from batchline.execution import services as ex
from batchline.execution.models import BatchStep, StepValue

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.req("P11-06", "NFR-06")
def test_parallel_completion_of_one_step_has_exactly_one_winner(live_db) -> None:
    from tests.execution.test_engine import A, make_plant, new_batch, run_to_weights

    people, recipe = make_plant()  # committed: each thread reads it on its own connection
    batch = new_batch(people, recipe)
    run_to_weights(people, batch)
    signers = {who: people[who] for who in ("operator", "operator2")}
    barrier = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def attempt(who: str) -> None:
        try:
            barrier.wait()
            ex.step_complete(
                actor=A(signers[who]),
                user=signers[who],
                batch=batch,
                step_key="weights",
                entries={"w1": "600", "w2": "601"},
            )
            outcomes[who] = "won"
        except ex.ExecutionRefused as refused:
            outcomes[who] = ",".join(refused.verdict.codes)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=attempt, args=(who,)) for who in signers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes.values()) == ["STEP_ALREADY_COMPLETE", "won"], outcomes
    assert BatchStep.objects.get(batch=batch, key="weights").state == "done"
    assert StepValue.objects.filter(step__batch=batch).count() == 2  # one set of values, not two
    assert verify().ok
