"""The review by exception reads the same number of queries for a short and a long batch."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from batchline.audit.services import Actor
from batchline.execution import services as ex
from batchline.quality import selectors
from tests.conftest import make_user
from tests.execution.test_engine import effective_recipe, sign

pytestmark = pytest.mark.django_db


def recipe_with(steps: int, code: str) -> str:
    """Data-entry steps, each with a critical value and an ordinary one with a specification."""
    lines = [
        "format: batchline.recipe/1",
        f"recipe: {{code: {code}, name: Many values, product_code: MV, product_name: Many, batch_size: {{quantity: 10, unit: kg}}}}",
        "operations:",
        "  - key: op",
        "    name: Operation",
        "    steps:",
    ]
    for i in range(steps):
        lines.append(
            f"      - {{key: s{i}, kind: data_entry, title: Step {i}, inputs: ["
            f"{{name: c{i}, label: Critical {i}, unit: kg, specification: {{low: 1, high: 2}}, critical: true}}, "
            f"{{name: v{i}, label: Value {i}, unit: kg, specification: {{low: 1, high: 2}}}}]}}"
        )
    return "\n".join(lines) + "\n"


@pytest.mark.req("RBE-02", "NFR-06")
def test_review_and_completeness_need_the_same_queries_for_few_and_many_values() -> None:
    people = {
        n: make_user(n, r)
        for n, r in (
            ("author", ["recipe_author"]),
            ("approver", ["qa_approver"]),
            ("supervisor", ["supervisor"]),
            ("operator", ["operator"]),
        )
    }
    counts = {}
    for n in (4, 40):
        recipe = effective_recipe(people, recipe_with(n, f"MV-{n}"))
        sup = Actor.of(people["supervisor"], via="web")
        batch = ex.batch_create(actor=sup, recipe=recipe, number=f"V-{n}", planned_quantity=Decimal(10))
        ex.batch_command(actor=sup, batch=batch, command="release", signer=sign(people["supervisor"]))
        op = people["operator"]
        for i in range(n):
            ex.step_start(actor=Actor.of(op, via="web"), user=op, batch=batch, step_key=f"s{i}")
            # every third ordinary value out of specification: an exception to review
            ex.step_complete(
                actor=Actor.of(op, via="web"),
                user=op,
                batch=batch,
                step_key=f"s{i}",
                entries={f"c{i}": "1.5", f"v{i}": "3" if i % 3 == 0 else "1.2"},
                confirm_out_of_specification=True,
            )
        batch.refresh_from_db()
        assert batch.state == "complete"
        with CaptureQueriesContext(connection) as ctx:
            screen = selectors.review_screen(batch, qp_required=False)
        assert len(screen.critical_values) == n and len(screen.exceptions) == len(range(0, n, 3))
        assert not screen.complete  # the exceptions are not dispositioned yet
        counts[n] = len(ctx.captured_queries)
    assert counts[4] == counts[40], counts
