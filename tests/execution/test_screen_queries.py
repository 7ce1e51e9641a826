"""The execution screen's queries do not grow with the number of steps."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.cache import caches
from django.db import connection
from django.test.utils import CaptureQueriesContext

from batchline.audit.services import Actor
from batchline.execution import services as ex
from tests.conftest import make_user
from tests.execution.test_engine import effective_recipe, sign

pytestmark = pytest.mark.django_db


def recipe_with(steps: int, code: str) -> str:
    lines = [
        "format: batchline.recipe/1",
        f"recipe: {{code: {code}, name: Many steps, product_code: MANY, product_name: Many, batch_size: {{quantity: 10, unit: kg}}}}",
        "operations:",
        "  - key: op",
        "    name: Operation",
        "    steps:",
    ]
    for i in range(steps):
        kind = "data_entry" if i % 2 else "instruction"
        lines.append(
            f"      - {{key: s{i}, kind: {kind}, title: Step {i}"
            + (
                f", inputs: [{{name: v{i}, label: Value {i}, unit: kg, specification: {{low: 1, high: 2}}}}]"
                if i % 2
                else ""
            )
            + "}"
        )
    return "\n".join(lines) + "\n"


@pytest.mark.req("NFR-06")
def test_the_screen_needs_the_same_queries_for_10_and_500_steps(client) -> None:
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
    for n in (10, 500):
        recipe = effective_recipe(people, recipe_with(n, f"MANY-{n}"))
        sup = Actor.of(people["supervisor"], via="web")
        batch = ex.batch_create(actor=sup, recipe=recipe, number=f"Q-{n}", planned_quantity=Decimal(10))
        ex.batch_command(actor=sup, batch=batch, command="release", signer=sign(people["supervisor"]))
        op = people["operator"]
        ex.step_start(actor=Actor.of(op, via="web"), user=op, batch=batch, step_key="s0")
        ex.step_complete(actor=Actor.of(op, via="web"), user=op, batch=batch, step_key="s0")
        ex.step_start(actor=Actor.of(op, via="web"), user=op, batch=batch, step_key="s1")
        ex.step_complete(
            actor=Actor.of(op, via="web"),
            user=op,
            batch=batch,
            step_key="s1",
            entries={"v1": "3"},
            confirm_out_of_specification=True,
        )
        client.force_login(op)
        client.get(f"/batches/Q-{n}/")  # warm the session
        for cached in (False, True):  # read and rendered, then from the screen cache
            if not cached:
                caches["screens"].clear()
            with CaptureQueriesContext(connection) as ctx:
                response = client.get(f"/batches/Q-{n}/")
            assert response.status_code == 200 and f"Step {n - 1}" in response.content.decode()
            counts[n, cached] = len(ctx.captured_queries)
    assert counts[10, False] == counts[500, False], counts
    assert counts[10, True] == counts[500, True] < counts[10, False], counts
