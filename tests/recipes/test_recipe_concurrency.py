"""Two authors import the first version of one new recipe code at the same moment.

There is no row to lock yet, so on PostgreSQL both transactions see "no
version" and race for the product and for version 1: the loser must be told to
try again, never meet a server error, and nothing half-written may remain. On
SQLite, BEGIN IMMEDIATE serialises the two imports: the second becomes version 2.
"""

from __future__ import annotations

import threading

import pytest
from django.db import connections

from batchline.audit.services import Actor
from batchline.audit.verify import verify
from batchline.recipes import services
from batchline.recipes.models import MasterRecipe, Product
from tests.conftest import make_user
from tests.recipes.test_recipe_services import SMALL

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.req("MBR-01", "NFR-06")
def test_two_first_imports_of_one_new_code_leave_consistent_versions(live_db) -> None:
    authors = [make_user(f"author{n}", ["recipe_author"]) for n in (1, 2)]
    barrier = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def attempt(author) -> None:
        try:
            barrier.wait()
            recipe = services.recipe_import(actor=Actor.of(author, via="api"), text=SMALL)
            outcomes[author.username] = f"version {recipe.version}"
        except services.RecipeRefused as refused:
            outcomes[author.username] = ",".join(refused.verdict.codes)
        except Exception as exc:  # anything else would reach the user as a server error
            outcomes[author.username] = f"error: {exc!r}"
        finally:
            connections.close_all()

    threads = [threading.Thread(target=attempt, args=(a,)) for a in authors]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    versions = sorted(MasterRecipe.objects.filter(code="TST-1").values_list("version", flat=True))
    assert sorted(outcomes.values()) in (
        ["CONCURRENT_CHANGE", "version 1"],
        ["version 1", "version 2"],
    ), outcomes
    assert versions == list(range(1, len(versions) + 1))
    assert Product.objects.filter(code="TST").count() == 1
    assert verify().ok
