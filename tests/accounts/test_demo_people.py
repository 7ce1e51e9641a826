"""The demo's people come about the way a plant's do: GMP roles by request and approval; nora enrols."""

from __future__ import annotations

import pytest
from django.test import Client

from batchline.accounts.models import User
from batchline.approvals.models import ChangeRequest
from batchline.signatures.models import Signature
from batchline.web.management.commands import demo

pytestmark = pytest.mark.django_db


@pytest.mark.req("P11-21", "P11-16", "A11-16")
def test_the_demo_grants_roles_through_requests_and_shows_an_enrolment(db) -> None:
    demo.seed_people()
    everyone = demo.DEMO_USERS + demo.DEMO_INTERFACES
    for username, _name, roles in everyone:
        assert User.objects.get(username=username).role_names == sorted(roles)
    # The ERP's machine account has no password: it never logs in, its documents come through a door.
    assert not User.objects.get(username="erp-sap").has_usable_password()
    granted = ChangeRequest.objects.filter(kind="role_grant", state="approved")
    # Every GMP role but the first QA approver's came by request (admin) and approval (approver),
    # the ERP interface's included.
    assert granted.count() == len([u for u, _n, r in everyone if set(r) - {"administrator", "auditor"}]) - 1
    for request in granted:
        meanings = set(
            Signature.objects.filter(
                record_type="approvals.changerequest", record_id=str(request.pk)
            ).values_list("signer_username", "meaning")
        )
        assert meanings == {("admin", "requested"), ("approver", "approved")}
    code = demo.seed_newcomer(User.objects.get(username="admin"))
    nora = User.objects.get(username="nora")
    assert code and nora.role_names == [] and not nora.has_usable_password()
    response = Client().post(
        "/enrol/",
        {
            "username": "nora",
            "code": code,
            "new_password": "granulate-blue-99",
            "new_password_again": "granulate-blue-99",
            "identity_check": "demo: badge compared",
            "verifier_username": "supervisor",
            "verifier_password": demo.DEMO_PASSWORD,
        },
    )
    assert response.status_code == 302
    assert demo.seed_newcomer(User.objects.get(username="admin")) == ""  # redeemed: no new code
