"""The gateway's configuration under two-person change control: an engineer's signed request, a QA
approver's signed approval, each change audited with its reason; and the connections the gateway runs from."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.test import Client

from batchline.approvals.models import ChangeRequest, RequestState
from batchline.approvals.services import ChangeRefused, change_approve
from batchline.audit.models import AuditEntry
from batchline.audit.services import Actor
from batchline.audit.verify import verify
from batchline.gateway import services as svc
from batchline.gateway.models import Endpoint, Tag
from batchline.gateway.readings import Connection, Protocol, TagSpec
from batchline.gateway.selectors import connections
from batchline.signatures.models import Signature
from batchline.signatures.services import SignatureRefused
from tests.conftest import PASSWORD, make_user

from .conftest import approve, sign, tag_configured

pytestmark = pytest.mark.django_db


def A(user: Any) -> Actor:
    return Actor.of(user, via="web")


def endpoint(plant: dict[str, Any]) -> Endpoint:
    return svc.endpoint_create(
        actor=A(plant["engineer"]),
        code="gran-01-plc",
        name="Granulator PLC",
        protocol="opcua",
        address="opc.tcp://10.0.0.5:4840",
        options={"timeout_s": 4, "secure": False},
        reason="granulator connected (CC-101)",
    )


def inlet_request(plant: dict[str, Any], **extra: Any) -> Any:
    engineer = A(plant["engineer"])
    return svc.tag_create_request(
        actor=engineer,
        signer=sign(engineer, "requested"),
        **{
            "endpoint": "gran-01-plc",
            "equipment": plant["units"]["GRAN-01"],
            "tag": "ns=2;s=Inlet",
            "name": "inlet temperature",
            "unit_of_measure": "degC",
            "sampling_ms": 500,
            "deadband": "0.2",
            "reason": "CPP of the granulation step",
        }
        | extra,
    )


def configure(plant: dict[str, Any]) -> tuple[Tag, Tag]:
    endpoint(plant)
    approve(plant["approver"], inlet_request(plant))
    inlet = Tag.objects.get(tag="ns=2;s=Inlet")
    power = tag_configured(
        plant["engineer"],
        plant["approver"],
        endpoint="gran-01-plc",
        equipment=plant["units"]["GRAN-01"],
        tag="ns=2;s=Power",
        name="impeller power",
        unit_of_measure="kW",
        reason="end point of the granulation",
    )
    return inlet, power


def request_tag_change(plant: dict[str, Any], tag: Tag, values: dict[str, Any], reason: str) -> Any:
    engineer = A(plant["engineer"])
    return svc.tag_change_request(
        actor=engineer, signer=sign(engineer, "requested"), tag_id=tag.pk, values=values, reason=reason
    )


@pytest.mark.req("P11-11", "A11-13", "A11-14", "S95-06", "P11-01")
def test_an_engineer_requests_a_tag_a_qa_approver_approves_it_and_each_change_is_audited_with_its_reason(
    plant: dict[str, Any],
) -> None:
    inlet, _power = configure(plant)
    approve(
        plant["approver"],
        request_tag_change(
            plant, inlet, {"deadband": "0.5"}, "deadband widened after qualification (CC-102)"
        ),
    )
    trail = AuditEntry.objects.filter(record_type__startswith="gateway.").order_by("id")
    first, second, third = (r.number for r in ChangeRequest.objects.order_by("id"))
    # The endpoint is the engineer's alone; each tag is written by the approval that applied it.
    assert [(e.action, e.record_type, e.reason, e.actor_username) for e in trail] == [
        ("create", "gateway.endpoint", "granulator connected (CC-101)", "engineer"),
        ("create", "gateway.tag", f"{first} approved: CPP of the granulation step", "qa"),
        ("create", "gateway.tag", f"{second} approved: end point of the granulation", "qa"),
        ("update", "gateway.tag", f"{third} approved: deadband widened after qualification (CC-102)", "qa"),
    ]
    assert '"deadband":["0.200000","0.500000"]' in trail.last().changes
    # The trail replays to the configuration as it stands (P11-01): nothing was written behind it.
    report = verify()
    assert report.ok, [str(f) for f in report.findings]


@pytest.mark.req("A11-14", "P11-13", "P11-14", "S95-06")
def test_the_approval_applies_the_request_and_both_signatures_are_on_it(plant: dict[str, Any]) -> None:
    endpoint(plant)
    request = inlet_request(plant)
    assert request.kind == "gateway_tag" and request.state == RequestState.REQUESTED
    assert request.summary == (
        "Gateway tag ns=2;s=Inlet at gran-01-plc (opc.tcp://10.0.0.5:4840): new, "
        "GRAN-01 · inlet temperature [degC], sampling 500 ms, deadband 0.2"
    )
    # Requested, signed, and nothing is read yet: the gateway runs only what was approved.
    assert not Tag.objects.exists()
    assert connections() == []

    approve(plant["approver"], request)
    request.refresh_from_db()
    assert (request.state, request.decided_by) == (RequestState.APPROVED, plant["approver"])
    signatures = Signature.objects.filter(record_type="approvals.changerequest", record_id=str(request.pk))
    assert sorted((s.meaning, s.signer_username) for s in signatures) == [
        ("approved", "qa"),
        ("requested", "engineer"),
    ]
    tag = Tag.objects.get()
    assert (tag.equipment.code, tag.name, tag.unit_of_measure, tag.sampling_ms) == (
        "GRAN-01",
        "inlet temperature",
        "degC",
        500,
    )


@pytest.mark.req("A11-14", "P11-07")
def test_the_requester_cannot_approve_their_own_request_nor_can_another_engineer(
    plant: dict[str, Any],
) -> None:
    endpoint(plant)
    both = make_user(
        "both", ["administrator", "qa_approver"]
    )  # test set-up: incompatible roles, set directly
    actor = A(both)
    request = svc.tag_create_request(
        actor=actor,
        signer=sign(actor, "requested"),
        endpoint="gran-01-plc",
        equipment=plant["units"]["GRAN-01"],
        tag="ns=2;s=Inlet",
        name="inlet temperature",
        reason="CPP",
    )
    with pytest.raises(ChangeRefused, match="You requested this change"):
        change_approve(actor=actor, signer=sign(actor, "approved"), request=request)
    other = A(plant["engineer"])
    with pytest.raises(ChangeRefused, match="Only a QA approver"):
        change_approve(actor=other, signer=sign(other, "approved"), request=request)
    request.refresh_from_db()
    assert request.state == RequestState.REQUESTED
    assert not Tag.objects.exists()


@pytest.mark.req("A11-14", "P11-07", "P11-11")
def test_an_administrator_alone_cannot_create_remap_or_retire_a_tag(plant: dict[str, Any]) -> None:
    inlet, _power = configure(plant)
    # The single-person writers of a tag are gone: what a tag means changes only by an approved request.
    for gone in ("tag_create", "tag_change", "tag_retire", "endpoint_change", "endpoint_retire"):
        assert not hasattr(svc, gone), gone
    request_tag_change(
        plant, inlet, {"name": "outlet temperature", "equipment": plant["units"]["DRY-01"]}, "remap"
    )
    inlet.refresh_from_db()
    assert (inlet.name, inlet.equipment.code) == ("inlet temperature", "GRAN-01")
    # One request per tag at a time: a second would be approved against a stale "before".
    with pytest.raises(ChangeRefused, match="already waiting"):
        request_tag_change(plant, inlet, {"unit_of_measure": "K"}, "kelvin")
    # Renaming an endpoint is descriptive; its address is not reachable that way.
    with pytest.raises(TypeError):
        svc.endpoint_rename(
            actor=A(plant["engineer"]), code="gran-01-plc", address="opc.tcp://evil:4840", reason="r"
        )  # type: ignore[call-arg]
    svc.endpoint_rename(
        actor=A(plant["engineer"]), code="gran-01-plc", name="Granulator 1 PLC", reason="typo"
    )
    assert Endpoint.objects.get().address == "opc.tcp://10.0.0.5:4840"


@pytest.mark.req("A11-14", "P11-11")
def test_a_request_whose_tag_or_endpoint_moved_on_is_refused_on_approval(plant: dict[str, Any]) -> None:
    inlet, _power = configure(plant)
    engineer = A(plant["engineer"])
    waiting = request_tag_change(plant, inlet, {"name": "product temperature"}, "the probe sits in the bed")
    moved = svc.endpoint_change_request(
        actor=engineer,
        signer=sign(engineer, "requested"),
        code="gran-01-plc",
        values={"address": "opc.tcp://10.0.0.6:4840"},
        reason="PLC moved to the new network (CC-110)",
    )
    assert moved.summary == (
        "Gateway endpoint gran-01-plc (2 tag(s) read there): address opc.tcp://10.0.0.5:4840 → opc.tcp://10.0.0.6:4840"
    )
    approve(plant["approver"], moved)
    assert connections()[0].endpoint == "opc.tcp://10.0.0.6:4840"
    with pytest.raises(ChangeRefused, match="no longer as it was when requested"):
        approve(plant["approver"], waiting)
    inlet.refresh_from_db()
    assert inlet.name == "inlet temperature"
    waiting.refresh_from_db()
    assert waiting.state == RequestState.REQUESTED  # withdrawn and requested again by the engineer


@pytest.mark.req("S95-06", "A11-14")
def test_the_gateway_runs_from_the_configuration_as_connections_with_their_tags(
    plant: dict[str, Any],
) -> None:
    inlet, _power = configure(plant)
    assert connections() == [
        Connection(
            protocol=Protocol.OPCUA,
            endpoint="opc.tcp://10.0.0.5:4840",
            tags=(
                TagSpec(
                    unit="GRAN-01",
                    tag="ns=2;s=Inlet",
                    name="inlet temperature",
                    unit_of_measure="degC",
                    sampling_ms=500,
                    deadband=0.2,
                ),
                TagSpec(unit="GRAN-01", tag="ns=2;s=Power", name="impeller power", unit_of_measure="kW"),
            ),
            options={"timeout_s": "4", "secure": "false"},
        )
    ]
    engineer = A(plant["engineer"])
    approve(
        plant["approver"],
        svc.tag_retire_request(
            actor=engineer, signer=sign(engineer, "requested"), tag_id=inlet.pk, reason="sensor removed"
        ),
    )
    assert [t.tag for t in connections()[0].tags] == ["ns=2;s=Power"]
    retire = svc.endpoint_retire_request(
        actor=engineer, signer=sign(engineer, "requested"), code="gran-01-plc", reason="PLC replaced"
    )
    assert connections() != []  # requested only
    approve(plant["approver"], retire)
    assert connections() == []


@pytest.mark.req("P11-07", "A11-13")
def test_only_an_engineer_configures_the_gateway_and_always_with_a_reason(plant: dict[str, Any]) -> None:
    operator = A(make_user("operator", ["operator"]))
    with pytest.raises(svc.GatewayRefused, match="do not allow you to configure"):
        svc.endpoint_create(
            actor=operator, code="x", name="x", protocol="opcua", address="opc.tcp://h:4840", reason="because"
        )
    with pytest.raises(svc.GatewayRefused, match="Say why"):
        svc.endpoint_create(
            actor=A(plant["engineer"]),
            code="x",
            name="x",
            protocol="opcua",
            address="opc.tcp://h:4840",
            reason=" ",
        )
    assert not AuditEntry.objects.filter(record_type__startswith="gateway.").exists()
    endpoint(plant)
    # Nor does anyone else request a tag: their roles do not even let them sign a request.
    with pytest.raises(SignatureRefused, match="do not allow you to sign as 'Requested'"):
        sign(operator, "requested")
    with pytest.raises(svc.GatewayRefused, match="Say why"):
        inlet_request(plant, reason="")


@pytest.mark.req("A11-05", "S88-04")
@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("unit_of_measure", "furlongs per fortnightly", "not a unit of measure"),
        ("sampling_ms", 5, "sampling interval"),
        ("deadband", "-1", "deadband"),
        ("deadband", "lots", "deadband"),
        ("tag", "", "between 1 and 300"),
    ],
)
def test_a_tag_with_a_value_that_makes_no_sense_is_refused_in_words(
    plant: dict[str, Any], field: str, value: Any, words: str
) -> None:
    configure(plant)
    given: dict[str, Any] = {
        "tag": "ns=2;s=Outlet",
        "name": "outlet temperature",
        "unit_of_measure": "degC",
        "sampling_ms": 1000,
        "deadband": Decimal(0),
    } | {field: value}
    engineer = A(plant["engineer"])
    with pytest.raises(svc.GatewayRefused, match=words):
        svc.tag_create_request(
            actor=engineer,
            signer=sign(engineer, "requested"),
            endpoint="gran-01-plc",
            equipment=plant["units"]["DRY-01"],
            reason="outlet",
            **given,
        )


@pytest.mark.req("A11-05")
def test_an_address_of_another_protocol_or_one_taken_is_refused(plant: dict[str, Any]) -> None:
    configure(plant)
    engineer = A(plant["engineer"])
    with pytest.raises(svc.GatewayRefused, match="modbus://host:port"):
        svc.endpoint_create(
            actor=engineer, code="m", name="m", protocol="modbus", address="opc.tcp://h:502", reason="r"
        )
    with pytest.raises(svc.GatewayRefused, match="gran-01-plc's already"):
        svc.endpoint_create(
            actor=engineer,
            code="m",
            name="m",
            protocol="opcua",
            address="opc.tcp://10.0.0.5:4840",
            reason="r",
        )
    with pytest.raises(svc.GatewayRefused, match="configured already as inlet temperature"):
        inlet_request(plant, equipment=plant["units"]["DRY-01"], name="again", reason="r")


@pytest.mark.req("A11-14", "P11-07", "P11-13")
def test_a_qa_approver_reads_a_tag_request_on_the_requests_page_and_decides_it_there(
    plant: dict[str, Any],
) -> None:
    endpoint(plant)
    request = inlet_request(plant)
    qa, engineer = Client(), Client()
    qa.force_login(plant["approver"])
    engineer.force_login(plant["engineer"])
    page = qa.get("/master-data/changes/").content.decode()
    assert f'data-request="{request.number}"' in page
    assert "Change of a gateway tag" in page and "GRAN-01 · inlet temperature [degC]" in page
    assert "CPP of the granulation step" in page
    # The requester holds no approval; a wrong password signs nothing.
    assert (
        engineer.post(
            f"/master-data/gateway-changes/{request.pk}/approve/",
            {"signer_username": "engineer", "signer_password": PASSWORD},
        ).status_code
        == 403
    )
    refused = qa.post(
        f"/master-data/gateway-changes/{request.pk}/approve/",
        {"signer_username": "qa", "signer_password": "no"},
    )
    assert refused.status_code == 422 and not Tag.objects.exists()
    approved = qa.post(
        f"/master-data/gateway-changes/{request.pk}/approve/",
        {"signer_username": "qa", "signer_password": PASSWORD},
    )
    assert approved.status_code == 302
    assert Tag.objects.get().name == "inlet temperature"
    assert f'data-request="{request.number}"' not in qa.get("/master-data/changes/").content.decode()
