"""The equipment gateway's configuration over the API: an engineer registers an endpoint and requests a tag,
a QA approver approves it, each signed; changes, retirements, withdrawals and refusals in words (issue 15)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from batchline.approvals.models import ChangeRequest
from batchline.audit.models import AuditEntry
from batchline.gateway.models import Endpoint, Tag
from batchline.gateway.selectors import connections
from tests.api.test_api import api
from tests.conftest import PASSWORD, make_user
from tests.gateway.conftest import make_plant

pytestmark = pytest.mark.django_db


@pytest.fixture
def plant(db: None) -> dict[str, Any]:
    return make_plant()


def signature(user: Any, comment: str = "") -> dict[str, str]:
    return {"username": user.username, "password": PASSWORD, "comment": comment}


ENDPOINT = {
    "code": "dry-plc",
    "name": "Dryer PLC",
    "protocol": "opcua",
    "address": "opc.tcp://10.0.4.20:4840",
    "options": {"timeout_s": 4},
    "reason": "CC-2026-120",
}


def tag_body(engineer: Any, **extra: Any) -> dict[str, Any]:
    return {
        "endpoint": "dry-plc",
        "tag": "ns=2;s=FBD01.Inlet",
        "equipment": "DRY-01",
        "name": "dryer_inlet_temp",
        "unit_of_measure": "degC",
        "sampling_ms": 500,
        "deadband": "0.2",
        "reason": "CC-2026-120 inlet air to the drying step",
        "signature": signature(engineer),
    } | extra


@pytest.mark.req("A11-14", "P11-11", "P11-13", "S95-06", "NFR-05")
def test_an_engineer_requests_a_tag_over_the_api_and_a_qa_approver_approves_it(plant: dict[str, Any]) -> None:
    engineer, qa = plant["engineer"], plant["approver"]
    created = api(engineer, "post", "/gateway/endpoints", ENDPOINT)
    assert created.status_code == 201, created.content
    assert created.json() | {"retired_at": None} == {
        "code": "dry-plc",
        "name": "Dryer PLC",
        "protocol": "opcua",
        "address": "opc.tcp://10.0.4.20:4840",
        "options": {"timeout_s": "4"},
        "tags_in_force": 0,
        "retired_at": None,
    }
    requested = api(engineer, "post", "/gateway/tags", tag_body(engineer))
    assert requested.status_code == 201, requested.content
    request = requested.json()
    assert (request["kind"], request["operation"], request["state"]) == ("gateway_tag", "create", "requested")
    assert request["payload"]["values"]["equipment"] == "DRY-01"
    assert request["summary"].startswith(
        "Gateway tag ns=2;s=FBD01.Inlet at dry-plc (opc.tcp://10.0.4.20:4840)"
    )
    assert len(request["signatures"]) == 1 and "Requested" in request["signatures"][0]
    assert [r["number"] for r in api(qa, "get", "/gateway/requests").json()] == [request["number"]]
    assert api(engineer, "get", "/gateway/tags").json() == []

    # The requester holds no approval; the approver signs and the tag is written.
    own = api(
        engineer, "post", f"/gateway/requests/{request['id']}/approve", {"signature": signature(engineer)}
    )
    assert own.status_code == 403
    approved = api(
        qa, "post", f"/gateway/requests/{request['id']}/approve", {"signature": signature(qa, "P&ID checked")}
    )
    assert approved.status_code == 200, approved.content
    assert approved.json()["state"] == "approved" and len(approved.json()["signatures"]) == 2
    (tag,) = api(engineer, "get", "/gateway/tags").json()
    assert (tag["equipment"], tag["name"], tag["unit_of_measure"], tag["sampling_ms"]) == (
        "DRY-01",
        "dryer_inlet_temp",
        "degC",
        500,
    )
    assert [t.tag for t in connections()[0].tags] == ["ns=2;s=FBD01.Inlet"]
    assert api(engineer, "get", "/gateway/endpoints").json()[0]["tags_in_force"] == 1


@pytest.mark.req("A11-14", "P11-11")
def test_tag_and_endpoint_changes_and_retirements_are_requested_rejected_and_withdrawn_over_the_api(
    plant: dict[str, Any],
) -> None:
    engineer, qa = plant["engineer"], plant["approver"]
    api(engineer, "post", "/gateway/endpoints", ENDPOINT)
    first = api(engineer, "post", "/gateway/tags", tag_body(engineer)).json()
    api(qa, "post", f"/gateway/requests/{first['id']}/approve", {"signature": signature(qa)})
    tag = Tag.objects.get()

    change = api(
        engineer,
        "post",
        f"/gateway/tags/{tag.pk}/change",
        {"values": {"deadband": "0.5"}, "reason": "qualified", "signature": signature(engineer)},
    )
    assert change.status_code == 201 and change.json()["payload"]["values"] == {"deadband": "0.5"}
    rejected = api(
        qa, "post", f"/gateway/requests/{change.json()['id']}/reject", {"signature": signature(qa)}
    )
    assert rejected.status_code == 422 and "Say why" in rejected.json()["detail"]  # a rejection says why
    rejected = api(
        qa,
        "post",
        f"/gateway/requests/{change.json()['id']}/reject",
        {"signature": signature(qa, "too wide")},
    )
    assert rejected.json()["state"] == "rejected"

    retire = api(
        engineer,
        "post",
        f"/gateway/tags/{tag.pk}/retire",
        {"reason": "removed", "signature": signature(engineer)},
    )
    assert retire.status_code == 201
    withdrawn = api(
        engineer, "post", f"/gateway/requests/{retire.json()['id']}/withdraw", {"reason": "not yet"}
    )
    assert withdrawn.status_code == 200 and withdrawn.json()["state"] == "withdrawn"
    again = api(engineer, "post", f"/gateway/requests/{retire.json()['id']}/withdraw", {"reason": "again"})
    assert again.status_code == 422 and "withdrawn" in again.json()["detail"]

    moved = api(
        engineer,
        "post",
        "/gateway/endpoints/dry-plc/change",
        {
            "values": {"address": "opc.tcp://10.0.4.21:4840"},
            "reason": "new net",
            "signature": signature(engineer),
        },
    )
    assert moved.status_code == 201 and moved.json()["kind"] == "gateway_endpoint"
    api(qa, "post", f"/gateway/requests/{moved.json()['id']}/approve", {"signature": signature(qa)})
    assert Endpoint.objects.get().address == "opc.tcp://10.0.4.21:4840"
    retired = api(
        engineer,
        "post",
        "/gateway/endpoints/dry-plc/retire",
        {"reason": "replaced", "signature": signature(engineer)},
    )
    api(qa, "post", f"/gateway/requests/{retired.json()['id']}/approve", {"signature": signature(qa)})
    assert connections() == []
    renamed = api(
        engineer, "post", "/gateway/endpoints/dry-plc/rename", {"name": "Old dryer PLC", "reason": "r"}
    )
    assert renamed.status_code == 200 and renamed.json()["retired_at"] is not None
    tag.refresh_from_db()
    assert tag.deadband == Decimal("0.2")  # rejected, never applied


@pytest.mark.req("A11-05", "P11-07")
@pytest.mark.parametrize(
    ("extra", "code", "words"),
    [
        ({"unit_of_measure": "furlongs per fortnightly"}, "UNKNOWN_UNIT", "not a unit of measure"),
        ({"sampling_ms": 5}, "BAD_SAMPLING", "sampling interval"),
        ({"equipment": "DRY-99"}, "UNKNOWN_UNIT", "no equipment unit"),
        ({"endpoint": "nowhere"}, "UNKNOWN_ENDPOINT", "no gateway endpoint"),
        ({"options": {"": "float32"}}, "BAD_OPTION", "plain value"),
    ],
)
def test_a_bad_tag_request_is_refused_in_words_with_its_code_and_writes_nothing(
    plant: dict[str, Any], extra: dict[str, Any], code: str, words: str
) -> None:
    engineer = plant["engineer"]
    api(engineer, "post", "/gateway/endpoints", ENDPOINT)
    refused = api(engineer, "post", "/gateway/tags", tag_body(engineer, **extra))
    assert refused.status_code == 422, refused.content
    assert refused.json()["code"] == code and words in refused.json()["detail"]
    assert not ChangeRequest.objects.exists()
    assert not AuditEntry.objects.filter(record_type__in=("approvals.changerequest", "gateway.tag")).exists()


@pytest.mark.req("P11-07")
def test_who_reads_and_who_writes_the_gateway_configuration_over_the_api(plant: dict[str, Any]) -> None:
    engineer, qa = plant["engineer"], plant["approver"]
    operator, auditor = make_user("operator", ["operator"]), make_user("auditor", ["auditor"])
    api(engineer, "post", "/gateway/endpoints", ENDPOINT)
    assert api(auditor, "get", "/gateway/endpoints").status_code == 200
    assert api(auditor, "get", "/gateway/requests").status_code == 200
    assert api(qa, "get", "/gateway/requests").status_code == 200
    for path in ("/gateway/endpoints", "/gateway/tags", "/gateway/requests"):
        assert api(operator, "get", path).status_code == 403, path
    assert api(operator, "post", "/gateway/endpoints", ENDPOINT | {"code": "x"}).status_code == 403
    bad_password = api(
        engineer,
        "post",
        "/gateway/tags",
        tag_body(engineer, signature={"username": "engineer", "password": "no"}),
    )
    assert bad_password.status_code == 403 and not ChangeRequest.objects.exists()
