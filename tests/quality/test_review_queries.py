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


@pytest.mark.req("RBE-02", "NFR-06")
def test_the_review_page_and_api_need_the_same_queries_for_3_and_27_exceptions(client) -> None:
    from django.db import transaction

    from batchline.execution.raising import exception_raise
    from tests.api.test_api import token_for
    from tests.quality.scenario import review_plant, run_batch

    people, recipe = review_plant()
    few, many = run_batch(people, recipe, "B-1"), run_batch(people, recipe, "B-2")
    op = Actor.of(people["operator"], via="web")
    with transaction.atomic():
        for i in range(24):  # the operator's slips of a long run, of three kinds
            code = ("REFUSED_PREDECESSOR_OPEN", "REFUSED_WRONG_MATERIAL", "REFUSED_NOT_A_NUMBER")[i % 3]
            exception_raise(many, actor=op, code=code, message=f"slip {i}", material=f"C-{i:06d}")
    client.force_login(people["reviewer"])
    bearer = {"Authorization": f"Bearer {token_for(people['reviewer'])}"}
    client.get("/batches/B-1/review/")  # the first request of a session reads more (the session, the user)
    counts = {}
    for batch in (few, many):
        with CaptureQueriesContext(connection) as page:
            assert client.get(f"/batches/{batch.number}/review/").status_code == 200
        with CaptureQueriesContext(connection) as read:
            response = client.get(f"/api/v1/quality/batches/{batch.number}/review", headers=bearer)
            assert response.status_code == 200
        counts[batch.number] = (len(page.captured_queries), len(read.captured_queries))
    assert counts["B-1"] == counts["B-2"], counts
    assert len(response.json()["exceptions"]) == 27
    page = client.get("/batches/B-2/review/").content.decode()
    assert (
        "25 refused attempts: 9 materials refused, 8 out-of-sequence attempts, 8 entries refused as typed"
        in page
    )
