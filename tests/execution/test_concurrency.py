"""Two people complete the same step at the same moment: exactly one succeeds.

On PostgreSQL the batch row lock decides; on SQLite, BEGIN IMMEDIATE does.
"""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from django.db import connections

from batchline.audit.verify import verify
from batchline.execution import services as ex
from batchline.execution.models import Batch, BatchStep, StepValue

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


@pytest.mark.req("P11-06", "NFR-06")
def test_many_people_on_one_batch_never_deadlock_and_each_step_is_done_once(live_db) -> None:
    # Four people complete the same steps at once: one wins each, the others are refused and
    # their refusals recorded for QA, each in a transaction of its own. Recording a refusal
    # used to take the audit chain's lock while its exception's reference to the batch waited
    # for a completion holding the batch, which itself waited for the chain: a deadlock.
    from tests.conftest import make_user
    from tests.execution.test_engine import A, effective_recipe, sign

    people = {
        n: make_user(n, r)
        for n, r in (
            ("author", ["recipe_author"]),
            ("approver", ["qa_approver"]),
            ("supervisor", ["supervisor"]),
        )
    }
    workers = [make_user(f"op{i}", ["operator"]) for i in range(4)]
    steps = [
        f"      - {{key: s{i}, kind: data_entry, title: Step {i}, after: [], "
        f"inputs: [{{name: v{i}, label: Value {i}, unit: kg, specification: {{low: 1, high: 2}}}}]}}"
        for i in range(12)
    ]
    recipe = effective_recipe(
        people,
        "format: batchline.recipe/1\n"
        "recipe: {code: PAR-1, name: Parallel, product_code: PAR, product_name: Parallel, "
        "batch_size: {quantity: 10, unit: kg}}\n"
        "operations:\n  - key: op\n    name: Operation\n    steps:\n" + "\n".join(steps) + "\n",
    )
    batch = ex.batch_create(
        actor=A(people["supervisor"]), recipe=recipe, number="D-1", planned_quantity=Decimal(10)
    )
    ex.batch_command(
        actor=A(people["supervisor"]), batch=batch, command="release", signer=sign(people["supervisor"])
    )
    keys = [f"s{i}" for i in range(12)]  # independent steps
    barrier = threading.Barrier(len(workers))
    outcomes: list[str] = []

    def attempt(user) -> None:
        try:
            barrier.wait()
            for key in keys:
                try:
                    ex.step_complete(
                        actor=A(user), user=user, batch=batch, step_key=key, entries={f"v{key[1:]}": "1.5"}
                    )
                    outcomes.append("won")
                except ex.ExecutionRefused as refused:
                    outcomes.append(",".join(refused.verdict.codes))
                except Exception as error:  # a deadlock, for one
                    outcomes.append(type(error).__name__)
        finally:
            connections.close_all()

    for step in BatchStep.objects.filter(batch=batch, key__in=keys):
        ex.step_start(actor=A(workers[0]), user=workers[0], batch=batch, step_key=step.key)
    threads = [threading.Thread(target=attempt, args=(user,)) for user in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Once every step is done the batch is complete, and later attempts are refused for that too.
    assert all(o == "won" or "STEP_ALREADY_COMPLETE" in o.split(",") for o in outcomes), outcomes
    assert outcomes.count("won") == len(keys)
    assert Batch.objects.get(pk=batch.pk).state == "complete"
    assert StepValue.objects.filter(step__batch=batch).count() == len(keys)
    assert verify().ok
