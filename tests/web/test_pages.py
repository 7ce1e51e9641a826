"""Pages through Django's test client: access, CSRF, the audit trail page and the users pages."""

from __future__ import annotations

import csv
import io

import pytest
from django.test import Client

from batchline.accounts.models import User
from batchline.audit.models import AuditEntry
from batchline.equipment.models import Site
from tests.conftest import PASSWORD, entries

pytestmark = pytest.mark.django_db


@pytest.mark.req("P11-04")
@pytest.mark.parametrize("url", ["/", "/audit/", "/audit/export.csv", "/users/", "/security/", "/tokens/"])
def test_every_page_needs_a_login(db, url: str) -> None:
    response = Client().get(url)
    assert response.status_code == 302 and response.url.startswith("/login/")


@pytest.mark.req("P11-07")
@pytest.mark.parametrize(
    ("persona", "url", "status"),
    [
        ("operator", "/audit/", 403),
        ("operator", "/users/", 403),
        ("operator", "/security/", 403),
        ("auditor", "/audit/", 200),
        ("auditor", "/security/", 200),
        ("auditor", "/users/", 403),
        ("qa_reviewer", "/audit/", 200),
        ("admin", "/users/", 200),
    ],
)
def test_pages_follow_the_roles(personas, login, persona: str, url: str, status: int) -> None:
    assert login(personas[persona]).get(url).status_code == status


def test_a_refusal_says_why_in_words(personas, login) -> None:
    response = login(personas["operator"]).get("/audit/")
    assert response.status_code == 403
    assert (
        "accounts.view_audit_trail" in response.content.decode()
        and "Nothing was changed" in response.content.decode()
    )


def test_home_shows_the_persons_roles(personas, login) -> None:
    page = login(personas["supervisor"]).get("/").content.decode()
    assert 'data-role="supervisor"' in page and "Supervisor Person" in page


@pytest.mark.req("P11-07", "P11-05", "P11-11")
def test_an_auditor_cannot_change_anything_through_the_pages(personas, login) -> None:
    c = login(personas["auditor"])
    target = personas["operator"]
    before = (AuditEntry.objects.count(), list(User.objects.values_list("is_active", flat=True)))
    writes = [
        ("/users/new/", {"username": "x", "full_name": "X", "reason": "r"}),
        (
            f"/users/{target.pk}/roles/",
            {
                "roles": ["qa_approver"],
                "reason": "r",
                "signer_username": "auditor",
                "signer_password": PASSWORD,
            },
        ),
        *[
            (f"/users/{target.pk}/{action}/", {"reason": "r"})
            for action in ("deactivate", "reactivate", "reset", "unlock")
        ],
        ("/batches/new/", {"recipe": "1", "number": "X", "planned_quantity": "1"}),
        *[
            (f"/batches/B-1/steps/s1/{action}/", {"signer_username": "auditor", "signer_password": PASSWORD})
            for action in ("start", "complete", "verify", "correct")
        ],
        *[
            (f"/batches/B-1/command/{command}/", {"reason": "r"})
            for command in ("release", "hold", "resume", "abort")
        ],
    ]
    for url, data in writes:
        assert c.post(url, data).status_code == 403, url
    # The admin site is closed to auditors: it sends them to its login and writes nothing.
    response = c.post(
        "/admin/equipment/site/add/", {"code": "zz", "name": "Z", "time_zone": "UTC", "audit_reason": "r"}
    )
    assert response.status_code == 302 and "/admin/login/" in response.url
    assert not Site.objects.filter(code="zz").exists()
    assert (AuditEntry.objects.count(), list(User.objects.values_list("is_active", flat=True))) == before


@pytest.mark.req("P11-04")
def test_a_post_without_csrf_token_is_refused_and_writes_nothing(personas) -> None:
    c = Client(enforce_csrf_checks=True)
    c.force_login(personas["admin"])
    before = AuditEntry.objects.count()
    response = c.post(f"/users/{personas['operator'].pk}/deactivate/", {"reason": "r"})
    assert response.status_code == 403 and b"CSRF" in response.content
    assert AuditEntry.objects.count() == before
    assert User.objects.get(pk=personas["operator"].pk).is_active


def test_the_login_form_itself_needs_csrf(db) -> None:
    response = Client(enforce_csrf_checks=True).post("/login/", {"username": "a", "password": "b"})
    assert response.status_code == 403


# --- audit trail page -----------------------------------------------------------------


@pytest.mark.req("P11-05", "A11-13", "DI-09")
def test_the_audit_trail_filters_by_record_user_and_time(personas, login) -> None:
    c = login(personas["auditor"])
    operator = personas["operator"]
    page = c.get("/audit/", {"record_type": "accounts.user", "record_id": operator.pk}).content.decode()
    assert f"accounts.user #{operator.pk}" in page
    assert f"accounts.user #{personas['admin'].pk}" not in page
    page = c.get("/audit/", {"user": "auditor", "action": "login"}).content.decode()
    assert "Auditor Person" in page and "test-setup" not in page
    assert (
        "No entries match"
        in c.get("/audit/", {"since": "2001-01-01", "until": "2001-01-02"}).content.decode()
    )
    # htmx asks for the table only
    partial = c.get("/audit/", {"user": "auditor"}, headers={"HX-Request": "true"}).content.decode()
    assert "<table" in partial and "<html" not in partial


@pytest.mark.req("P11-02", "P11-05", "A11-13")
def test_the_audit_trail_exports_as_csv_with_old_and_new_values(personas, login) -> None:
    c = login(personas["qa_reviewer"])
    response = c.get(
        "/audit/export.csv", {"record_type": "accounts.user", "record_id": personas["operator"].pk}
    )
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    rows = [r for r in rows if not r[0].startswith("#")]  # the lines naming the filter come first
    assert rows[0][:3] == ["entry", "time (UTC)", "user ID"]
    full_name = [r for r in rows[1:] if r[8] == "full_name"]
    assert full_name and full_name[0][9] == "" and full_name[0][10] == '"Operator Person"'
    assert len({r[0] for r in rows[1:]}) == len(
        entries(record_type="accounts.user", record_id=str(personas["operator"].pk))
    )


# --- users pages ------------------------------------------------------------------


@pytest.mark.req("A11-16", "P11-21", "P11-16")
def test_an_administrator_creates_a_user_and_never_sees_a_password(personas, login) -> None:
    c = login(personas["admin"])
    assert "No mail relay is configured" in c.get("/users/new/").content.decode()
    response = c.post(
        "/users/new/",
        {
            "username": "nina",
            "full_name": "Nina New",
            "roles": ["operator"],
            "reason": "hired",
            "signer_username": "admin",
            "signer_password": PASSWORD,
        },
    )
    assert response.status_code == 200, response.content.decode()[:2000]
    page = response.content.decode()
    assert "No mail relay is configured" in page and 'data-testid="enrolment-code"' in page
    assert "Waiting for a QA approver" in page
    nina = User.objects.get(username="nina")
    assert nina.must_change_password and not nina.has_usable_password() and nina.role_names == []


@pytest.mark.req("A11-16", "P11-21")
def test_granting_a_gmp_role_on_the_page_needs_the_administrators_signature(personas, login) -> None:
    c = login(personas["admin"])
    response = c.post(
        "/users/new/", {"username": "nina", "full_name": "Nina New", "roles": ["operator"], "reason": "hired"}
    )
    assert response.status_code == 422
    assert "GMP signing authority" in response.content.decode()
    assert not User.objects.filter(username="nina").exists()


def test_a_bad_user_form_says_why_and_writes_nothing(personas, login) -> None:
    c = login(personas["admin"])
    before = AuditEntry.objects.count()
    response = c.post("/users/new/", {"username": "", "full_name": "x" * 500})
    assert response.status_code == 422
    assert AuditEntry.objects.count() == before


@pytest.mark.req("P11-18", "A11-16", "P11-13")
def test_a_role_change_through_the_page_is_signed(
    personas, login, django_capture_on_commit_callbacks
) -> None:
    c = login(personas["admin"])
    target = personas["operator"]
    page = c.get(f"/users/{target.pk}/").content.decode()
    assert 'name="signer_username"' in page  # first signing of the session
    response = c.post(
        f"/users/{target.pk}/roles/",
        {
            "roles": ["auditor", "operator"],
            "reason": "promotion",
            "signer_username": "admin",
            "signer_password": PASSWORD,
        },
    )
    assert response.status_code == 302
    target.refresh_from_db()
    assert target.role_names == ["auditor", "operator"]
    page = c.get(f"/users/{target.pk}/").content.decode()
    assert "Admin Person — Approved — " in page and "binding intact" in page
    assert 'name="signer_username"' not in page  # password only from now on in this session


def test_a_wrong_signing_password_on_the_page_is_refused_in_words(personas, login) -> None:
    c = login(personas["admin"])
    target = personas["operator"]
    response = c.post(
        f"/users/{target.pk}/roles/",
        {"roles": ["qa_approver"], "reason": "x", "signer_username": "admin", "signer_password": "nope"},
    )
    assert response.status_code == 422
    assert "Nothing was signed" in response.content.decode()
    target.refresh_from_db()
    assert target.role_names == ["operator"]


@pytest.mark.req("P11-05", "P11-11")
def test_admin_writes_are_audited_with_their_reason_and_nothing_is_deleted(personas, login) -> None:
    c = login(personas["admin"])
    response = c.post(
        "/admin/equipment/site/add/",
        {
            "code": "bs1",
            "name": "Basel",
            "time_zone": "Europe/Zurich",
            "address": "",
            "audit_reason": "new plant",
        },
    )
    assert response.status_code == 302, response.content[:2000]
    site = Site.objects.get(code="bs1")
    created = entries(record_type="equipment.site", record_id=str(site.pk))[-1]
    assert (created.action, created.via, created.reason, created.actor_username) == (
        "create",
        "admin",
        "new plant",
        "admin",
    )
    # A change without a reason is refused by the form and writes nothing.
    before = AuditEntry.objects.count()
    response = c.post(
        f"/admin/equipment/site/{site.pk}/change/",
        {"code": "bs1", "name": "Basel 2", "time_zone": "UTC", "address": ""},
    )
    assert response.status_code == 200 and AuditEntry.objects.count() == before
    c.post(
        f"/admin/equipment/site/{site.pk}/change/",
        {"code": "bs1", "name": "Basel 2", "time_zone": "UTC", "address": "", "audit_reason": "renamed"},
    )
    changed = entries(record_type="equipment.site", record_id=str(site.pk))[-1]
    assert changed.changes == '{"name":["Basel","Basel 2"],"time_zone":["Europe/Zurich","UTC"]}'
    assert c.get(f"/admin/equipment/site/{site.pk}/delete/").status_code == 403
