"""The REST API: same services, permissions and audit as the pages."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from django.test import Client

from batchline.accounts import services
from batchline.accounts.models import ApiToken, User
from batchline.audit.models import AuditEntry
from batchline.audit.services import Actor
from tests.conftest import PASSWORD, entries

pytestmark = pytest.mark.django_db


def token_for(user: User) -> str:
    _, raw = services.token_create(
        actor=Actor.of(user, via="web"), user=user, name="test client", scope="write"
    )
    return raw


def api(user: User | None, method: str, path: str, body: Any = None, raw: str | None = None) -> Any:
    c = Client()
    headers = {"Authorization": f"Bearer {token_for(user)}"} if user else {}
    kwargs: dict[str, Any] = {"headers": headers}
    if body is not None or raw is not None:
        kwargs |= {"data": raw if raw is not None else json.dumps(body), "content_type": "application/json"}
    return getattr(c, method)(f"/api/v1{path}", **kwargs)


@pytest.mark.req("NFR-05")
def test_the_openapi_document_describes_every_endpoint(db) -> None:
    doc = Client().get("/api/v1/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    for path in [
        "/api/v1/me",
        "/api/v1/users",
        "/api/v1/users/{user_id}/roles",
        "/api/v1/audit/entries",
        "/api/v1/tokens",
    ]:
        assert path in doc["paths"], path


@pytest.mark.req("P11-04")
def test_without_credentials_the_api_answers_401(db) -> None:
    assert api(None, "get", "/me").status_code == 401
    response = Client().get("/api/v1/me", headers={"Authorization": "Bearer bl_not-a-token"})
    assert response.status_code == 401


@pytest.mark.req("P11-25")
def test_a_revoked_token_stops_working_at_once(personas) -> None:
    raw = token_for(personas["operator"])
    c = Client()
    assert c.get("/api/v1/me", headers={"Authorization": f"Bearer {raw}"}).status_code == 200
    token = ApiToken.objects.get(user=personas["operator"])
    services.token_revoke(actor=Actor.of(personas["operator"], via="web"), token=token)
    assert c.get("/api/v1/me", headers={"Authorization": f"Bearer {raw}"}).status_code == 401
    assert [e.action for e in entries(record_type="accounts.apitoken")] == ["create", "revoke"]


def test_tokens_are_stored_as_hashes_only(personas) -> None:
    raw = token_for(personas["operator"])
    token = ApiToken.objects.get(user=personas["operator"])
    assert raw not in (token.key_hash, token.prefix) and raw.startswith(token.prefix)
    assert raw not in "".join(e.changes for e in entries())


def test_me_tells_whether_signing_is_enabled(personas) -> None:
    data = api(personas["operator"], "get", "/me").json()
    assert data["roles"] == ["operator"] and data["signing_enabled"] is True


@pytest.mark.req("NFR-05", "A11-16", "P11-18", "P11-20")
def test_roles_change_through_the_api_with_id_and_password(personas) -> None:
    target = personas["operator"]
    response = api(
        personas["admin"],
        "post",
        f"/users/{target.pk}/roles",
        {
            "roles": ["auditor"],
            "reason": "cover",
            "signature": {"username": "admin", "password": PASSWORD},
        },
    )
    assert response.status_code == 200, response.content
    data = response.json()
    assert data["roles_after"] == ["auditor"]
    (sig,) = data["signatures"]
    assert sig["meaning"] == "approved" and sig["binding_intact"] and sig["method"] == "id+password"
    (entry,) = entries(action="roles", record_id=str(target.pk))[-1:]
    assert entry.via == "api" and entry.actor_username == "admin"


def test_a_wrong_signing_password_through_the_api_is_403_and_writes_only_the_failure(personas) -> None:
    target = personas["operator"]
    before = AuditEntry.objects.order_by("-id").values_list("id", flat=True).first()
    response = api(
        personas["admin"],
        "post",
        f"/users/{target.pk}/roles",
        {"roles": ["supervisor"], "reason": "cover", "signature": {"username": "admin", "password": "bad"}},
    )
    assert response.status_code == 403 and response.json()["code"] == "BAD_CREDENTIALS"
    target.refresh_from_db()
    assert target.role_names == ["operator"]
    new = [e.action for e in AuditEntry.objects.filter(id__gt=before).order_by("id")]
    # the token's first use and the failed attempt; nothing else
    assert new == ["create", "signature_failed"]


@pytest.mark.req("A11-05")
@pytest.mark.parametrize(
    ("raw", "body"),
    [
        ("{not json", None),
        (None, {"username": "x"}),
        (None, {"username": "x" * 151, "full_name": "X"}),
        (None, {"username": "x", "full_name": "X" * 201}),
        (None, {"username": "bad name!", "full_name": "X"}),
        (None, {"username": "x", "full_name": "X", "roles": ["emperor"]}),
        (None, {"username": "x", "full_name": "X", "roles": "operator"}),
    ],
    ids=[
        "malformed",
        "missing-field",
        "long-username",
        "long-name",
        "bad-chars",
        "unknown-role",
        "wrong-type",
    ],
)
def test_bad_input_gets_a_clear_error_and_writes_nothing(personas, raw: str | None, body: Any) -> None:
    token = token_for(personas["admin"])
    before = (AuditEntry.objects.count(), User.objects.count())
    response = Client().post(
        "/api/v1/users",
        data=raw if raw is not None else json.dumps(body),
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code in (400, 422), response.content
    assert response.json()["detail"]
    assert (AuditEntry.objects.count(), User.objects.count()) == before


# Personal credentials are not GMP records: anyone, the auditor too, manages their own tokens.
PERSONAL = {"/api/v1/tokens", "/api/v1/tokens/{token_id}/revoke"}


SIG = {"username": "auditor", "password": PASSWORD}
BODIES = {
    "/api/v1/configuration/change-requests": {
        "values": {"self_approval": True},
        "reason": "r",
        "signature": SIG,
    },
    "/api/v1/configuration/change-requests/{request_id}/approve": {"signature": SIG},
    "/api/v1/configuration/change-requests/{request_id}/reject": {"signature": SIG},
    "/api/v1/master-data/imports/preview": {
        "file_name": "m.csv",
        "format": "csv",
        "kind": "material",
        "text": "code",
    },
    "/api/v1/master-data/imports": {
        "file_name": "m.csv",
        "format": "csv",
        "kind": "material",
        "text": "code",
        "reason": "r",
        "signature": SIG,
    },
    "/api/v1/master-data/imports/{request_id}/approve": {"signature": SIG},
    "/api/v1/master-data/imports/{request_id}/reject": {"signature": SIG},
    "/api/v1/master-data/changes/{request_id}/approve": {"signature": SIG},
    "/api/v1/master-data/changes/{request_id}/reject": {"signature": SIG},
    "/api/v1/master-data/{kind}": {"values": {"code": "X"}, "reason": "r", "signature": SIG},
    "/api/v1/master-data/{kind}/{code}/change": {"values": {"name": "x"}, "reason": "r"},
    "/api/v1/master-data/{kind}/{code}/retire": {"reason": "r", "signature": SIG},
    "/api/v1/gateway/endpoints": {
        "code": "x",
        "protocol": "opcua",
        "address": "opc.tcp://h:4840",
        "reason": "r",
    },
    "/api/v1/gateway/endpoints/{code}/rename": {"name": "x", "reason": "r"},
    "/api/v1/gateway/endpoints/{code}/change": {"values": {}, "reason": "r", "signature": SIG},
    "/api/v1/gateway/endpoints/{code}/retire": {"reason": "r", "signature": SIG},
    "/api/v1/gateway/tags": {
        "endpoint": "x",
        "tag": "t",
        "equipment": "GRAN-01",
        "name": "n",
        "reason": "r",
        "signature": SIG,
    },
    "/api/v1/gateway/tags/{tag_id}/change": {"values": {}, "reason": "r", "signature": SIG},
    "/api/v1/gateway/tags/{tag_id}/retire": {"reason": "r", "signature": SIG},
    "/api/v1/gateway/requests/{request_id}/approve": {"signature": SIG},
    "/api/v1/gateway/requests/{request_id}/reject": {"signature": SIG},
    "/api/v1/genealogy/batches/{number}/produce": {"quantities": ["1"], "unit": "kg"},
    "/api/v1/recipes/import": {"text": "format: batchline.recipe/1"},
    "/api/v1/recipes/{recipe_id}/transition": {"command": "approve", "signature": SIG},
    "/api/v1/batches": {"recipe_id": 1, "number": "X-1", "planned_quantity": "1"},
    "/api/v1/batches/{number}/command": {"command": "hold", "reason": "r", "signature": SIG},
    "/api/v1/batches/{number}/steps/{key}/complete": {"values": {}},
    "/api/v1/batches/{number}/steps/{key}/verify": {"signature": SIG},
    "/api/v1/batches/{number}/steps/{key}/scan": {"scan": "C-000001"},
    "/api/v1/batches/{number}/steps/{key}/dispense": {"source": "C-000001", "scale": "SCALE-01"},
    "/api/v1/batches/{number}/containers/{code}/return": {"location": "WH-B-03"},
    "/api/v1/batches/{number}/containers/{code}/waste": {"reason": "r", "signature": SIG},
    "/api/v1/batches/{number}/steps/{key}/correct": {
        "name": "w1",
        "text": "1",
        "reason": "r",
        "signature": SIG,
        "witness": {"username": "operator", "password": PASSWORD},
    },
    "/api/v1/batches/{number}/steps/{key}/readings/{name}": {},
    "/api/v1/batches/{number}/steps/{key}/readings/{name}/manual": {
        "text": "2.3",
        "reason": "probe fouled",
        "witness": {"username": "operator", "password": PASSWORD},
        "confirm_out_of_specification": True,
    },
    "/api/v1/batches/{number}/steps/{key}/samples": {"source": "EQ:BLEND-01", "quantity": "5"},
    "/api/v1/batches/{number}/steps/{key}/output": {"quantity": "100"},
    "/api/v1/batches/{number}/steps/{key}/labels/issue": {"quantity": "100"},
    "/api/v1/batches/{number}/steps/{key}/labels/reconcile": {
        "applied": "1",
        "destroyed": "0",
        "returned": "0",
    },
    "/api/v1/batches/{number}/steps/{key}/labels/examine": {"results": ["pass"], "units": "1"},
    "/api/v1/quality/exceptions/disposition": {
        "exceptions": [1],
        "decision": "accepted",
        "comment": "c",
        "signature": SIG,
    },
    "/api/v1/quality/deviations": {
        "title": "t",
        "classification": "minor",
        "description": "d",
        "signature": SIG,
    },
    "/api/v1/quality/deviations/{number}/step": {"command": "investigate", "signature": SIG},
    "/api/v1/quality/batches/{number}/review": {"stage": "released", "signature": SIG},
    "/api/v1/inventory/lots": {"material": "PCM", "number": "L-1", "containers": [1]},
    "/api/v1/inventory/lots/{material}/{number}/disposition": {
        "status": "released",
        "reason": "r",
        "signature": SIG,
    },
    "/api/v1/inventory/lots/{material}/{number}/retest": {
        "retest_at": "2030-01-01T00:00:00Z",
        "reason": "r",
        "signature": SIG,
    },
    "/api/v1/inventory/lots/{material}/{number}/expiry": {
        "expires_at": "2030-01-01T00:00:00Z",
        "reason": "r",
        "signature": SIG,
    },
    "/api/v1/inventory/containers/{code}/return": {"location": "WH-B-03"},
    "/api/v1/inventory/containers/{code}/waste": {"reason": "r", "signature": SIG},
    "/api/v1/inventory/containers/{code}/labels": {"format": "pdf"},
    "/api/v1/lims/results": {"result_id": "R-1", "sample": "B-1-S01", "test": "Assay", "value": "99.1"},
}


def plausible_body(path: str) -> dict[str, Any]:
    if path in BODIES:
        return BODIES[path]
    if path.endswith("/roles"):
        return {
            "roles": ["qa_approver"],
            "reason": "r",
            "signature": {"username": "auditor", "password": PASSWORD},
        }
    if path == "/api/v1/users":
        return {"username": "newbie", "full_name": "New Bie"}
    if path.endswith("/acknowledge"):
        return {"comment": "seen"}
    if path.startswith("/api/v1/users/role-requests/"):
        return {"signature": {"username": "auditor", "password": PASSWORD}}
    return {"reason": "r"}


@pytest.mark.req("P11-07")
def test_an_auditor_gets_403_from_every_write_endpoint(personas) -> None:
    doc = Client().get("/api/v1/openapi.json").json()
    target = personas["operator"]
    token = token_for(personas["auditor"])
    before = AuditEntry.objects.count()
    checked = 0
    for path, operations in doc["paths"].items():
        for method in operations:
            if method == "get" or path in PERSONAL:
                continue
            url = (
                path.replace("{user_id}", str(target.pk))
                .replace("{recipe_id}", "1")
                .replace("{number}", "B-1")
                .replace("{key}", "s1")
                .replace("{request_id}", "1")
                .replace("{decision}", "approve")
                .replace("{kind}", "material")
                .replace("{code}", "X")
                .replace("{material}", "PCM")
                .replace("{alarm_id}", "1")
                .replace("{name}", "moisture")
                .replace("{tag_id}", "1")
            )
            response = getattr(Client(), method)(
                url,
                data=json.dumps(plausible_body(path)),
                content_type="application/json",
                headers={"Authorization": f"Bearer {token}"},
            )
            assert response.status_code == 403, (method, path, response.content)
            checked += 1
    assert checked >= 6
    # Only the token's own "last used" stamp moved, which is not audited.
    assert AuditEntry.objects.count() == before


@pytest.mark.req("P11-05", "DI-09", "P11-02")
def test_the_audit_trail_reads_through_the_api(personas) -> None:
    data = api(
        personas["auditor"],
        "get",
        f"/audit/entries?record_type=accounts.user&record_id={personas['operator'].pk}",
    ).json()
    assert data and all(e["record_id"] == str(personas["operator"].pk) for e in data)
    assert data[-1]["action"] == "create" and data[-1]["changes"]["username"] == [None, "operator"]
    assert api(personas["operator"], "get", "/audit/entries").status_code == 403
    assert api(personas["auditor"], "get", "/audit/entries?since=yesterday").status_code == 422


@pytest.mark.req("P11-04")
def test_session_authenticated_api_writes_need_csrf(personas) -> None:
    c = Client(enforce_csrf_checks=True)
    c.force_login(personas["admin"])
    response = c.post(
        f"/api/v1/users/{personas['operator'].pk}/deactivate",
        data=json.dumps({"reason": "r"}),
        content_type="application/json",
    )
    assert response.status_code in (401, 403)
    assert User.objects.get(pk=personas["operator"].pk).is_active


def test_the_api_docs_page_loads_nothing_from_outside(db) -> None:
    page = Client().get("/api/v1/docs").content.decode()
    assert "swagger-ui-bundle.js" in page
    # Every address the page loads from is this server's own path. "cdn" is looked for in those
    # addresses, not in the whole page: the page's random CSRF token spells it now and then.
    urls = re.findall(r"""(?:src|href)\s*=\s*["']([^"']*)""", page)
    assert urls and all(u.startswith("/") and not u.startswith("//") for u in urls), urls
    assert not any("cdn" in u.lower() for u in urls), urls
    assert "https://" not in page and "http://" not in page


@pytest.mark.req("A11-05")
@pytest.mark.parametrize("field", ["full_name", "username", "reason"])
def test_a_nul_character_is_refused_with_a_clear_error_and_nothing_written(personas, field: str) -> None:
    body = {"username": "nina", "full_name": "Nina New", "reason": "hired"} | {field: "Ni\x00na"}
    before = AuditEntry.objects.count()
    response = api(personas["admin"], "post", "/users", body)
    assert response.status_code == 400 and response.json()["code"] == "NUL_CHARACTER"
    assert AuditEntry.objects.count() == before + 1  # the token made for this call, nothing else


def test_a_nul_character_in_a_page_filter_is_refused(personas, login) -> None:
    response = login(personas["auditor"]).get("/audit/", {"user": "a\x00b"})
    assert response.status_code == 400


@pytest.mark.parametrize("expires_at", ["2030-01-01T00:00:00", "2001-01-01T00:00:00Z"], ids=["naive", "past"])
def test_a_token_expiry_must_be_a_future_time_with_its_zone(personas, expires_at: str) -> None:
    response = api(personas["operator"], "post", "/tokens", {"name": "script", "expires_at": expires_at})
    assert response.status_code == 422, response.content


def test_ids_beyond_the_database_are_no_record_not_a_server_error(personas, login) -> None:
    huge = 2**63
    assert api(personas["admin"], "get", f"/users/{huge}/role-changes").status_code in (
        200,
        404,
    )  # an empty list on PostgreSQL
    assert api(personas["admin"], "get", f"/users/{huge}").status_code == 404
    assert login(personas["admin"]).get(f"/users/{huge}/").status_code == 404
