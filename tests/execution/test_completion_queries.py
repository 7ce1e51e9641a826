"""A step completion costs the same statements however long the recipe (docs/performance.md)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from batchline.audit.services import Actor
from batchline.audit.verify import verify
from batchline.execution import rows
from batchline.execution import services as ex
from tests.conftest import make_user
from tests.execution.test_engine import effective_recipe, sign
from tests.execution.test_screen_queries import recipe_with

pytestmark = pytest.mark.django_db


@pytest.mark.req("NFR-06", "P11-05")
def test_a_completion_needs_the_same_few_statements_for_10_and_500_steps() -> None:
    people = {
        n: make_user(n, r)
        for n, r in (
            ("author", ["recipe_author"]),
            ("approver", ["qa_approver"]),
            ("supervisor", ["supervisor"]),
            ("operator", ["operator"]),
        )
    }
    op = people["operator"]
    actor = Actor.of(op, via="web")
    statements = {}
    for n in (10, 500):
        recipe = effective_recipe(people, recipe_with(n, f"MANY-{n}"))
        sup = Actor.of(people["supervisor"], via="web")
        batch = ex.batch_create(actor=sup, recipe=recipe, number=f"C-{n}", planned_quantity=Decimal(10))
        ex.batch_command(actor=sup, batch=batch, command="release", signer=sign(people["supervisor"]))
        for key in ("s0", "s1"):
            ex.step_start(actor=actor, user=op, batch=batch, step_key=key)
            if key == "s0":
                ex.step_complete(actor=actor, user=op, batch=batch, step_key=key)
        with CaptureQueriesContext(connection) as unsigned:
            ex.step_complete(actor=actor, user=op, batch=batch, step_key="s1", entries={"v1": "1.5"})
        for key in ("s2", "s3"):
            ex.step_start(actor=actor, user=op, batch=batch, step_key=key)
            if key == "s2":
                ex.step_complete(actor=actor, user=op, batch=batch, step_key=key)
        signer = sign(op)
        with CaptureQueriesContext(connection) as signed:
            ex.step_complete(
                actor=actor, user=op, batch=batch, step_key="s3", entries={"v3": "1.5"}, signer=signer
            )
        statements[n] = (len(unsigned.captured_queries), len(signed.captured_queries))
    # Lock; the step, the roles and whether other steps are open; value; step state; the entries
    # (appended together); signed also the values the signature binds and the signature.
    # (On SQLite the chain's head is read and the entries inserted; the test's savepoint adds two.)
    # A typed decimal ("1.5") is read in the site's notation: the configuration in force, one indexed
    # statement (inside a request the version read at its start is reused: no statement at all).
    assert statements[10] == statements[500], statements
    unsigned_n, signed_n = statements[10]
    assert unsigned_n <= (10 if connection.vendor == "sqlite" else 8), statements
    assert signed_n == unsigned_n + 2, statements
    assert verify().ok


@pytest.mark.req("NFR-06")
def test_the_check_for_open_steps_reads_only_open_steps() -> None:
    # Whether a completion was the batch's last open step is answered from the partial index of
    # open steps, not by passing over every step the batch has done (a cost growing with the batch).
    sql = rows.steps_sql("s.batch_id = %s AND s.key IN (%s)", others_open=True)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL enable_seqscan = off")  # an empty test table would not need an index
            cursor.execute("EXPLAIN " + sql, [1, 1, "s1"])
        else:
            cursor.execute("EXPLAIN QUERY PLAN " + sql, [1, 1, "s1"])
        plan = " ".join(str(part) for row in cursor.fetchall() for part in row)
    assert "batchstep_open_idx" in plan, plan
