"""Accounts: never deleted, unique IDs, passwords, lockout, sessions (21 CFR 11.100, 11.300; Annex 11 §12)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.db import transaction
from django.test import Client, RequestFactory
from django.utils import timezone

from batchline.accounts import services
from batchline.accounts.middleware import LAST_ACTIVITY
from batchline.accounts.models import User
from batchline.audit.models import AuditBypassError
from batchline.audit.services import Actor, ReasonRequired
from batchline.configuration.selectors import current
from tests.conftest import PASSWORD, configure, entries, lockout_failures, make_user

pytestmark = pytest.mark.django_db


def admin_actor(personas) -> Actor:
    return Actor.of(personas["admin"], via="web")


@pytest.mark.req("P11-15", "P11-23", "A11-16", "P11-21")
def test_a_new_user_gets_no_usable_password_and_its_creation_is_audited(personas) -> None:
    user, issued = services.user_create(
        actor=admin_actor(personas), username="nina", full_name="Nina New", roles=["auditor"], reason="hired"
    )
    assert user.must_change_password and not user.has_usable_password()
    assert issued.delivery == "station" and issued.enrolment_code
    assert not user.check_password(issued.enrolment_code)  # the code is not a password
    assert user.role_names == ["auditor"]  # no GMP signing authority: set at once
    actions = [e.action for e in entries(record_type="accounts.user", record_id=str(user.pk))]
    assert actions == ["create", "roles", "credential_issue"]
    create = entries(record_type="accounts.user", record_id=str(user.pk))[0]
    # The password hash never lands in the trail; a digest of it does, so a swap is found.
    assert user.password not in create.changes
    assert json.loads(create.changes)["password"][1].startswith("sha256:")


@pytest.mark.req("P11-15", "P11-23")
def test_a_username_is_never_reused_even_after_deactivation(personas) -> None:
    services.user_deactivate(
        actor=admin_actor(personas), user=personas["operator"], reason="left the company"
    )
    with pytest.raises(services.AccountError, match="never reused"):
        services.user_create(actor=admin_actor(personas), username="OPERATOR", full_name="Someone Else")


@pytest.mark.req("P11-15", "DI-01", "P11-03", "A11-13")
def test_accounts_are_deactivated_never_deleted(personas) -> None:
    operator = personas["operator"]
    with pytest.raises(AuditBypassError):
        operator.delete()
    with pytest.raises(AuditBypassError):
        User.objects.filter(pk=operator.pk).delete()
    with pytest.raises(ReasonRequired):
        services.user_deactivate(actor=admin_actor(personas), user=operator, reason="")
    services.user_deactivate(actor=admin_actor(personas), user=operator, reason="left")
    operator.refresh_from_db()
    assert not operator.is_active
    last = entries(record_type="accounts.user", record_id=str(operator.pk))[-1]
    assert (last.action, last.reason, json.loads(last.changes)) == (
        "deactivate",
        "left",
        {"is_active": [True, False]},
    )


def test_a_deactivated_user_cannot_log_in(personas) -> None:
    services.user_deactivate(actor=admin_actor(personas), user=personas["operator"], reason="left")
    response = Client().post("/login/", {"username": "operator", "password": PASSWORD})
    assert response.status_code == 200 and b"wrong" in response.content


@pytest.mark.req("P11-25")
def test_deactivation_ends_the_users_sessions(personas, login) -> None:
    c = login(personas["operator"])
    assert c.get("/").status_code == 200
    services.user_deactivate(actor=admin_actor(personas), user=personas["operator"], reason="left")
    assert c.get("/").status_code == 302


def test_nobody_deactivates_themselves(personas) -> None:
    with pytest.raises(services.AccountError):
        services.user_deactivate(actor=admin_actor(personas), user=personas["admin"], reason="oops")


@pytest.mark.req("P11-24")
@pytest.mark.parametrize(
    ("new", "why"),
    [
        ("short1!", "too short"),
        ("password123", "too common"),
        ("operator-operator", "too similar"),
        ("1234567890123", "entirely numeric"),
        (PASSWORD, "must differ"),
    ],
)
def test_the_password_policy_refuses_weak_passwords(personas, new: str, why: str) -> None:
    operator = personas["operator"]
    with pytest.raises(services.AccountError, match=why):
        services.password_change(
            request=RequestFactory().post("/password/"),
            user=operator,
            old_password=PASSWORD,
            new_password=new,
            actor=Actor.of(operator, via="web"),
        )
    operator.refresh_from_db()
    assert operator.check_password(PASSWORD)


@pytest.mark.req("P11-24")
def test_recent_passwords_cannot_be_reused(personas) -> None:
    operator = personas["operator"]
    actor = Actor.of(operator, via="web")
    services.password_change(
        request=RequestFactory().post("/password/"),
        user=operator,
        old_password=PASSWORD,
        new_password="granulator-blue-41",
        actor=actor,
    )
    with pytest.raises(services.AccountError, match="used recently"):
        services.password_change(
            request=RequestFactory().post("/password/"),
            user=operator,
            old_password="granulator-blue-41",
            new_password=PASSWORD,
            actor=actor,
        )


@pytest.mark.req("P11-24")
def test_a_password_change_is_audited_without_the_password(personas) -> None:
    operator = personas["operator"]
    services.password_change(
        request=RequestFactory().post("/password/"),
        user=operator,
        old_password=PASSWORD,
        new_password="granulator-blue-41",
        actor=Actor.of(operator, via="web"),
    )
    last = entries(record_type="accounts.user", record_id=str(operator.pk))[-1]
    assert last.action == "password_change"
    old, new = json.loads(last.changes)["password"]
    assert old != new and old.startswith("sha256:") and new.startswith("sha256:")
    operator.refresh_from_db()
    assert "granulator" not in last.changes and operator.password not in last.changes


@pytest.mark.req("P11-24", "P11-21")
def test_a_password_typed_at_the_console_must_be_changed_before_anything_else(db) -> None:
    User.objects.create_superuser(username="root", email="", password="console-typed-9", full_name="Ro Ot")
    c = Client()
    assert c.post("/login/", {"username": "root", "password": "console-typed-9"}).status_code == 302
    assert c.get("/").url == "/password/"
    assert c.get("/audit/").url == "/password/"
    response = c.post(
        "/password/",
        {
            "old_password": "console-typed-9",
            "new_password": "tablet-press-77",
            "new_password_again": "tablet-press-77",
        },
    )
    assert response.status_code == 302
    assert c.get("/").status_code == 200


@pytest.mark.req("P11-24", "P11-11")
def test_an_expired_password_forces_a_change(personas, login) -> None:
    configure(password_max_age_days=30)  # the GMP configuration in force, not the environment
    operator = personas["operator"]
    from batchline.audit.services import record_update

    with transaction.atomic():
        record_update(
            operator,
            actor=Actor.of(operator, via="cli"),
            values={"password_changed_at": timezone.now() - dt.timedelta(days=31)},
        )
    c = login(operator)
    assert c.get("/").url == "/password/"


# --- lockout --------------------------------------------------------------------


@pytest.mark.req("P11-26", "A11-16")
def test_five_failed_logins_lock_the_account_and_are_reported(personas, settings) -> None:
    c = Client()
    for _ in range(lockout_failures()):
        c.post("/login/", {"username": "operator", "password": "wrong-password"})
    operator = personas["operator"]
    actions = [e.action for e in entries(record_type="accounts.user", record_id=str(operator.pk))]
    assert actions.count("login_failed") == lockout_failures()
    assert "lockout" in actions
    # Even the right password no longer gets in.
    response = c.post("/login/", {"username": "operator", "password": PASSWORD})
    assert response.status_code == 403 and b"locked" in response.content
    # The administrators see it (from their own station: this one is blocked too).
    admin = Client(REMOTE_ADDR="10.0.0.9")
    admin.post("/login/", {"username": "admin", "password": PASSWORD})
    home = admin.get("/").content.decode()
    assert "1 account locked" in home and "operator" in home
    events = admin.get("/security/").content.decode()
    assert "lockout" in events


@pytest.mark.req("P11-26")
def test_an_administrator_unlocks_with_a_reason(personas, settings) -> None:
    c = Client()
    for _ in range(lockout_failures()):
        c.post("/login/", {"username": "operator", "password": "wrong-password"})
    services.user_unlock(
        actor=admin_actor(personas), user=personas["operator"], reason="identity checked in person"
    )
    assert c.post("/login/", {"username": "operator", "password": PASSWORD}).status_code == 302
    assert entries(action="unlock")[-1].reason == "identity checked in person"


@pytest.mark.req("P11-26")
def test_failed_logins_of_unknown_users_are_recorded_too(db) -> None:
    Client().post("/login/", {"username": "nobody", "password": "x"})
    (entry,) = entries(action="login_failed")
    assert (entry.actor_username, entry.actor_id) == ("nobody", None)


# --- sessions ------------------------------------------------------------------


@pytest.mark.req("A11-16", "DI-01")
def test_login_and_logout_are_audited(personas, login) -> None:
    c = login(personas["operator"])
    c.post("/logout/")
    actions = [e.action for e in entries(actor_username="operator")]
    assert actions[-2:] == ["login", "logout"]


@pytest.mark.req("P11-04")
def test_an_idle_session_ends_on_the_server_clock(personas, login, settings) -> None:
    c = login(personas["operator"])
    assert c.get("/").status_code == 200
    session = c.session
    session[LAST_ACTIVITY] = session[LAST_ACTIVITY] - current().idle_timeout_seconds - 1
    session.save()
    response = c.get("/")
    assert response.status_code == 302 and response.url == "/login/?timeout=1&next=%2F"
    assert c.get("/").url.startswith("/login/")
    assert entries(actor_username="operator")[-1].action == "session_timeout"


class Clock:
    """Stands in for the idle-timeout middleware's ``time`` module: the test turns the hands."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def time(self) -> float:
        return self.now


@pytest.mark.req("P11-04")
def test_the_idle_clock_is_written_at_most_every_30_seconds_and_never_late(
    personas, login, settings, monkeypatch
) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from batchline.accounts import middleware

    clock = Clock()
    monkeypatch.setattr(middleware, "time", clock)
    step = middleware.idle_activity_granularity(current().idle_timeout_seconds)
    assert step == 30
    c = login(personas["operator"])
    start = clock.now
    assert c.get("/").status_code == 200
    assert c.session[LAST_ACTIVITY] == start

    # Within the granularity a request reads the session and does not write it.
    clock.now = start + step - 1
    with CaptureQueriesContext(connection) as ctx:
        assert c.get("/").status_code == 200
    assert not [q for q in ctx.captured_queries if "django_session" in q["sql"] and "UPDATE" in q["sql"]]
    assert c.session[LAST_ACTIVITY] == start

    # Once the clock has moved by the granularity, the request writes it.
    clock.now = start + step
    assert c.get("/").status_code == 200
    assert c.session[LAST_ACTIVITY] == start + step

    # The last request, at start + 2 * step - 1, is not recorded, so idleness counts from
    # start + step: the session ends less than one granularity before the timeout, never after it.
    last_request = start + 2 * step - 1
    clock.now = last_request
    assert c.get("/").status_code == 200
    timeout = current().idle_timeout_seconds
    clock.now = start + step + timeout + 1
    assert timeout - step < clock.now - last_request < timeout
    response = c.get("/")
    assert response.status_code == 302 and response.url == "/login/?timeout=1&next=%2F"
    assert entries(actor_username="operator")[-1].action == "session_timeout"


@pytest.mark.req("P11-04")
def test_an_expired_session_is_not_read(personas, login) -> None:
    from django.contrib.sessions.models import Session

    c = login(personas["operator"])
    assert c.get("/").status_code == 200
    key = c.cookies["sessionid"].value
    Session.objects.filter(session_key=key).update(expire_date=timezone.now() - dt.timedelta(seconds=1))
    response = c.get("/")
    assert response.status_code == 302 and response.url.startswith("/login/")


@pytest.mark.req("P11-04")
def test_an_active_session_stays(personas, login) -> None:
    c = login(personas["operator"])
    for _ in range(3):
        assert c.get("/").status_code == 200


@pytest.mark.req("P11-10")
def test_the_esig_statement_is_acknowledged_once_with_time(db, login) -> None:
    nina = make_user("nina", ["operator"])
    from batchline.audit.services import record_update

    with transaction.atomic():
        record_update(nina, actor=Actor.of(nina, via="cli"), values={"esig_acknowledged_at": None})
    c = login(nina)
    assert "not enabled yet" in c.get("/").content.decode()
    assert c.post("/esig/acknowledge/", {}).status_code == 422
    assert c.post("/esig/acknowledge/", {"agree": "yes"}).status_code == 302
    nina.refresh_from_db()
    assert nina.esig_acknowledged_at is not None
    assert entries(action="esig_acknowledge")[-1].actor_username == "nina"


@pytest.mark.req("P11-26")
def test_a_lockout_alert_is_on_without_any_mail_configuration(personas) -> None:
    from batchline.accounts.alerts import alerts_open

    c = Client(REMOTE_ADDR="10.0.0.7")
    for _ in range(lockout_failures()):
        c.post("/login/", {"username": "operator", "password": "wrong-password"})
    kinds = {a.kind: a for a in alerts_open()}
    assert "operator" in kinds["account_locked"].message
    assert "10.0.0.7" in kinds["address_locked"].message
    # Every security administrator and auditor sees it in the application.
    for reader in ("admin", "auditor"):
        page = Client(REMOTE_ADDR="10.0.0.8")
        page.post("/login/", {"username": reader, "password": PASSWORD})
        assert "locked after" in page.get("/").content.decode()


@pytest.mark.req("P11-26")
def test_a_lockout_alerts_the_security_unit_by_mail_where_a_relay_is_configured(
    personas, settings, mailoutbox, django_capture_on_commit_callbacks
) -> None:
    settings.BATCHLINE_MAIL_RELAY = True
    settings.ADMINS = [("Security unit", "security@plant.example")]
    c = Client(REMOTE_ADDR="10.0.0.7")
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(lockout_failures()):
            c.post("/login/", {"username": "operator", "password": "wrong-password"})
    subjects = [m.subject for m in mailoutbox]
    assert len(mailoutbox) == 2, subjects  # the account, and the address
    assert all(m.to == ["security@plant.example"] for m in mailoutbox)
    assert any("Account 'operator' locked" in s for s in subjects)


@pytest.mark.req("P11-26")
def test_guessing_the_current_password_on_the_change_form_counts_towards_lockout(
    personas, login, settings
) -> None:
    c = login(personas["operator"])
    for _ in range(lockout_failures()):
        response = c.post(
            "/password/",
            {
                "old_password": "guess",
                "new_password": "tablet-press-77",
                "new_password_again": "tablet-press-77",
            },
        )
        assert response.status_code in (403, 422)
    actions = [e.action for e in entries(record_type="accounts.user", record_id=str(personas["operator"].pk))]
    assert actions.count("password_change_failed") == lockout_failures()
    assert "lockout" in actions


@pytest.mark.req("P11-26", "P11-25")
def test_a_lockout_ends_open_sessions_and_stops_tokens(personas, login, settings) -> None:
    from batchline.accounts.models import ApiToken

    operator = personas["operator"]
    c = login(operator)
    _, raw = services.token_create(actor=Actor.of(operator, via="web"), user=operator, name="script")
    assert Client().get("/api/v1/me", headers={"Authorization": f"Bearer {raw}"}).status_code == 200
    for _ in range(lockout_failures()):
        Client().post("/login/", {"username": "operator", "password": "wrong-password"})
    assert c.get("/").status_code == 302  # the open session is gone
    assert Client().get("/api/v1/me", headers={"Authorization": f"Bearer {raw}"}).status_code == 401
    assert [e.action for e in entries(action="lockout")] == ["lockout"]
    Client().post("/login/", {"username": "operator", "password": "wrong-password"})
    assert [e.action for e in entries(action="lockout")] == ["lockout"]  # recorded once per lockout
    assert ApiToken.objects.filter(user=operator).count() == 1


@pytest.mark.req("P11-26")
def test_failures_from_several_stations_add_up_for_the_administrators_too(personas, settings) -> None:
    from batchline.accounts.selectors import is_locked, locked_usernames

    for i in range(lockout_failures()):
        Client(REMOTE_ADDR=f"10.0.0.{i % 2 + 1}").post(
            "/login/", {"username": "operator", "password": "wrong"}
        )
    assert is_locked(personas["operator"]) and locked_usernames() == ["operator"]


@pytest.mark.req("P11-25")
def test_a_password_reset_revokes_the_users_tokens(personas) -> None:
    operator = personas["operator"]
    _, raw = services.token_create(actor=Actor.of(operator, via="web"), user=operator, name="script")
    services.user_reset_password(
        actor=Actor.of(personas["admin"], via="web"), user=operator, reason="compromised"
    )
    assert Client().get("/api/v1/me", headers={"Authorization": f"Bearer {raw}"}).status_code == 401


@pytest.mark.req("P11-04")
def test_the_server_keeps_sessions_longer_than_the_idle_timeout_so_the_timeout_is_recorded(settings) -> None:
    from batchline.configuration.definitions import SETTINGS

    longest = SETTINGS["idle_timeout_minutes"].parse(60) * 60  # the longest timeout the configuration allows
    assert longest < settings.SESSION_COOKIE_AGE


def test_the_acknowledgement_never_redirects_off_site(db, login) -> None:
    nina = make_user("nina", ["operator"])
    with transaction.atomic():
        from batchline.audit.services import record_update

        record_update(nina, actor=Actor.of(nina, via="cli"), values={"esig_acknowledged_at": None})
    response = login(nina).post("/esig/acknowledge/", {"agree": "yes", "next": "https://evil.example/"})
    assert response.status_code == 302 and response.url == "/"
