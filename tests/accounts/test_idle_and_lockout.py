"""Idle timeout that only the person's input holds off; lockout by address; audited unlocks; alerts that reach someone.

21 CFR 11.10(d), 11.300(d); issue 10, item 1.
"""

from __future__ import annotations

import html
import io

import pytest
from django.core.checks import run_checks
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from batchline.accounts import middleware
from batchline.accounts.lockout import locked_addresses
from batchline.accounts.middleware import LAST_ACTIVITY
from batchline.accounts.models import User
from batchline.accounts.selectors import is_locked
from batchline.configuration.selectors import current
from tests.accounts.test_accounts import Clock
from tests.conftest import PASSWORD, configure, entries, lockout_failures

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true", "HX-Current-URL": "http://testserver/batches/PCM-0001/?step=s3"}


@pytest.fixture
def clock(monkeypatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(middleware, "time", c)
    return c


@pytest.mark.req("P11-04", "P11-19")
def test_polling_the_scale_never_keeps_an_unattended_session_alive(personas, login, clock) -> None:
    c = login(personas["operator"])
    start = clock.now
    assert c.get("/floor/").status_code == 200
    timeout = current().idle_timeout_seconds
    # The weighing screen polls for longer than the timeout, with nobody touching it.
    for second in range(0, timeout - 1, 60):
        clock.now = start + second
        c.get("/scales/reading/", {"scale": "SCALE-01"}, headers={"HX-Request": "true"})
        c.get("/equipment/", headers={"HX-Request": "true", "X-Batchline-Background": "1"})
    assert c.session[LAST_ACTIVITY] == start
    clock.now = start + timeout + 1
    # The next action, a step completion from the screen, is not accepted: the session has ended.
    response = c.post("/batches/PCM-0001/steps/s3/complete/", {"value": "1"}, headers=HTMX)
    assert response.status_code == 204
    assert response["HX-Redirect"] == "/login/?timeout=1&next=%2Fbatches%2FPCM-0001%2F%3Fstep%3Ds3"
    assert entries(actor_username="operator")[-1].action == "session_timeout"


@pytest.mark.req("P11-04")
def test_the_persons_own_requests_keep_the_session(personas, login, clock) -> None:
    c = login(personas["operator"])
    start = clock.now
    clock.now = start + 60
    assert c.get("/floor/").status_code == 200
    assert c.session[LAST_ACTIVITY] == start + 60


@pytest.mark.req("P11-04")
def test_a_timed_out_person_logs_in_again_and_is_back_where_they_were(personas, login, clock) -> None:
    c = login(personas["operator"])
    assert c.get("/floor/").status_code == 200
    clock.now += current().idle_timeout_seconds + 1
    response = c.get("/floor/?tab=mine")
    assert response.url == "/login/?timeout=1&next=%2Ffloor%2F%3Ftab%3Dmine"
    page = c.get(response.url).content.decode()
    assert "ended after a period of inactivity" in page and 'value="/floor/?tab=mine"' in page
    assert "/enrol/" in page
    back = c.post(response.url, {"username": "operator", "password": PASSWORD, "next": "/floor/?tab=mine"})
    assert back.status_code == 302 and back.url == "/floor/?tab=mine"


def test_an_htmx_request_without_a_session_navigates_to_the_login_page(db) -> None:
    response = Client().get("/floor/", headers=HTMX)
    assert response.status_code == 204
    assert response["HX-Redirect"] == "/login/?next=%2Fbatches%2FPCM-0001%2F%3Fstep%3Ds3"


@pytest.mark.req("P11-04", "P11-11")
def test_the_idle_timeout_is_the_configurations(personas, login, clock) -> None:
    configure(idle_timeout_minutes=2)
    c = login(personas["operator"])
    assert c.get("/floor/").status_code == 200
    clock.now += 121
    assert c.get("/floor/").url.startswith("/login/?timeout=1")


# --- lockout by address -----------------------------------------------------------------


@pytest.mark.req("P11-26")
def test_password_spraying_from_one_address_blocks_the_address(personas) -> None:
    sprayer = Client(REMOTE_ADDR="10.6.6.6")
    names = ["operator", "operator2", "supervisor", "qa_reviewer", "qa_approver"]
    for name in names[: lockout_failures()]:
        sprayer.post("/login/", {"username": name, "password": "Spring2026!"})
    # No account reached the threshold, yet the address is blocked, even for a right password ...
    assert not any(is_locked(User.objects.get(username=n)) for n in names)
    assert locked_addresses() == ["10.6.6.6"]
    assert sprayer.post("/login/", {"username": "auditor", "password": PASSWORD}).status_code == 403
    # ... and nowhere else.
    assert (
        Client(REMOTE_ADDR="10.0.0.2")
        .post("/login/", {"username": "auditor", "password": PASSWORD})
        .status_code
        == 302
    )
    (blocked,) = entries(action="address_lockout")
    assert blocked.record_id == "10.6.6.6"


@pytest.mark.req("P11-26", "A11-16")
def test_a_station_is_unblocked_on_the_security_page_with_a_reason(personas, login) -> None:
    sprayer = Client(REMOTE_ADDR="10.6.6.6")
    for i in range(lockout_failures()):
        sprayer.post("/login/", {"username": f"nobody{i}", "password": "x"})
    admin = Client(REMOTE_ADDR="10.0.0.3")
    admin.post("/login/", {"username": "admin", "password": PASSWORD})
    assert "10.6.6.6" in admin.get("/security/").content.decode()
    assert admin.post("/security/addresses/unlock/", {"ip": "10.6.6.6", "reason": ""}).status_code == 302
    assert locked_addresses() == ["10.6.6.6"]  # no reason, no unlock
    # Something that is no address is refused in words (PostgreSQL's inet column failed with a 500).
    refused = admin.post("/security/addresses/unlock/", {"ip": "x", "reason": "r"}, follow=True)
    assert "'x' is not a station's address (IPv4 or IPv6)." in html.unescape(refused.content.decode())
    assert locked_addresses() == ["10.6.6.6"] and not entries(action="unlock_address")
    admin.post(
        "/security/addresses/unlock/", {"ip": "10.6.6.6", "reason": "the kiosk's badge reader misfired"}
    )
    assert locked_addresses() == []
    (entry,) = entries(action="unlock_address")
    assert (entry.actor_username, entry.reason) == ("admin", "the kiosk's badge reader misfired")


# --- the command-line doors ------------------------------------------------------------


def lock(username: str) -> None:
    c = Client(REMOTE_ADDR="10.4.4.4")
    for _ in range(lockout_failures()):
        c.post("/login/", {"username": username, "password": "wrong"})


@pytest.mark.req("P11-26", "A11-16")
@pytest.mark.parametrize(
    "command", ["axes_reset", "axes_reset_logs", "axes_reset_failure_logs", "axes_reset_ip_username"]
)
def test_axes_resets_that_would_leave_no_record_are_refused(personas, command: str) -> None:
    lock("operator")
    with pytest.raises(CommandError, match="Refused"):
        call_command(command, "10.4.4.4", "operator")
    assert is_locked(personas["operator"])


@pytest.mark.req("P11-26", "A11-16")
def test_axes_reset_username_unlocks_only_with_who_and_why(personas, monkeypatch) -> None:
    lock("operator")
    monkeypatch.setattr("sys.stdin", io.StringIO("wrong\n"))
    with pytest.raises(CommandError, match="wrong"):
        call_command("axes_reset_username", "operator", by="admin", reason="r", password_stdin=True)
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    with pytest.raises(CommandError, match="not a security administrator"):
        call_command("axes_reset_username", "operator", by="auditor", reason="r", password_stdin=True)
    assert is_locked(personas["operator"])
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    out = io.StringIO()
    call_command(
        "axes_reset_username",
        "operator",
        by="admin",
        reason="called from the line",
        password_stdin=True,
        stdout=out,
    )
    assert not is_locked(personas["operator"])
    (entry,) = entries(action="unlock")
    assert (entry.actor_username, entry.via, entry.reason) == ("admin", "cli", "called from the line")


def test_batchline_accounts_reset_issues_a_credential_not_a_password(personas, monkeypatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    out = io.StringIO()
    call_command(
        "accounts", "reset", "operator", by="admin", reason="forgot", password_stdin=True, stdout=out
    )
    text = out.getvalue()
    assert "No mail relay is configured" in text and "Enrolment code for operator" in text
    personas["operator"].refresh_from_db()
    assert not personas["operator"].has_usable_password()


def test_the_first_qa_approver_is_made_once_from_the_command_line(db) -> None:
    from tests.conftest import make_user

    quinn = make_user("quinn", [])
    call_command("accounts", "first-approver", "quinn", reason="new installation", stdout=io.StringIO())
    quinn.refresh_from_db()
    assert quinn.role_names == ["qa_approver"]
    assert entries(action="first_approver")[0].reason == "new installation"
    make_user("rita", [])
    with pytest.raises(CommandError, match="A QA approver exists"):
        call_command("accounts", "first-approver", "rita", reason="again", stdout=io.StringIO())


# --- alerts reach a person ------------------------------------------------------------


@pytest.mark.req("P11-26")
def test_check_deploy_warns_when_no_alert_reaches_a_person(db, settings) -> None:
    def ids() -> set[str]:
        return {
            m.id
            for m in run_checks(include_deployment_checks=True)
            if m.id and m.id.startswith("batchline.W10")
        }

    settings.BATCHLINE_MAIL_RELAY = False
    assert {"batchline.W101", "batchline.W102"} <= ids()  # nobody reads alerts, nothing is mailed
    from batchline.accounts.services import user_update
    from tests.conftest import SETUP, make_user

    auditor = make_user("auditor", email="ines@plant.example")
    assert ids() == {"batchline.W102"}
    settings.BATCHLINE_MAIL_RELAY = True
    assert ids() == set()
    user_update(actor=SETUP, user=auditor, full_name=auditor.full_name, email="", reason="left the list")
    assert ids() == {"batchline.W103"}


@pytest.mark.req("P11-26")
def test_an_auditor_sees_the_lockout_alert_and_acknowledges_it_on_the_record(personas) -> None:
    lock("operator")
    auditor = Client(REMOTE_ADDR="10.0.0.5")
    auditor.post("/login/", {"username": "auditor", "password": PASSWORD})
    home = auditor.get("/").content.decode()
    assert 'data-testid="security-alerts"' in home and "Account &#x27;operator&#x27; locked" in home
    page = auditor.get("/security/").content.decode()
    from batchline.accounts.alerts import alerts_open

    alert = next(a for a in alerts_open() if a.kind == "account_locked")
    assert alert.message in page.replace("&#x27;", "'")
    auditor.post(f"/security/alerts/{alert.pk}/acknowledge/", {"comment": ""})
    assert alert in alerts_open()  # nothing said, nothing acknowledged
    auditor.post(
        f"/security/alerts/{alert.pk}/acknowledge/", {"comment": "called Olga: she forgot her password"}
    )
    assert alert not in alerts_open()
    (entry,) = entries(action="acknowledge", record_type="accounts.securityalert", record_id=str(alert.pk))
    assert entry.actor_username == "auditor"


def test_a_qa_approver_is_told_on_their_home_page_that_grants_wait(personas, login) -> None:
    from tests.accounts.test_separation import request_grant

    request_grant(personas["admin"], personas["outsider"], ["operator"])
    home = login(personas["qa_approver"]).get("/").content.decode()
    assert "1 request for GMP signing authority waits for a QA approver" in home
    assert 'data-testid="role-requests-waiting"' not in login(personas["operator"]).get("/").content.decode()
