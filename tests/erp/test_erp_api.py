"""The HTTPS door: POST /api/v1/erp/b2mml with the interface's token; the parked list over the API and a page."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from batchline.accounts import services
from batchline.audit.services import Actor
from batchline.erp.models import InboundMessage
from batchline.execution.models import Batch
from tests.conftest import make_user

from .documents import assert_valid, order, send

pytestmark = pytest.mark.django_db


def token(user: Any, scope: str = "write") -> str:
    _, raw = services.token_create(actor=Actor.of(user, via="web"), user=user, name="SAP PI", scope=scope)
    return raw


def post(raw: str | None, body: bytes | str, *, valid: bool = True) -> Any:
    """POST as the ERP does; the document (when meant valid) and every XML answer pass both validators."""
    headers = {"Authorization": f"Bearer {raw}"} if raw else {}
    data = body.encode() if isinstance(body, str) else body
    if valid:
        assert_valid(data)
    response = Client().post("/api/v1/erp/b2mml", data=data, content_type="application/xml", headers=headers)
    if response["Content-Type"].startswith("application/xml"):
        assert_valid(response.content)
    return response


@pytest.mark.req("S95-02", "NFR-05", "A11-07")
def test_an_order_over_https_is_answered_with_its_confirmbod_and_a_status_that_says_what_happened(
    plant,
) -> None:
    raw = token(plant["erp"])
    response = post(raw, order("BOD-H1", "4711"))
    assert response.status_code == 200 and response["Content-Type"].startswith("application/xml")
    assert_valid(response.content)
    assert (response["X-Batchline-State"], response["X-Batchline-Code"], response["X-Batchline-Repeat"]) == (
        "applied",
        "APPLIED",
        "no",
    )
    again = post(raw, order("BOD-H1", "4711"))
    assert (
        again.status_code == 200
        and again["X-Batchline-Repeat"] == "yes"
        and again.content == response.content
    )
    reused = post(raw, order("BOD-H1", "4712"))
    assert reused.status_code == 409 and reused["X-Batchline-Code"] == "BODID_REUSED"
    refused = post(raw, order("BOD-H2", "4713", product="NOPE"))
    assert refused.status_code == 422 and b"Batchline has no product NOPE" in refused.content
    assert_valid(refused.content)
    assert Batch.objects.count() == 1


@pytest.mark.req("S95-02")
def test_a_parked_order_is_202_and_listed_with_its_reason(bare_plant, login) -> None:
    raw = token(bare_plant["erp"])
    response = post(raw, order("BOD-P1", "4711"))
    assert response.status_code == 202 and response["X-Batchline-State"] == "parked"
    admin = bare_plant["admin"]
    listed = Client().get(
        "/api/v1/erp/messages?state=parked", headers={"Authorization": f"Bearer {token(admin, 'read')}"}
    )
    assert listed.status_code == 200
    [row] = listed.json()
    assert (row["bodid"], row["state"], row["waits_for"]) == ("BOD-P1", "parked", ["material:LAC-200"])
    assert "material LAC-200 is not in Batchline's master data yet" in row["reason"]
    assert row["expires_at"] is not None and row["message"] == "ProcessOperationsSchedule"
    page = login(admin).get("/integration/erp/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "BOD-P1" in text and "material LAC-200 in the master data" in text
    assert 'data-testid="erp-messages-link"' in login(admin).get("/master-data/").content.decode()


@pytest.mark.req("A11-07", "A11-05")
def test_an_oversized_body_is_413_and_not_read(plant, settings) -> None:
    settings.BATCHLINE_ERP_MAX_BYTES = 2048
    response = post(
        token(plant["erp"]), order("BOD-BIG", "4711") + "<!--" + "x" * 10_000 + "-->", valid=False
    )
    assert response.status_code == 413 and response["X-Batchline-Code"] == "TOO_LARGE"
    assert_valid(response.content)
    kept = InboundMessage.objects.get()
    assert bytes(kept.body) == b"" and kept.state == "refused" and not Batch.objects.exists()


@pytest.mark.req("P11-04", "P11-07", "A11-07")
def test_only_the_interface_account_with_a_write_token_sends(plant) -> None:
    body = order("BOD-A1", "4711")
    assert post(None, body).status_code == 401
    assert post(token(plant["erp"], "read"), body).status_code == 403
    denied = post(token(plant["supervisor"]), body)
    assert denied.status_code == 403 and "erp.send_message" in denied.json()["detail"]
    assert not InboundMessage.objects.exists() and not Batch.objects.exists()


@pytest.mark.req("P11-07")
def test_the_message_list_follows_the_roles(plant, login) -> None:
    operator = make_user("operator", ["operator"])
    assert login(operator).get("/integration/erp/").status_code == 403
    response = Client().get(
        "/api/v1/erp/messages", headers={"Authorization": f"Bearer {token(operator, 'read')}"}
    )
    assert response.status_code == 403
    auditor = make_user("auditor", ["auditor"])
    assert login(auditor).get("/integration/erp/").status_code == 200
    bad = Client().get(
        "/api/v1/erp/messages?state=lost", headers={"Authorization": f"Bearer {token(auditor, 'read')}"}
    )
    assert bad.status_code == 422


def test_a_message_sent_through_the_service_shows_on_the_page(plant, login) -> None:
    send(plant["erp"], order("BOD-S1", "4711"))
    page = login(plant["admin"]).get("/integration/erp/").content.decode()
    assert 'data-bodid="BOD-S1" data-state="applied"' in page
