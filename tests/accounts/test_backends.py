"""The hand-written user and permission reads give exactly what Django's own backend gives."""

from __future__ import annotations

import pytest
from django.contrib.auth import backends as django_backends
from django.contrib.auth.models import Permission
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from batchline.accounts import backends
from batchline.accounts.models import User
from batchline.audit.services import Actor, record_update
from tests.conftest import PERSONAS, make_user

pytestmark = pytest.mark.django_db

OURS = backends.ModelBackend()
DJANGOS = django_backends.ModelBackend()


def fields(user: User) -> dict[str, object]:
    return {f.attname: getattr(user, f.attname) for f in User._meta.concrete_fields}


@pytest.mark.req("A11-16", "P11-04")
def test_every_role_gets_the_same_user_and_permissions_as_from_djangos_backend(personas) -> None:
    assert set(personas) == set(PERSONAS)
    for name, person in personas.items():
        ours = OURS.get_user(person.pk)
        djangos = DJANGOS.get_user(person.pk)
        assert ours is not None and djangos is not None
        assert fields(ours) == fields(djangos), name
        assert OURS.get_all_permissions(ours) == DJANGOS.get_all_permissions(djangos), name
        # Read with the person, in the same statement: checking costs no further query.
        with CaptureQueriesContext(connection) as ctx:
            ours.has_perm("execution.view_batch")
        assert not ctx.captured_queries
        # A user object that did not come through get_user reads them on first use.
        plain = User.objects.get(pk=person.pk)
        assert OURS.get_all_permissions(plain) == DJANGOS.get_all_permissions(User.objects.get(pk=person.pk))


@pytest.mark.req("A11-16")
def test_direct_grants_superusers_and_inactive_users_match_djangos_backend(db) -> None:
    nina = make_user("nina", ["operator"])
    nina.user_permissions.add(Permission.objects.get(codename="view_audit_trail"))
    assert "accounts.view_audit_trail" in OURS.get_all_permissions(OURS.get_user(nina.pk))
    assert OURS.get_all_permissions(OURS.get_user(nina.pk)) == DJANGOS.get_all_permissions(
        DJANGOS.get_user(nina.pk)
    )

    root = make_user("root", [])
    with transaction.atomic():
        record_update(root, actor=Actor(None, "test", "Test", "cli"), values={"is_superuser": True})
    assert OURS.get_all_permissions(OURS.get_user(root.pk)) == DJANGOS.get_all_permissions(
        DJANGOS.get_user(root.pk)
    )
    assert len(OURS.get_all_permissions(OURS.get_user(root.pk))) == Permission.objects.count()

    with transaction.atomic():
        record_update(nina, actor=Actor(None, "test", "Test", "cli"), values={"is_active": False})
    assert OURS.get_user(nina.pk) is None and DJANGOS.get_user(nina.pk) is None
    assert OURS.get_user(10**9) is None


@pytest.mark.req("A11-16", "P11-04")
def test_a_role_taken_away_counts_at_the_next_request(personas, login) -> None:
    from batchline.accounts.services import user_set_roles
    from batchline.signatures.services import signer_authenticate
    from tests.conftest import PASSWORD
    from tests.signatures.test_signing import station

    c = login(personas["supervisor"])
    assert c.get("/floor/").status_code == 200
    admin = personas["admin"]
    signer = signer_authenticate(
        request=station(admin), username=admin.username, password=PASSWORD, meaning="approved"
    )
    user_set_roles(
        actor=Actor.of(admin, via="web"),
        user=personas["supervisor"],
        roles=[],
        reason="moved to recipe authoring",
        signer=signer,
    )
    assert c.get("/floor/").status_code == 403


def test_a_new_permission_is_named_after_the_table_was_read(db) -> None:
    nina = make_user("nina", ["operator"])
    OURS.get_all_permissions(OURS.get_user(nina.pk))  # fills the per-process table
    from django.contrib.contenttypes.models import ContentType

    added = Permission.objects.create(
        codename="brand_new", name="Brand new", content_type=ContentType.objects.get_for_model(User)
    )
    nina.user_permissions.add(added)
    assert "accounts.brand_new" in OURS.get_all_permissions(OURS.get_user(nina.pk))
