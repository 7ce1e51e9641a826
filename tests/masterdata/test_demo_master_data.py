"""The demo's master data goes in as a plant's does: each item requested by one person, approved by another (issue 12)."""

from __future__ import annotations

import pytest

from batchline.approvals.models import ChangeRequest
from batchline.audit.services import Actor
from batchline.masterdata.seeding import master_seed
from batchline.masterdata.services import master_create
from batchline.materials.models import Material
from tests.configuration.test_configuration import signer

pytestmark = pytest.mark.django_db


def test_a_request_an_interrupted_seed_left_open_is_approved_not_asked_for_twice(personas) -> None:
    admin, approver = personas["admin"], personas["qa_approver"]
    lactose = {"code": "LAC-200", "name": "Lactose", "kind": "excipient", "unit": "kg"}
    left_open = master_create(
        actor=Actor.of(admin, via="cli"),
        signer=signer(admin, "requested"),
        kind="material",
        values=lactose,
        reason="demo data",
    )
    made = master_seed(
        kind="material",
        rows=[lactose, {**lactose, "code": "TAB-500", "kind": "finished", "unit": "tablet"}],
        requester=admin,
        approver=approver,
        sign=lambda username, meaning: signer(personas[username], meaning),
        reason="demo data",
        comment="demo data",
    )
    assert [m.code for m in made] == ["LAC-200", "TAB-500"]
    assert Material.objects.get(code="TAB-500").unit == "tablet"  # a finished product, counted in tablets
    left_open.refresh_from_db()
    assert left_open.state == "approved"
    assert ChangeRequest.objects.filter(kind="master_data").count() == 2
