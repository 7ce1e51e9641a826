"""Administration separated from GMP authority (issue 10, item 1; 21 CFR 11.10(g), 11.100, 11.200(a)(2)-(3), 11.300).

The reproductions of the issue: one administrator making "ghost" accounts with
GMP roles and signing as them, and resetting a real approver's password to
sign as them. Each now stops at the first step that needs a second person.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from django.test import Client, RequestFactory
from django.utils import timezone

from batchline.accounts import grants, services
from batchline.accounts.enrolment import EnrolmentRefused, enrolment_redeem
from batchline.accounts.models import Enrolment, RoleChange, User
from batchline.approvals.models import ChangeRequest
from batchline.approvals.services import ChangeRefused, change_approve, change_reject
from batchline.audit.services import Actor
from batchline.signatures.models import Meaning, Signature
from batchline.signatures.services import SignatureRefused, signer_authenticate
from tests.conftest import PASSWORD, entries, lockout_failures
from tests.signatures.test_signing import station

pytestmark = pytest.mark.django_db


def api(user: User, method: str, path: str, body: Any = None) -> Any:
    c = Client()
    c.force_login(user)
    kwargs: dict[str, Any] = {}
    if body is not None:
        kwargs = {"data": json.dumps(body), "content_type": "application/json"}
    return getattr(c, method)(f"/api/v1{path}", **kwargs)


def sign(user: User, meaning: str, password: str = PASSWORD) -> Any:
    return signer_authenticate(
        request=station(user), username=user.username, password=password, meaning=meaning
    )


def redeem(username: str, code: str, **kwargs: Any) -> User:
    return enrolment_redeem(
        request=RequestFactory().post("/enrol/"),
        username=username,
        code=code,
        new_password=kwargs.pop("new_password", "granulator-blue-48"),
        **kwargs,
    )


def request_grant(admin: User, target: User, roles: list[str]) -> ChangeRequest:
    change = services.user_set_roles(
        actor=Actor.of(admin, via="web"),
        user=target,
        roles=roles,
        reason="new duties",
        signer=sign(admin, Meaning.REQUESTED),
    )
    assert isinstance(change, ChangeRequest)
    return change


# --- the reproductions ------------------------------------------------------------


@pytest.mark.req("P11-21", "P11-07", "A11-16", "P11-16")
def test_a_ghost_account_made_through_the_api_stops_where_a_second_person_is_needed(personas, client) -> None:
    admin = personas["admin"]
    response = api(
        admin,
        "post",
        "/users",
        {
            "username": "ghost",
            "full_name": "Gus Ghost",
            "roles": ["qa_approver"],
            "reason": "needs access",
            "signature": {"username": "admin", "password": PASSWORD},
        },
    )
    assert response.status_code == 201, response.content
    body = response.json()
    # Step 1 of the attack: the administrator no longer gets a password ...
    assert "one_time_password" not in body and "password" not in json.dumps(
        body["credential"]
    ).lower().replace("not a password", "")
    assert body["credential"]["delivery"] == "station"
    assert "No mail relay is configured" in body["credential"]["notice"]
    # ... and the account has no QA authority: the grant waits for a QA approver.
    ghost = User.objects.get(username="ghost")
    assert ghost.role_names == [] and not ghost.has_usable_password()
    assert body["role_request"]["state"] == "requested"
    (requested,) = body["role_request"]["signatures"]
    assert (requested["signer_username"], requested["meaning"]) == ("admin", "requested")
    # Step 2: logging in as the ghost with the code fails; redeeming it needs a second person.
    code = body["credential"]["enrolment_code"]
    assert client.post("/login/", {"username": "ghost", "password": code}).status_code == 200
    with pytest.raises(EnrolmentRefused, match="second person must check your identity"):
        redeem("ghost", code)
    with pytest.raises(EnrolmentRefused, match="issued the code does not also check"):
        redeem("ghost", code, verifier_username="admin", verifier_password=PASSWORD, identity_check="me")
    with pytest.raises(EnrolmentRefused, match="administrator cannot check identities"):
        redeem("ghost", code, verifier_username="admin2", verifier_password=PASSWORD, identity_check="ok")
    # Step 3: approving the grant needs a QA approver who is not the requester.
    change = ChangeRequest.objects.get(pk=body["role_request"]["id"])
    with pytest.raises(ChangeRefused, match="another person must approve"):
        change_approve(actor=Actor.of(admin, via="web"), signer=sign(admin, Meaning.APPROVED), request=change)
    with pytest.raises(ChangeRefused, match="Only a QA approver"):
        change_approve(
            actor=Actor.of(personas["admin2"], via="web"),
            signer=sign(personas["admin2"], Meaning.APPROVED),
            request=change,
        )
    ghost.refresh_from_db()
    assert ghost.role_names == [] and not ghost.has_usable_password()
    assert not Signature.objects.filter(signer_id=ghost.pk).exists()


@pytest.mark.req("P11-21", "P11-16", "P11-25")
def test_a_reset_of_the_real_approver_gives_the_administrator_nothing_to_sign_with(personas, client) -> None:
    admin, approver = personas["admin"], personas["qa_approver"]
    response = api(admin, "post", f"/users/{approver.pk}/password-reset", {"reason": "forgot"})
    assert response.status_code == 200, response.content
    credential = response.json()
    assert "one_time_password" not in credential
    # The approver's old password is void at once; the code is not a password.
    for password in (PASSWORD, credential["enrolment_code"]):
        with pytest.raises(SignatureRefused):
            sign(approver, Meaning.RELEASED, password=password)
    # The administrator cannot redeem it alone, nor as the identity checker.
    with pytest.raises(EnrolmentRefused, match="second person"):
        redeem("qa_approver", credential["enrolment_code"])
    with pytest.raises(EnrolmentRefused):
        redeem(
            "qa_approver",
            credential["enrolment_code"],
            verifier_username="admin",
            verifier_password=PASSWORD,
            identity_check="trust me",
        )
    # Nor point the approver's address at themselves, to receive the next credential by mail.
    with pytest.raises(services.AccountError, match="only they change it"):
        services.user_update(
            actor=Actor.of(admin, via="web"),
            user=approver,
            full_name=approver.full_name,
            email="admin@example.com",
            reason="update",
        )
    # Nor grant themselves the approver's role: the matrix keeps it apart from administration.
    with pytest.raises(services.AccountError, match="cannot hold Engineer / administrator and QA approver"):
        services.user_set_roles(
            actor=Actor.of(personas["admin2"], via="web"),
            user=admin,
            roles=["administrator", "qa_approver"],
            reason="cover",
            signer=sign(personas["admin2"], Meaning.REQUESTED),
        )
    assert not Signature.objects.filter(signer_id=approver.pk).exists()


# --- two-person grants ---------------------------------------------------------------


@pytest.mark.req("A11-16", "P11-07", "P11-13")
def test_a_gmp_role_takes_effect_only_on_a_qa_approvers_signed_approval(personas, login) -> None:
    admin, approver, outsider = personas["admin"], personas["qa_approver"], personas["outsider"]
    change = request_grant(admin, outsider, ["operator"])
    outsider.refresh_from_db()
    assert outsider.role_names == []
    with pytest.raises(SignatureRefused, match="do not allow"):
        sign(outsider, Meaning.PERFORMED)
    change_approve(
        actor=Actor.of(approver, via="web"), signer=sign(approver, Meaning.APPROVED), request=change
    )
    outsider.refresh_from_db()
    assert outsider.role_names == ["operator"]
    assert sign(outsider, Meaning.PERFORMED).user == outsider
    (role_change,) = RoleChange.objects.filter(user=outsider)
    assert role_change.change_request_id == change.pk and role_change.changed_by_id == admin.pk
    # Both signatures are on the person's history page.
    page = login(admin).get(f"/users/{outsider.pk}/").content.decode()
    assert f"{admin.printed_name} — Requested — " in page
    assert f"{approver.printed_name} — Approved — " in page
    assert page.count("binding intact") == 2


def test_a_rejected_grant_changes_nothing(personas) -> None:
    change = request_grant(personas["admin"], personas["outsider"], ["supervisor"])
    approver = personas["qa_approver"]
    change_reject(
        actor=Actor.of(approver, via="web"),
        signer=sign(approver, Meaning.REJECTED),
        request=change,
        comment="no training record",
    )
    personas["outsider"].refresh_from_db()
    assert personas["outsider"].role_names == []


@pytest.mark.req("P11-25", "A11-16")
def test_taking_a_role_away_takes_effect_at_once(personas) -> None:
    operator = personas["operator"]
    change = services.user_set_roles(
        actor=Actor.of(personas["admin"], via="web"),
        user=operator,
        roles=[],
        reason="left the line",
        signer=sign(personas["admin"], Meaning.APPROVED),
    )
    assert isinstance(change, RoleChange)
    operator.refresh_from_db()
    assert operator.role_names == []


@pytest.mark.req("P11-07")
def test_an_administrator_is_not_given_a_gmp_signing_role_by_default(personas) -> None:
    assert ("administrator", "operator") in {tuple(p) for p in grants.current().incompatible_roles}
    with pytest.raises(
        services.AccountError, match="cannot hold Engineer / administrator and Operator together"
    ):
        request_grant(personas["admin2"], personas["admin"], ["administrator", "operator"])
    with pytest.raises(services.AccountError, match="keeps these roles apart"):
        services.user_create(
            actor=Actor.of(personas["admin"], via="web"),
            username="dual",
            full_name="Dual Role",
            roles=["administrator", "supervisor"],
            signer=sign(personas["admin"], Meaning.REQUESTED),
        )
    assert not User.objects.filter(username="dual").exists()


def test_a_grant_is_decided_through_the_page_by_a_qa_approver(personas, login) -> None:
    change = request_grant(personas["admin"], personas["outsider"], ["operator"])
    c = login(personas["qa_approver"])
    page = c.get("/users/role-requests/").content.decode()
    assert change.number in page and "Approve and sign" in page
    response = c.post(
        f"/users/role-requests/{change.pk}/approve/",
        {"signer_username": "qa_approver", "signer_password": PASSWORD, "signer_comment": ""},
    )
    assert response.status_code == 302
    personas["outsider"].refresh_from_db()
    assert personas["outsider"].role_names == ["operator"]
    # An administrator sees the page but cannot decide.
    assert "Approve and sign" not in login(personas["admin"]).get("/users/role-requests/").content.decode()
    assert login(personas["admin"]).post(f"/users/role-requests/{change.pk}/approve/", {}).status_code == 403


# --- credentials --------------------------------------------------------------------


def _create(personas, **kwargs: Any) -> tuple[User, Any]:
    user, issued = services.user_create(
        actor=Actor.of(personas["admin"], via="web"), username="nina", full_name="Nina New", **kwargs
    )
    return user, services.credential_deliver(issued)


@pytest.mark.req("P11-16", "P11-21", "A11-16")
def test_an_enrolment_code_is_redeemed_with_a_signed_identity_check(personas) -> None:
    nina, issued = _create(personas)
    nina = redeem(
        "nina",
        issued.enrolment_code.lower(),  # typed as it comes
        verifier_username="supervisor",
        verifier_password=PASSWORD,
        identity_check="company badge 4711, photo compared",
    )
    assert nina.check_password("granulator-blue-48") and not nina.must_change_password
    enrolment = Enrolment.objects.get(user=nina)
    assert enrolment.identity_checked_by == personas["supervisor"] and enrolment.redeemed_at
    (sig,) = Signature.objects.filter(record_type="accounts.enrolment", record_id=str(enrolment.pk))
    assert (sig.signer_username, sig.meaning, sig.witness) == ("supervisor", "performed", True)
    # The code works once.
    with pytest.raises(EnrolmentRefused, match="No open credential"):
        redeem(
            "nina",
            issued.enrolment_code,
            verifier_username="supervisor",
            verifier_password=PASSWORD,
            identity_check="x",
        )


@pytest.mark.parametrize(
    ("verifier", "why"),
    [("nina", "NOT_AUTHORISED|own identity|not signed"), ("operator", "may not check identities")],
)
def test_the_identity_checker_is_another_person_who_may_check(personas, verifier: str, why: str) -> None:
    nina, issued = _create(personas)
    with pytest.raises(EnrolmentRefused, match=why):
        redeem(
            "nina",
            issued.enrolment_code,
            verifier_username=verifier,
            verifier_password=PASSWORD,
            identity_check="x",
        )
    nina.refresh_from_db()
    assert not nina.has_usable_password()


def test_five_wrong_codes_void_the_credential(personas) -> None:
    _nina, issued = _create(personas)
    for attempt in range(5):
        with pytest.raises(EnrolmentRefused, match="now void" if attempt == 4 else "try again"):
            redeem("nina", "AAAA-BBBB-CCCC-DDDD")
    with pytest.raises(EnrolmentRefused, match="No open credential"):
        redeem(
            "nina",
            issued.enrolment_code,
            verifier_username="supervisor",
            verifier_password=PASSWORD,
            identity_check="x",
        )
    assert len(entries(action="enrolment_wrong_code")) == 5


def test_an_expired_code_is_refused(personas) -> None:
    _nina, issued = _create(personas)
    from batchline.audit.services import record_update

    enrolment = issued.enrolment
    with __import__("django.db").db.transaction.atomic():
        record_update(
            enrolment,
            actor=Actor.of(personas["admin"], via="cli"),
            values={"expires_at": timezone.now() - dt.timedelta(seconds=1)},
        )
    with pytest.raises(EnrolmentRefused, match="expired"):
        redeem(
            "nina",
            issued.enrolment_code,
            verifier_username="supervisor",
            verifier_password=PASSWORD,
            identity_check="x",
        )


@pytest.mark.req("P11-21", "P11-16")
def test_with_a_relay_the_code_goes_only_to_the_persons_own_address(personas, settings, mailoutbox) -> None:
    settings.BATCHLINE_MAIL_RELAY = True
    nina, issued = _create(personas, email="nina@plant.example")
    assert issued.delivery == "mail" and issued.mailed and not issued.enrolment_code
    assert "nina@plant.example" in issued.notice
    (mail,) = mailoutbox
    assert mail.to == ["nina@plant.example"]
    code = next(
        line.split(": ")[1] for line in mail.body.splitlines() if line.startswith("Your one-time code")
    )
    assert code not in issued.notice
    # Redeemed by the person alone: the mailbox is theirs.
    redeem("nina", code, new_password="tablet-press-77")
    nina.refresh_from_db()
    assert nina.check_password("tablet-press-77")


def test_with_a_relay_a_person_without_an_address_gets_an_enrolment_code(personas, settings) -> None:
    settings.BATCHLINE_MAIL_RELAY = True
    _nina, issued = _create(personas)
    assert issued.delivery == "station" and issued.enrolment_code and "no e-mail address" in issued.notice


@pytest.mark.req("P11-26")
def test_redeeming_a_reset_unlocks_the_account_on_the_record(personas) -> None:
    c = Client(REMOTE_ADDR="10.0.0.66")  # the person's own attempts: this station is blocked as well
    for _ in range(lockout_failures()):
        c.post("/login/", {"username": "operator", "password": "wrong"})
    issued = services.user_reset_password(
        actor=Actor.of(personas["admin"], via="web"), user=personas["operator"], reason="locked out"
    )
    redeem(
        "operator",
        issued.enrolment_code,
        verifier_username="supervisor",
        verifier_password=PASSWORD,
        identity_check="known in person",
    )
    assert (
        Client().post("/login/", {"username": "operator", "password": "granulator-blue-48"}).status_code
        == 302
    )
    assert "credential redeemed" in entries(action="unlock")[-1].reason


def test_the_enrolment_page_redeems_a_code(personas) -> None:
    _nina, issued = _create(personas)
    c = Client()
    response = c.post(
        "/enrol/",
        {
            "username": "nina",
            "code": issued.enrolment_code,
            "new_password": "tablet-press-77",
            "new_password_again": "tablet-press-77",
            "identity_check": "badge",
            "verifier_username": "supervisor",
            "verifier_password": PASSWORD,
        },
    )
    assert response.status_code == 302
    assert c.post("/login/", {"username": "nina", "password": "tablet-press-77"}).status_code == 302
    wrong = Client().post(
        "/enrol/", {"username": "nina", "code": "x", "new_password": "a", "new_password_again": "a"}
    )
    assert wrong.status_code == 422 and "No open credential" in wrong.content.decode()


@pytest.mark.req("P11-24")
def test_after_a_reset_the_old_password_cannot_be_chosen_again(personas) -> None:
    issued = services.user_reset_password(
        actor=Actor.of(personas["admin"], via="web"), user=personas["operator"], reason="forgot"
    )
    with pytest.raises(EnrolmentRefused, match="used recently"):
        redeem(
            "operator",
            issued.enrolment_code,
            new_password=PASSWORD,
            verifier_username="supervisor",
            verifier_password=PASSWORD,
            identity_check="known in person",
        )


def test_the_console_administrator_has_no_open_credential_beside_the_typed_password(db) -> None:
    root = User.objects.create_superuser(
        username="root", email="", password="console-typed-9", full_name="Ro Ot"
    )
    assert not Enrolment.objects.filter(user=root, void_at__isnull=True).exists()
    assert root.role_names == ["administrator"]


def test_the_users_page_shows_what_waits_for_a_second_person(personas, login) -> None:
    _create(personas)
    request_grant(personas["admin"], personas["outsider"], ["operator"])
    page = login(personas["admin"]).get("/users/").content.decode()
    assert page.count("role waits for QA") == 1 and page.count("credential not redeemed") == 1
