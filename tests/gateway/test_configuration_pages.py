"""An engineer configures the gateway from its page: registers an endpoint, requests tags and changes with
their signature, withdraws an open request; a QA approver's home page counts what waits (issue 15)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from batchline.approvals.models import ChangeRequest, RequestState
from batchline.approvals.services import ChangeRefused
from batchline.audit.models import AuditEntry
from batchline.audit.services import Actor, ReasonRequired
from batchline.gateway import services as svc
from batchline.gateway.models import Endpoint, Tag
from batchline.signatures.models import Signature
from tests.conftest import PASSWORD, make_user

from .conftest import approve, sign, tag_configured

pytestmark = pytest.mark.django_db


def A(user: Any) -> Actor:
    return Actor.of(user, via="web")


def client_of(user: Any) -> Client:
    c = Client()
    c.force_login(user)
    return c


def signed(user: Any, **fields: str) -> dict[str, str]:
    return {"signer_username": user.username, "signer_password": PASSWORD, **fields}


def dryer_endpoint(plant: dict[str, Any]) -> Endpoint:
    return svc.endpoint_create(
        actor=A(plant["engineer"]),
        code="dry-plc",
        name="Dryer PLC",
        protocol="opcua",
        address="opc.tcp://10.0.4.20:4840",
        reason="CC-2026-120",
    )


NEW_TAG = {
    "endpoint": "dry-plc",
    "tag": "ns=2;s=FBD01.Inlet",
    "equipment": "DRY-01",
    "name": "dryer_inlet_temp",
    "unit_of_measure": "degC",
    "sampling_ms": "500",
    "deadband": "0.2",
    "options": "",
    "reason": "CC-2026-120 inlet air to the drying step",
}


def trail_count() -> int:
    return AuditEntry.objects.count()


# --- services ---------------------------------------------------------------------------------------


@pytest.mark.req("A11-14", "P11-05", "A11-13")
def test_the_requester_withdraws_an_open_request_with_a_reason_and_nothing_is_applied(
    plant: dict[str, Any],
) -> None:
    dryer_endpoint(plant)
    engineer = A(plant["engineer"])
    request = svc.tag_create_request(
        actor=engineer,
        signer=sign(engineer, "requested"),
        endpoint="dry-plc",
        equipment="DRY-01",  # a unit by its code, as the page and the API name it
        tag="ns=2;s=FBD01.Inlet",
        name="dryer_inlet_temp",
        unit_of_measure="degC",
        reason="CC-2026-120",
    )
    with pytest.raises(ReasonRequired, match="Say why"):
        svc.request_withdraw(actor=engineer, request_id=request.pk, reason=" ")
    withdrawn = svc.request_withdraw(actor=engineer, request_id=request.pk, reason="wrong node id")
    assert withdrawn.state == RequestState.WITHDRAWN
    entry = AuditEntry.objects.filter(record_type="approvals.changerequest", action="change_withdraw").get()
    assert (entry.actor_username, entry.reason) == ("engineer", "wrong node id")
    assert not Tag.objects.exists()
    # The request's signature stays; a withdrawn request is decided no more, nor withdrawn twice.
    assert (
        Signature.objects.filter(record_type="approvals.changerequest", record_id=str(request.pk)).count()
        == 1
    )
    with pytest.raises(ChangeRefused, match="withdrawn: it cannot be decided again"):
        approve(plant["approver"], withdrawn)
    with pytest.raises(ChangeRefused, match="withdrawn"):
        svc.request_withdraw(actor=engineer, request_id=request.pk, reason="again")
    # Its subject is free again: the engineer requests it anew.
    svc.tag_create_request(
        actor=engineer,
        signer=sign(engineer, "requested"),
        endpoint="dry-plc",
        equipment="DRY-01",
        tag="ns=2;s=FBD01.Inlet",
        name="dryer_inlet_temp",
        reason="CC-2026-120, node id checked",
    )


@pytest.mark.req("P11-07", "A11-14")
def test_only_an_engineer_withdraws_and_only_a_gateway_request(plant: dict[str, Any]) -> None:
    dryer_endpoint(plant)
    engineer = A(plant["engineer"])
    request = svc.tag_create_request(
        actor=engineer,
        signer=sign(engineer, "requested"),
        endpoint="dry-plc",
        equipment="DRY-01",
        tag="ns=2;s=FBD01.Inlet",
        name="dryer_inlet_temp",
        reason="CC-2026-120",
    )
    outsiders = (plant["approver"], make_user("operator", ["operator"]))
    before = trail_count()
    for outsider in outsiders:
        with pytest.raises(svc.GatewayRefused, match="do not allow you to configure"):
            svc.request_withdraw(actor=A(outsider), request_id=request.pk, reason="mine now")
    with pytest.raises(svc.GatewayRefused, match="no gateway change request 999999"):
        svc.request_withdraw(actor=engineer, request_id=999999, reason="r")
    assert trail_count() == before
    # Another engineer stands in for one who is away.
    other = A(make_user("engineer2", ["administrator"]))
    assert svc.request_withdraw(actor=other, request_id=request.pk, reason="away").state == "withdrawn"


@pytest.mark.req("A11-05")
def test_a_unit_named_by_a_code_nobody_holds_is_refused_in_words(plant: dict[str, Any]) -> None:
    dryer_endpoint(plant)
    engineer = A(plant["engineer"])
    with pytest.raises(svc.GatewayRefused, match="no equipment unit 'DRY-99'"):
        svc.tag_create_request(
            actor=engineer,
            signer=sign(engineer, "requested"),
            endpoint="dry-plc",
            equipment="DRY-99",
            tag="ns=2;s=X",
            name="x",
            reason="r",
        )
    assert not ChangeRequest.objects.exists()


# --- the page -----------------------------------------------------------------------------------------


@pytest.mark.req("A11-14", "P11-13", "P11-11")
def test_an_engineer_registers_an_endpoint_and_requests_a_tag_on_the_gateway_page(
    plant: dict[str, Any],
) -> None:
    engineer = client_of(plant["engineer"])
    page = engineer.get("/gateway/").content.decode()
    assert 'data-testid="endpoint-new-form"' in page and 'data-testid="tag-new-form"' in page
    response = engineer.post(
        "/gateway/endpoints/new/",
        {
            "code": "dry-plc",
            "name": "Dryer PLC",
            "protocol": "opcua",
            "address": "opc.tcp://10.0.4.20:4840",
            "options": "timeout_s=4",
            "reason": "CC-2026-120",
        },
    )
    assert response.status_code == 302
    assert Endpoint.objects.get().options == {"timeout_s": "4"}

    response = engineer.post("/gateway/tags/new/", signed(plant["engineer"], **NEW_TAG))
    assert response.status_code == 302
    request = ChangeRequest.objects.get(kind="gateway_tag")
    assert request.payload == {
        "operation": "create",
        "endpoint": "dry-plc",
        "tag": "ns=2;s=FBD01.Inlet",
        "values": {
            "equipment": "DRY-01",
            "name": "dryer_inlet_temp",
            "unit_of_measure": "degC",
            "sampling_ms": 500,
            "deadband": "0.2",
            "options": {},
        },
    }
    (signature,) = Signature.objects.filter(record_type="approvals.changerequest", record_id=str(request.pk))
    assert (signature.meaning, signature.signer_username) == ("requested", "engineer")
    assert not Tag.objects.exists()
    page = engineer.get("/gateway/").content.decode()
    assert f'data-testid="withdraw-{request.number}"' in page and "yours" in page


@pytest.mark.req("A11-05", "A11-14")
@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"sampling_ms": "lots"}, "sampling interval is a whole number"),
        ({"deadband": "1,5,0"}, "Deadband:"),
        ({"unit_of_measure": "furlongs per fortnightly"}, "not a unit of measure"),
        ({"options": "no equals sign"}, "one name=value per line"),
        ({"equipment": ""}, "no equipment unit"),
        ({"endpoint": "nowhere"}, "no gateway endpoint"),
        ({"reason": ""}, "Say why"),
        ({"signer_password": "wrong"}, "password"),
    ],
)
def test_a_tag_request_with_bad_input_shows_the_form_again_with_why_and_writes_nothing(
    plant: dict[str, Any], fields: dict[str, str], words: str
) -> None:
    dryer_endpoint(plant)
    engineer = client_of(plant["engineer"])
    before = AuditEntry.objects.exclude(action__startswith="signature").exclude(record_type="accounts.user")
    count = before.count()
    response = engineer.post("/gateway/tags/new/", signed(plant["engineer"], **(NEW_TAG | fields)))
    body = response.content.decode()
    assert response.status_code == 422, body[:500]
    assert words.lower() in body.lower()
    # The form shows again, open, with what was typed (never the password).
    assert 'data-testid="tag-new" open' in body
    assert "CC-2026-120 inlet air to the drying step" in body or fields.get("reason") == ""
    assert PASSWORD not in body
    assert not ChangeRequest.objects.exists()
    assert before.count() == count


@pytest.mark.req("A11-14", "P11-11")
def test_an_engineer_requests_a_tag_change_and_retirement_and_an_endpoint_change_on_the_page(
    plant: dict[str, Any],
) -> None:
    dryer_endpoint(plant)
    tag = tag_configured(
        plant["engineer"],
        plant["approver"],
        endpoint="dry-plc",
        equipment=plant["units"]["DRY-01"],
        tag="ns=2;s=FBD01.Inlet",
        name="dryer_inlet_temp",
        unit_of_measure="degC",
        reason="CC-2026-120",
    )
    engineer = client_of(plant["engineer"])
    page = engineer.get("/gateway/").content.decode()
    assert f'data-testid="tag-change-{tag.pk}"' in page and 'data-testid="endpoint-change-dry-plc"' in page
    unchanged = {
        "equipment": "DRY-01",
        "name": "dryer_inlet_temp",
        "unit_of_measure": "degC",
        "sampling_ms": "1000",
        "deadband": "0",
        "options": "",
    }
    # The form as shown changes nothing: refused in words.
    same = engineer.post(
        f"/gateway/tags/{tag.pk}/change/", signed(plant["engineer"], reason="r", **unchanged)
    )
    assert same.status_code == 422 and "nothing would change" in same.content.decode()
    changed = engineer.post(
        f"/gateway/tags/{tag.pk}/change/",
        signed(plant["engineer"], reason="deadband after qualification", **(unchanged | {"deadband": "0.5"})),
    )
    assert changed.status_code == 302
    change = ChangeRequest.objects.get(kind="gateway_tag", state="requested")
    assert change.payload["values"] == {"deadband": "0.5"}
    # One request per tag at a time: the retirement waits until the change is decided or withdrawn.
    refused = engineer.post(f"/gateway/tags/{tag.pk}/retire/", signed(plant["engineer"], reason="removed"))
    assert refused.status_code == 422 and "already waiting" in refused.content.decode()
    assert engineer.post(f"/gateway/requests/{change.pk}/withdraw/", {"reason": "not yet"}).status_code == 302
    assert (
        engineer.post(
            f"/gateway/tags/{tag.pk}/retire/", signed(plant["engineer"], reason="sensor removed")
        ).status_code
        == 302
    )
    moved = engineer.post(
        "/gateway/endpoints/dry-plc/change/",
        signed(plant["engineer"], address="opc.tcp://10.0.4.21:4840", options="", reason="new network"),
    )
    assert moved.status_code == 302
    assert sorted(ChangeRequest.objects.filter(state="requested").values_list("kind", flat=True)) == [
        "gateway_endpoint",
        "gateway_tag",
    ]
    tag.refresh_from_db()
    assert (tag.deadband, tag.retired_at) == (0, None)  # nothing applied before a QA approver signs
    assert (
        engineer.post(
            "/gateway/endpoints/dry-plc/rename/", {"name": "Fluid-bed dryer PLC", "reason": "clearer"}
        ).status_code
        == 302
    )
    assert Endpoint.objects.get().name == "Fluid-bed dryer PLC"


@pytest.mark.req("P11-07")
def test_an_auditor_reads_the_configuration_but_gets_no_form_and_403_on_every_post(
    plant: dict[str, Any],
) -> None:
    dryer_endpoint(plant)
    auditor = client_of(make_user("auditor", ["auditor"]))
    before = trail_count()
    page = auditor.get("/gateway/").content.decode()
    assert 'data-endpoint-code="dry-plc"' in page
    assert "tag-new-form" not in page and "endpoint-change-dry-plc" not in page
    for url in (
        "/gateway/endpoints/new/",
        "/gateway/endpoints/dry-plc/change/",
        "/gateway/endpoints/dry-plc/retire/",
        "/gateway/endpoints/dry-plc/rename/",
        "/gateway/tags/new/",
        "/gateway/tags/1/change/",
        "/gateway/tags/1/retire/",
        "/gateway/requests/1/withdraw/",
    ):
        assert auditor.post(url, {"reason": "r", "code": "x"}).status_code == 403, url
    assert trail_count() == before


@pytest.mark.req("A11-14")
def test_a_qa_approvers_home_page_counts_the_gateway_requests_waiting(plant: dict[str, Any]) -> None:
    dryer_endpoint(plant)
    qa = client_of(plant["approver"])
    assert 'data-testid="gateway-requests-waiting"' not in qa.get("/").content.decode()
    engineer = A(plant["engineer"])
    for node in ("ns=2;s=A", "ns=2;s=B"):
        svc.tag_create_request(
            actor=engineer,
            signer=sign(engineer, "requested"),
            endpoint="dry-plc",
            equipment="DRY-01",
            tag=node,
            name=node,
            reason="r",
        )
    home = qa.get("/").content.decode()
    assert "2 equipment gateway requests (tags, endpoints) wait for a QA approver" in home
    assert 'href="/master-data/changes/"' in home
    operator = client_of(make_user("operator", ["operator"]))
    assert 'data-testid="gateway-requests-waiting"' not in operator.get("/").content.decode()


@pytest.mark.req("NFR-06")
def test_the_gateway_page_reads_its_configuration_in_the_same_queries_however_many_tags(
    plant: dict[str, Any],
) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    dryer_endpoint(plant)
    engineer = client_of(plant["engineer"])

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert engineer.get("/gateway/").status_code == 200
        return len(captured.captured_queries)

    def tag(node: str) -> None:
        tag_configured(
            plant["engineer"],
            plant["approver"],
            endpoint="dry-plc",
            equipment=plant["units"]["DRY-01"],
            tag=node,
            name=node,
            reason="r",
        )

    tag("ns=2;s=A")
    queries()  # the first request of a session reads what later ones find cached (the configuration)
    one = queries()
    for node in ("ns=2;s=B", "ns=2;s=C", "ns=2;s=D"):
        tag(node)
    engineer_actor = A(plant["engineer"])
    svc.tag_create_request(
        actor=engineer_actor,
        signer=sign(engineer_actor, "requested"),
        endpoint="dry-plc",
        equipment="DRY-01",
        tag="ns=2;s=E",
        name="e",
        reason="r",
    )
    assert queries() == one
