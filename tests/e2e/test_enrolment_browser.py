"""A new QA approver, end to end in Chromium, with a real SMTP server (issue 10, item 1).

The administrator creates the account and requests the QA approver role; the
credential goes by mail to the person's own address only; the person cannot
sign until a QA approver has approved the grant and they have set their own
password with the code only they received.
"""

from __future__ import annotations

import re

import pytest

from batchline.accounts import services
from batchline.accounts.models import User
from batchline.audit.services import Actor
from batchline.signatures.models import Signature
from batchline.signatures.services import signer_authenticate
from tests.conftest import PASSWORD, make_user
from tests.signatures.test_signing import station

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

QUINN_PASSWORD = "release-tablets-2031"


def log_in(page, username: str, password: str = PASSWORD, *, expect_home: bool = True) -> None:
    page.goto("/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.keyboard.press("Enter")
    if expect_home:
        page.get_by_role("heading", name="Good to see you").wait_for()
    else:
        page.get_by_role("alert").wait_for()


def log_out(page) -> None:
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url("**/login/")


def sign_in_dialog(page, dialog_id: str, username: str, password: str) -> None:
    if page.locator(f"#{dialog_id}-username").count():
        page.fill(f"#{dialog_id}-username", username)
    page.fill(f"#{dialog_id}-password", password)
    page.keyboard.press("Enter")


@pytest.mark.req("P11-21", "P11-16", "A11-16", "P11-07", "P11-10")
def test_a_new_qa_approver_signs_only_after_approval_and_their_own_password(page, live_db, smtp) -> None:
    admin = make_user("admin")
    make_user("qa_approver")
    olaf = make_user("olaf", [])
    # A grant waiting for a QA approver: the new approver will decide it at the end.
    waiting = services.user_set_roles(
        actor=Actor.of(admin, via="web"),
        user=olaf,
        roles=["operator"],
        reason="new on the line",
        signer=signer_authenticate(
            request=station(admin), username="admin", password=PASSWORD, meaning="requested"
        ),
    )

    # The administrator creates Quinn and requests the QA approver role, under their signature.
    log_in(page, "admin")
    page.goto("/users/new/")
    page.fill("#id_username", "quinn")
    page.fill("#id_full_name", "Quinn Quality")
    page.fill("#id_email", "quinn@plant.example")
    page.get_by_label("QA approver").check()
    page.fill("#id_reason", "new QA approver for line 2")
    page.fill("#new-signer-username", "admin")
    page.fill("#new-signer-password", PASSWORD)
    page.get_by_role("button", name="Create user").click()
    notice = page.get_by_test_id("credential-notice")
    notice.wait_for()
    assert "quinn@plant.example" in notice.inner_text()
    assert "Waiting for a QA approver" in page.content()
    admin_saw = page.content()
    quinn = User.objects.get(username="quinn")
    assert quinn.role_names == [] and not quinn.has_usable_password()

    # The code arrived through the relay, addressed to Quinn alone; the administrator never saw it.
    (mail,) = smtp
    assert mail["X-Envelope-To"] == "quinn@plant.example" and mail["To"] == "quinn@plant.example"
    code = re.search(r"Your one-time code: (\S+)", mail.get_content()).group(1)
    assert code not in admin_saw
    log_out(page)

    # The code is no password.
    log_in(page, "quinn", code, expect_home=False)
    assert "/login/" in page.url
    # Quinn redeems it and chooses her own password.
    page.goto("/enrol/")
    page.fill("#enrol-username", "quinn")
    page.fill("#enrol-code", code)
    page.fill("#enrol-password", QUINN_PASSWORD)
    page.fill("#enrol-password-again", QUINN_PASSWORD)
    page.get_by_role("button", name="Set my password").click()
    page.wait_for_url("**/login/")
    log_in(page, "quinn", QUINN_PASSWORD)
    # She acknowledges the e-signature statement, but holds no role yet: she cannot sign a decision.
    page.goto("/esig/acknowledge/")
    page.get_by_role("checkbox").check()
    page.get_by_role("button", name=re.compile("Acknowledge", re.I)).click()
    response = page.goto("/users/role-requests/")
    assert response.status == 403
    log_out(page)

    # The QA approver approves the grant with their signature.
    log_in(page, "qa_approver")
    page.goto("/users/role-requests/")
    grant = next(r for r in page.locator("[data-testid=role-request]").all() if "Quinn" in r.inner_text())
    quinn_request_id = grant.get_by_role("heading").inner_text()
    grant.get_by_role("button", name="Approve and sign…").click()
    dialog_id = grant.locator("dialog").first.get_attribute("id")
    sign_in_dialog(page, dialog_id, "qa_approver", PASSWORD)
    page.get_by_text(f"{quinn_request_id} approved").wait_for()
    quinn.refresh_from_db()
    assert quinn.role_names == ["qa_approver"]
    log_out(page)

    # Now Quinn signs: she approves Olaf's waiting grant.
    log_in(page, "quinn", QUINN_PASSWORD)
    page.goto("/users/role-requests/")
    page.get_by_role("button", name="Approve and sign…").click()
    sign_in_dialog(page, f"approve-{waiting.pk}", "quinn", QUINN_PASSWORD)
    page.get_by_text(f"{waiting.number} approved").wait_for()
    olaf.refresh_from_db()
    assert olaf.role_names == ["operator"]
    (sig,) = Signature.objects.filter(signer_id=quinn.pk)
    assert (sig.meaning, sig.record_type) == ("approved", "approvals.changerequest")


@pytest.mark.req("P11-04")
def test_a_timed_out_page_goes_to_a_clean_login_and_back_where_the_person_was(page, live_db) -> None:
    import time

    from django.contrib.sessions.backends.db import SessionStore

    from batchline.accounts.middleware import LAST_ACTIVITY
    from batchline.configuration.selectors import current

    make_user("operator")
    log_in(page, "operator")
    page.goto("/equipment/")
    page.get_by_test_id("equipment-board").wait_for()
    # Nobody touched the station for longer than the timeout (the board's own refreshes do not count).
    key = next(c["value"] for c in page.context.cookies() if c["name"] == "sessionid")
    session = SessionStore(session_key=key)
    session[LAST_ACTIVITY] = time.time() - current().idle_timeout_seconds - 5
    session.save()
    # The board refreshes itself: instead of a login form inside the board, the whole page goes to login.
    page.evaluate(
        "htmx.ajax('GET', '/equipment/', {target: '#board', headers: {'X-Batchline-Background': '1'}})"
    )
    page.wait_for_url("**/login/?timeout=1&next=*")
    assert page.locator("header.top").inner_text().count("Log out") == 0  # no old user's header
    assert "ended after a period of inactivity" in page.content()
    assert page.locator("#id_username").count() == 1  # one login form, the page's own
    page.fill("#id_username", "operator")
    page.fill("#id_password", PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url("**/equipment/")
    page.get_by_test_id("equipment-board").wait_for()
