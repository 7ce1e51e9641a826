"""A batch's output lot: its expiry from the product's shelf life, counted from the start of manufacture.

Never made up: before the batch starts, or for a product without a shelf life in
its master data, the lot has no expiry, says so, is not usable and is never
called expired; a batch whose output lot has no expiry is not released (21 CFR
211.137) until QA sets one with a signature.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from batchline.audit.models import AuditEntry
from batchline.audit.verify import verify
from batchline.execution import services as ex
from batchline.execution.models import BatchException, BatchStep
from batchline.materials import services as stock
from batchline.materials.selectors import output_lot
from batchline.quality.services import QualityRefused
from batchline.rules import materials as rules
from tests.conftest import make_user
from tests.execution.test_engine import A, effective_recipe, new_batch, sign, start
from tests.quality.test_quality_services import disposition, finish, stage
from tests.recipes.test_recipe_services import SMALL

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(db):
    return {
        "author": make_user("author", ["recipe_author"]),
        "approver": make_user("approver", ["qa_approver"]),
        "supervisor": make_user("supervisor", ["supervisor"]),
        "supervisor2": make_user("supervisor2", ["supervisor"]),
        "reviewer": make_user("reviewer", ["qa_reviewer"]),
        "operator": make_user("operator", ["operator"]),
        "operator2": make_user("operator2", ["operator"]),
        "warehouse": make_user("warehouse", ["warehouse"]),
    }


def product(people, shelf_life_days):
    stock.material_create(
        actor=A(people["warehouse"]),
        code="TST",
        name="Test tablets 100 mg",
        kind="finished",
        unit="tablet",
        shelf_life_days=shelf_life_days,
    )


@pytest.mark.req("GEN-01", "MAT-02", "P11-05")
def test_a_produced_lot_expires_its_shelf_life_after_its_batch_started_never_before(people, client) -> None:
    product(people, 1095)  # 36 months, as days
    recipe = effective_recipe(people, SMALL)
    batch = new_batch(people, recipe)
    lot = output_lot(batch.number)
    assert lot is not None and lot.expires_at is None  # manufacture has not started: no date to count from
    assert rules.lot_usable(lot.view(), timezone.now()).codes == ["LOT_IN_QUARANTINE", "LOT_NO_EXPIRY"]
    client.force_login(people["warehouse"])
    page = client.get(f"/lots/{lot.pk}/").content.decode()
    assert "expiry not set yet: 1095 days" in page and "expired" not in page
    listing = client.get("/lots/").content.decode()
    assert "0 tablet" in listing and "None" not in listing  # a lot with no containers holds 0, not None

    start(people, batch, "clearance")
    started = BatchStep.objects.get(batch=batch, key="clearance").started_at
    lot.refresh_from_db()
    assert lot.expires_at == started + dt.timedelta(days=1095)
    entry = AuditEntry.objects.filter(
        record_type="materials.lot", record_id=str(lot.pk), action="expiry"
    ).get()
    assert "date of manufacture: batch B-001 started" in entry.reason and "1095 days" in entry.reason
    assert rules.lot_usable(lot.view(), timezone.now()).codes == ["LOT_IN_QUARANTINE"]
    page = client.get(f"/lots/{lot.pk}/").content.decode()
    assert f"expires {timezone.localtime(lot.expires_at):%Y-%m-%d}" in page and "expired" not in page
    assert verify().ok


@pytest.mark.req("MAT-02", "RBE-07", "P11-14")
def test_a_product_without_shelf_life_makes_a_lot_without_expiry_that_is_not_released_until_qa_sets_one(
    people, client
) -> None:
    recipe = effective_recipe(people, SMALL)  # TST is not in the master data: registered without a shelf life
    batch = finish(people, new_batch(people, recipe))
    lot = output_lot(batch.number)
    assert lot is not None and lot.expires_at is None  # the batch ran: still nothing to count from
    verdict = rules.lot_usable(lot.view(), timezone.now())
    assert "LOT_NO_EXPIRY" in verdict.codes and "LOT_EXPIRED" not in verdict.codes
    client.force_login(people["warehouse"])
    page = client.get(f"/lots/{lot.pk}/").content.decode()
    assert "no expiry date: TST has no shelf life in its master data" in page and "expired" not in page

    if open_ := list(
        BatchException.objects.filter(batch=batch, disposition__isnull=True).values_list("id", flat=True)
    ):
        disposition(people, open_)
    stage(people, batch, "production_review", "supervisor")
    stage(people, batch, "qa_review", "reviewer")
    with pytest.raises(QualityRefused) as refused:
        stage(people, batch, "released", "approver")
    assert refused.value.verdict.codes == ["OUTPUT_LOT_NO_EXPIRY"]
    batch.refresh_from_db()
    assert batch.state == "in_review" and output_lot(batch.number).status == "quarantine"

    expiry = timezone.now() + dt.timedelta(days=365)
    stock.lot_expiry_correct(
        actor=A(people["approver"]),
        lot=lot,
        expires_at=expiry,
        signer=sign(people["approver"], "approved"),
        reason="stability study ST-12: 12 months",
    )
    stage(people, batch, "released", "approver")
    lot.refresh_from_db()
    assert (lot.status, lot.expires_at) == ("released", expiry)
    assert verify().ok


@pytest.mark.req("MAT-02")
def test_an_expiry_qa_set_before_the_batch_started_is_kept(people) -> None:
    product(people, 30)
    recipe = effective_recipe(people, SMALL)
    batch = new_batch(people, recipe)
    lot = output_lot(batch.number)
    assert lot is not None
    expiry = timezone.now() + dt.timedelta(days=10)
    stock.lot_expiry_correct(
        actor=A(people["approver"]),
        lot=lot,
        expires_at=expiry,
        signer=sign(people["approver"], "approved"),
        reason="customer order: shorter dating",
    )
    ex.step_start(actor=A(people["operator"]), user=people["operator"], batch=batch, step_key="clearance")
    lot.refresh_from_db()
    assert lot.expires_at == expiry
