"""A change between two recipe versions as the approver reads it: reason, words, what it affects (MBR-02)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from batchline.audit.services import Actor
from batchline.execution import services as ex
from batchline.materials import services as stock
from batchline.recipes import services
from batchline.recipes.selectors import recipe_review
from tests.conftest import make_user
from tests.execution.test_engine import sign
from tests.recipes.test_recipe_services import SMALL, act

pytestmark = pytest.mark.django_db

# The small recipe with a charge of maize starch, so a change of its quantity reaches the stock.
WITH_STARCH = SMALL.replace(
    "        timer: {min_minutes: 4, max_minutes: 6}\n",
    "        timer: {min_minutes: 4, max_minutes: 6}\n"
    "      - key: charge\n"
    "        kind: material_charge\n"
    "        title: Charge starch\n"
    "        material: {code: STARCH, quantity: 6.0, unit: kg, tolerance_percent: 1}\n",
    1,
)


@pytest.fixture
def people(db):
    return {
        "author": make_user("author", ["recipe_author"]),
        "approver": make_user("approver", ["qa_approver"]),
        "supervisor": make_user("supervisor", ["supervisor"]),
        "warehouse": make_user("warehouse", ["warehouse"]),
    }


def A(user) -> Actor:
    return Actor.of(user, via="web")


@pytest.fixture
def versions(people):
    """Version 1 effective with two batches on it (one open, one aborted); version 2 changes it."""
    v1 = services.recipe_import(actor=A(people["author"]), text=WITH_STARCH)
    act(people["author"], v1, "submit", "performed")
    act(people["approver"], v1, "approve", "approved")
    act(people["approver"], v1, "make_effective", "approved")
    sup = people["supervisor"]
    for number in ("B-1", "B-2"):
        ex.batch_create(actor=A(sup), recipe=v1, number=number, planned_quantity=Decimal(1000))
    aborted = ex.batch_create(actor=A(sup), recipe=v1, number="B-3", planned_quantity=Decimal(1000))
    ex.batch_command(actor=A(sup), batch=aborted, command="abort", signer=sign(sup), reason="test")
    v2 = services.recipe_new_version(actor=A(people["author"]), recipe=v1, reason="Less starch: CC-2026-014")
    services.recipe_update(
        actor=A(people["author"]),
        recipe=v2,
        text=WITH_STARCH.replace("quantity: 6.0", "quantity: 5.5").replace("Dry mix", "Dry blend"),
        reason="starch 5.5 kg",
    )
    v2.refresh_from_db()
    return v1, v2


def _receive(people, code: str, number: str, *containers: str) -> None:
    material = stock.Material.objects.filter(code=code).first() or stock.material_create(
        actor=A(people["warehouse"]), code=code, name=code.title(), kind="raw", unit="kg"
    )
    stock.lot_receive(
        actor=A(people["warehouse"]),
        material=material,
        number=number,
        expires_at=timezone.now() + dt.timedelta(days=365),
        containers=list(containers),
    )


@pytest.mark.req("MBR-02", "MBR-01", "A11-13")
def test_the_review_gives_the_reason_the_words_and_what_the_change_touches(
    people, versions, django_assert_num_queries
) -> None:
    v1, v2 = versions
    _receive(people, "STARCH", "L-1", "10", "5")
    _receive(people, "LACTOSE", "L-9", "20")  # a material the change does not touch
    draft = services.recipe_new_version(actor=A(people["author"]), recipe=v1, reason="another idea")

    with django_assert_num_queries(4):  # audit reasons, batches, versions, stock
        review = recipe_review(a=v1, b=v2)
        assert review.affected is not None
        data = review.as_dict()

    assert data["reason_for_change"] == "Less starch: CC-2026-014"
    assert [(r["action"], r["reason"]) for r in data["reasons_recorded"]] == [
        ("created", "Less starch: CC-2026-014"),
        ("edited", "starch 5.5 kg"),
    ]
    assert data["lines"] == [
        {"tier": 1, "words": "Step 'Charge starch' (charge): STARCH quantity changed from 6.0 kg to 5.5 kg"},
        {"tier": 3, "words": "Step 'Dry blend' (mix): title changed from 'Dry mix' to 'Dry blend'"},
    ]
    assert data["affects"] == {
        "older_version": 1,
        "open_batches": [{"number": "B-1", "state": "Created"}, {"number": "B-2", "state": "Created"}],
        "other_versions": [{"id": draft.pk, "version": 3, "status": "Draft"}],
        "lots_in_stock": [
            {
                "material": "STARCH",
                "lot": "L-1",
                "status": "Quarantine",
                "quantity": "15",
                "unit": "kg",
                "containers": 2,
            }
        ],
    }


@pytest.mark.req("MBR-02")
def test_an_older_version_against_a_newer_one_reads_no_effects(people, versions) -> None:
    v1, v2 = versions
    review = recipe_review(a=v2, b=v1)
    assert review.affected is None
    assert review.comparison.lines[0].words == (
        "Step 'Charge starch' (charge): STARCH quantity changed from 5.5 kg to 6.0 kg"
    )
    assert review.reason == ""  # version 1 was imported: no reason for change stored
