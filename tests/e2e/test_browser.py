"""Login and signing in headless Chromium, as the people who use them."""

from __future__ import annotations

import pytest

from batchline.accounts.models import User
from batchline.signatures.models import Signature
from tests.conftest import PASSWORD, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def people(live_db: None) -> dict[str, User]:
    return {name: make_user(name) for name in ("admin", "operator", "auditor")}


def log_in(page, username: str, password: str = PASSWORD, *, expect_home: bool = True) -> None:
    page.goto("/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.keyboard.press("Enter")
    if expect_home:
        page.get_by_role("heading", name="Good to see you").wait_for()


@pytest.mark.req("P11-04", "A11-16")
def test_a_person_logs_in_sees_their_home_and_logs_out(page, people) -> None:
    page.goto("/")
    assert "/login/" in page.url
    log_in(page, "operator", "not-my-password", expect_home=False)
    assert page.get_by_role("alert").inner_text().startswith("User ID or password is wrong")
    log_in(page, "operator")
    assert page.locator("[data-role=operator]").is_visible()
    assert page.get_by_role("link", name="Users").count() == 0
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url("**/login/")


@pytest.mark.req("P11-18", "P11-19", "P11-13", "A11-16")
def test_an_administrator_changes_roles_through_the_signing_dialog(page, people) -> None:
    operator = people["operator"]
    log_in(page, "admin")
    page.goto(f"/users/{operator.pk}/")
    page.get_by_label("Auditor / inspector").check()  # no GMP signing authority: in effect at once
    page.fill("#roles-reason", "covers the night shift")
    page.get_by_role("button", name="Sign and change roles…").click()
    dialog = page.locator("dialog#sign-roles")
    assert dialog.is_visible()
    # First signing of the session: user ID and password, keyboard only.
    assert page.evaluate("document.activeElement.name") == "signer_username"
    page.keyboard.type("admin")
    page.keyboard.press("Tab")
    page.keyboard.type("wrong password")
    page.keyboard.press("Enter")
    refusal = page.locator("dialog#sign-roles .refusal")
    refusal.wait_for()
    assert "Nothing was signed" in refusal.inner_text()
    page.fill("#sign-roles-username", "admin")
    page.fill("#sign-roles-password", PASSWORD)
    page.keyboard.press("Enter")
    page.get_by_text("binding intact").wait_for()
    assert "Admin Person — Approved — " in page.locator(".manifestation").first.inner_text()
    operator.refresh_from_db()
    assert operator.role_names == ["auditor", "operator"]

    # Second signing in the same session: the password alone.
    page.get_by_label("Auditor / inspector").uncheck()
    page.fill("#roles-reason", "night shift covered")
    page.get_by_role("button", name="Sign and change roles…").click()
    assert page.locator("#sign-roles-username").count() == 0
    page.fill("#sign-roles-password", PASSWORD)
    page.keyboard.press("Enter")
    page.locator(".manifestation").nth(1).wait_for()
    methods = list(Signature.objects.order_by("id").values_list("method", flat=True))
    assert methods == ["id+password", "password"]


@pytest.mark.req("P11-05", "DI-09")
def test_the_auditor_filters_the_audit_trail(page, people) -> None:
    log_in(page, "auditor")
    page.get_by_role("link", name="Audit trail").first.click()
    page.fill("#f-user", "auditor")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**user=auditor**")
    page.screenshot(path="var/audit-trail.png", full_page=True)
    rows = page.locator("[data-testid=audit-entries] tbody tr")
    assert rows.count() >= 1
    assert all("auditor" in rows.nth(i).inner_text() for i in range(rows.count()))
    assert "login" in rows.first.inner_text()
    page.screenshot(path="var/audit-trail.png", full_page=True)
