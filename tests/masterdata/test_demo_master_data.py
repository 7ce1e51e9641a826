"""The demo's master data goes in as a plant's does: each item requested by one person, approved by another (issue 12)."""

from __future__ import annotations

import pytest

from batchline.approvals.models import ChangeRequest
from batchline.approvals.services import ChangeRefused
from batchline.audit.services import Actor
from batchline.labels.template import LABELS
from batchline.masterdata import selectors
from batchline.masterdata.definitions import KINDS
from batchline.masterdata.seeding import master_seed
from batchline.masterdata.services import master_create, model_of
from batchline.materials.models import LabelTemplate, Material
from batchline.signatures.models import Signature
from batchline.web.management.commands import demo
from tests.configuration.test_configuration import signer

pytestmark = pytest.mark.django_db

SEEDED = ("material", "equipment_class", "equipment", "qualification", "product", "label_template", "station")


@pytest.mark.req("A11-14", "LBL-01")
def test_every_item_of_the_demo_has_its_request_and_approval_signed_by_two_people(db) -> None:
    demo.seed()
    for kind in SEEDED:
        codes = list(model_of(KINDS[kind]).objects.values_list("code", flat=True))
        assert codes, kind
        for code in codes:
            view = selectors.item_view(KINDS[kind], code)
            assert view is not None
            [created] = [r for r in view["requests"] if r["operation"] == "create"]
            assert created["state"] == "approved" and created["applied_at"] is not None, (kind, code)
            signed = set(
                Signature.objects.filter(
                    record_type="approvals.changerequest", record_id=str(created["id"])
                ).values_list("signer_username", "meaning")
            )
            assert signed == {("admin", "requested"), ("approver", "approved")}, (kind, code)
            # Its own history begins with the approved request, not a bare insert.
            assert view["history"][-1]["action"] == "master_create", (kind, code)

    # Every label the plant prints has its approved template, at version 1.
    assert sorted(LabelTemplate.objects.values_list("label", "version")) == sorted((k, 1) for k in LABELS)
    requests, signatures = ChangeRequest.objects.count(), Signature.objects.count()
    demo.seed()  # a second run keeps what is there: nothing requested or signed again
    assert ChangeRequest.objects.filter(kind="master_data").exclude(state="approved").count() == 0
    assert (ChangeRequest.objects.count(), Signature.objects.count()) == (requests, signatures)


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


def test_the_seed_approves_no_open_request_that_asks_for_something_else(personas) -> None:
    admin, approver = personas["admin"], personas["qa_approver"]
    lactose = {"code": "LAC-200", "name": "Lactose", "kind": "excipient", "unit": "kg"}
    other = master_create(
        actor=Actor.of(admin, via="web"),
        signer=signer(admin, "requested"),
        kind="material",
        values={**lactose, "shelf_life_days": "9999"},
        reason="typed by hand",
    )
    with pytest.raises(
        ChangeRefused, match=f"{other.number}, an open request for material LAC-200, asks for"
    ):
        master_seed(
            kind="material",
            rows=[lactose],
            requester=admin,
            approver=approver,
            sign=lambda username, meaning: signer(personas[username], meaning),
            reason="demo data",
            comment="demo data",
        )
    other.refresh_from_db()
    assert other.state == "requested" and not Material.objects.filter(code="LAC-200").exists()
