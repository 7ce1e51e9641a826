"""Electronic signatures (21 CFR 11.50, 11.70, 11.100, 11.200, 11.300)."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction
from django.http import HttpRequest
from django.test import Client, RequestFactory

from batchline.accounts import services
from batchline.accounts.enrolment import enrolment_redeem
from batchline.accounts.models import RoleChange, User
from batchline.audit.services import Actor
from batchline.signatures.models import Meaning, Method, Signature
from batchline.signatures.services import (
    SESSION_KEY,
    SignatureRefused,
    signature_intact,
    signer_authenticate,
    signing_session_open,
    username_required,
)
from tests.conftest import PASSWORD, entries, lockout_failures, make_user

pytestmark = pytest.mark.django_db


def station(user: User, client: Client | None = None) -> HttpRequest:
    """A request from ``user``'s logged-in station, with a real session."""
    c = client or Client()
    c.force_login(user)
    request = RequestFactory().post("/users/1/roles/")
    request.user = user
    request.session = c.session
    return request


def sign_roles(admin: User, target: User, roles: list[str], request: HttpRequest, **creds) -> RoleChange:
    """As the page does it: authenticate, run the signed service, then open the signing session."""
    signer = signer_authenticate(request=request, meaning=Meaning.APPROVED, **creds)
    change = services.user_set_roles(
        actor=Actor.of(admin, via="web"), user=target, roles=roles, reason="new duties", signer=signer
    )
    signing_session_open(signer)
    return change


@pytest.mark.req("P11-13", "P11-14", "A11-18", "A11-16")
def test_a_signed_role_change_stores_the_manifestation_and_binding(personas) -> None:
    admin, operator = personas["admin"], personas["operator"]
    change = sign_roles(
        admin, operator, ["auditor", "operator"], station(admin), username="admin", password=PASSWORD
    )
    (sig,) = Signature.objects.filter(record_type="accounts.rolechange", record_id=str(change.pk))
    assert (sig.signer_id, sig.signer_name, sig.meaning, sig.method) == (
        admin.pk,
        admin.printed_name,
        "approved",
        Method.ID_AND_PASSWORD,
    )
    assert sig.manifestation().startswith(f"{admin.printed_name} — Approved — ")
    assert sig.manifestation().endswith("UTC")
    assert signature_intact(sig, change.signed_content())
    operator.refresh_from_db()
    assert operator.role_names == ["auditor", "operator"]
    assert [e.action for e in entries()][-3:] == ["roles", "create", "sign"]


@pytest.mark.req("P11-14")
def test_the_binding_breaks_when_the_signed_content_changes(personas) -> None:
    admin, operator = personas["admin"], personas["operator"]
    change = sign_roles(admin, operator, ["auditor"], station(admin), username="admin", password=PASSWORD)
    sig = Signature.objects.get(record_id=str(change.pk), record_type="accounts.rolechange")
    with connection.cursor() as cursor:
        cursor.execute("UPDATE accounts_rolechange SET reason = 'something else' WHERE id = %s", [change.pk])
    change.refresh_from_db()
    assert not signature_intact(sig, change.signed_content())


@pytest.mark.req("P11-14")
def test_the_page_shows_a_broken_binding(personas, login) -> None:
    admin, operator = personas["admin"], personas["operator"]
    change = sign_roles(admin, operator, ["auditor"], station(admin), username="admin", password=PASSWORD)
    c = login(personas["admin2"])
    assert "binding intact" in c.get(f"/users/{operator.pk}/").content.decode()
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE accounts_rolechange SET roles_after = '[\"qa_approver\"]' WHERE id = %s", [change.pk]
        )
    assert "BROKEN" in c.get(f"/users/{operator.pk}/").content.decode()


@pytest.mark.req("P11-14", "P11-05")
@pytest.mark.parametrize(
    "statement", ["UPDATE signatures_signature SET meaning = 'released'", "DELETE FROM signatures_signature"]
)
def test_the_database_refuses_to_change_or_remove_a_signature(personas, statement: str) -> None:
    sign_roles(
        personas["admin"],
        personas["operator"],
        ["auditor"],
        station(personas["admin"]),
        username="admin",
        password=PASSWORD,
    )
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(statement)


@pytest.mark.req("P11-18", "P11-19")
def test_first_signing_of_a_session_needs_id_and_password_then_password_only(personas) -> None:
    admin = personas["admin"]
    request = station(admin)
    assert username_required(request)
    with pytest.raises(SignatureRefused) as refused:
        signer_authenticate(request=request, password=PASSWORD, meaning=Meaning.APPROVED)
    assert refused.value.code == "USERNAME_REQUIRED"
    sign_roles(admin, personas["operator"], ["auditor"], request, username="admin", password=PASSWORD)
    assert request.session[SESSION_KEY] == admin.pk
    assert not username_required(request)
    second = signer_authenticate(request=request, password=PASSWORD, meaning=Meaning.APPROVED)
    assert second.method == Method.PASSWORD
    (first_sig,) = Signature.objects.all()
    assert first_sig.method == Method.ID_AND_PASSWORD


@pytest.mark.req("P11-19")
def test_a_new_session_starts_over_with_id_and_password(personas) -> None:
    admin = personas["admin"]
    request = station(admin)
    sign_roles(admin, personas["operator"], ["auditor"], request, username="admin", password=PASSWORD)
    assert not username_required(request)
    assert username_required(station(admin))  # a fresh login is a fresh session


@pytest.mark.req("P11-18", "P11-19")
def test_a_refused_action_does_not_count_as_the_first_signing(personas) -> None:
    admin = personas["admin"]
    request = station(admin)
    with pytest.raises(services.AccountError):
        # "already the user's roles": refused after the signer authenticated
        sign_roles(admin, personas["operator"], ["operator"], request, username="admin", password=PASSWORD)
    assert username_required(request)


@pytest.mark.req("P11-20", "DV-01")
def test_a_witness_at_someone_elses_station_always_gives_id_and_password(personas) -> None:
    operator, supervisor = personas["operator"], personas["supervisor"]
    request = station(operator)
    request.session[SESSION_KEY] = operator.pk  # the operator has signed at this station already
    assert not username_required(request)
    assert username_required(request, witness=True)
    with pytest.raises(SignatureRefused, match="user ID"):
        signer_authenticate(request=request, password=PASSWORD, meaning=Meaning.VERIFIED, witness=True)
    witness = signer_authenticate(
        request=request, username="supervisor", password=PASSWORD, meaning=Meaning.VERIFIED, witness=True
    )
    assert (witness.user, witness.witness, witness.method) == (supervisor, True, Method.ID_AND_PASSWORD)
    # A witness's signature never opens a continuous session at someone else's station.
    assert witness.session is None


def test_the_witness_is_not_the_person_at_the_station(personas) -> None:
    request = station(personas["operator"])
    with pytest.raises(SignatureRefused) as refused:
        signer_authenticate(
            request=request, username="operator", password=PASSWORD, meaning=Meaning.VERIFIED, witness=True
        )
    assert refused.value.code == "WITNESS_SAME_PERSON"


@pytest.mark.req("P11-21", "P11-26")
def test_nobody_signs_as_someone_else_and_the_attempt_is_recorded_against_who_tried(personas) -> None:
    admin = personas["admin"]
    request = station(admin)
    with pytest.raises(SignatureRefused) as refused:
        signer_authenticate(
            request=request, username="qa_approver", password=PASSWORD, meaning=Meaning.APPROVED
        )
    assert refused.value.code == "SIGN_AS_OTHER"
    (entry,) = entries(action="sign_as_other_refused")
    assert (entry.actor_username, entry.actor_id, entry.record_id) == ("admin", admin.pk, str(admin.pk))
    assert "tried to sign as 'qa_approver'" in entry.reason
    # Nothing is recorded under the victim's name.
    assert not entries(actor_username="qa_approver")


@pytest.mark.req("P11-21")
def test_after_a_reset_nobody_signs_until_the_person_redeems_their_credential(personas) -> None:
    operator = personas["operator"]
    issued = services.user_reset_password(
        actor=Actor.of(personas["admin"], via="web"), user=operator, reason="forgot"
    )
    for password in (PASSWORD, issued.enrolment_code):  # the old password is void; the code is no password
        with pytest.raises(SignatureRefused) as refused:
            signer_authenticate(
                request=station(operator), username="operator", password=password, meaning=Meaning.PERFORMED
            )
        assert refused.value.code == "BAD_CREDENTIALS"
    enrolment_redeem(
        request=RequestFactory().post("/enrol/"),
        username="operator",
        code=issued.enrolment_code,
        new_password="mixer-green-2031",
        verifier_username="supervisor",
        verifier_password=PASSWORD,
        identity_check="badge 4711 compared with the person",
    )
    signer = signer_authenticate(
        request=station(operator), username="operator", password="mixer-green-2031", meaning=Meaning.PERFORMED
    )
    assert signer.user == operator


@pytest.mark.req("P11-10", "P11-16")
def test_signing_is_enabled_only_after_the_acknowledgement(db) -> None:
    nina = make_user("nina", ["operator"])
    from batchline.audit.services import record_update

    with transaction.atomic():
        record_update(nina, actor=Actor.of(nina, via="cli"), values={"esig_acknowledged_at": None})
    with pytest.raises(SignatureRefused) as refused:
        signer_authenticate(
            request=station(nina), username="nina", password=PASSWORD, meaning=Meaning.PERFORMED
        )
    assert refused.value.code == "ESIG_NOT_ACKNOWLEDGED"


@pytest.mark.req("P11-07")
def test_each_meaning_needs_its_permission(personas) -> None:
    with pytest.raises(SignatureRefused) as refused:
        signer_authenticate(
            request=station(personas["operator"]),
            username="operator",
            password=PASSWORD,
            meaning=Meaning.RELEASED,
        )
    assert refused.value.code == "NOT_AUTHORISED"
    ok = signer_authenticate(
        request=station(personas["qa_approver"]),
        username="qa_approver",
        password=PASSWORD,
        meaning=Meaning.RELEASED,
    )
    assert ok.user == personas["qa_approver"]


@pytest.mark.req("P11-26")
def test_failed_signatures_count_towards_lockout(personas, settings) -> None:
    request = station(personas["operator"])
    for _ in range(lockout_failures()):
        with pytest.raises(SignatureRefused) as refused:
            signer_authenticate(
                request=request, username="operator", password="not-it", meaning=Meaning.PERFORMED
            )
        assert refused.value.code == "BAD_CREDENTIALS"
    assert [e.action for e in entries(actor_username="operator")].count(
        "signature_failed"
    ) == lockout_failures()
    assert entries(action="lockout")
    with pytest.raises(SignatureRefused):  # the right password no longer signs
        signer_authenticate(
            request=request, username="operator", password=PASSWORD, meaning=Meaning.PERFORMED
        )
    assert Client().post("/login/", {"username": "operator", "password": PASSWORD}).status_code == 403


def test_a_failed_signature_writes_nothing_but_the_record_of_the_refusal(personas) -> None:
    admin, operator = personas["admin"], personas["operator"]
    roles_before, signatures_before = operator.role_names, Signature.objects.count()
    with pytest.raises(SignatureRefused):
        sign_roles(admin, operator, ["qa_approver"], station(admin), username="admin", password="wrong")
    operator.refresh_from_db()
    assert operator.role_names == roles_before
    assert Signature.objects.count() == signatures_before
    assert not RoleChange.objects.exists()
    assert entries()[-1].action == "signature_failed"


def test_signing_needs_a_transaction_for_the_signature_itself(personas) -> None:
    from batchline.signatures.services import signature_apply

    signer = signer_authenticate(
        request=station(personas["admin"]), username="admin", password=PASSWORD, meaning=Meaning.APPROVED
    )
    # inside the test's transaction this is allowed; the guard is for code outside any transaction
    change_count = Signature.objects.count()
    with transaction.atomic():
        signature_apply(
            signer=signer,
            meaning="approved",
            record=personas["operator"],
            content={"x": 1},
            actor=Actor.of(personas["admin"], via="web"),
        )
    assert Signature.objects.count() == change_count + 1
