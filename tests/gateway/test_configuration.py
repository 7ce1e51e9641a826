"""The gateway's configuration: an engineer's audited changes, and the connections the gateway runs from."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from batchline.audit.models import AuditEntry
from batchline.audit.services import Actor
from batchline.audit.verify import verify
from batchline.gateway import services as svc
from batchline.gateway.readings import Connection, Protocol, TagSpec
from batchline.gateway.selectors import connections
from tests.conftest import make_user

pytestmark = pytest.mark.django_db


def A(user: Any) -> Actor:
    return Actor.of(user, via="web")


def configure(plant: dict[str, Any]) -> tuple[Any, Any]:
    engineer = A(plant["engineer"])
    svc.endpoint_create(
        actor=engineer,
        code="gran-01-plc",
        name="Granulator PLC",
        protocol="opcua",
        address="opc.tcp://10.0.0.5:4840",
        options={"timeout_s": 4, "secure": False},
        reason="granulator connected (CC-101)",
    )
    inlet = svc.tag_create(
        actor=engineer,
        endpoint="gran-01-plc",
        equipment=plant["units"]["GRAN-01"],
        tag="ns=2;s=Inlet",
        name="inlet temperature",
        unit_of_measure="degC",
        sampling_ms=500,
        deadband="0.2",
        reason="CPP of the granulation step",
    )
    power = svc.tag_create(
        actor=engineer,
        endpoint="gran-01-plc",
        equipment=plant["units"]["GRAN-01"],
        tag="ns=2;s=Power",
        name="impeller power",
        unit_of_measure="kW",
        reason="end point of the granulation",
    )
    return inlet, power


@pytest.mark.req("P11-11", "A11-13", "S95-06", "P11-01")
def test_an_engineer_configures_an_endpoint_and_its_tags_and_each_change_is_audited_with_its_reason(
    plant: dict[str, Any],
) -> None:
    inlet, _power = configure(plant)
    svc.tag_change(
        actor=A(plant["engineer"]),
        tag_id=inlet.pk,
        values={"deadband": "0.5"},
        reason="deadband widened after qualification (CC-102)",
    )
    trail = AuditEntry.objects.filter(record_type__startswith="gateway.").order_by("id")
    assert [(e.action, e.record_type, e.reason, e.actor_username) for e in trail] == [
        ("create", "gateway.endpoint", "granulator connected (CC-101)", "engineer"),
        ("create", "gateway.tag", "CPP of the granulation step", "engineer"),
        ("create", "gateway.tag", "end point of the granulation", "engineer"),
        ("update", "gateway.tag", "deadband widened after qualification (CC-102)", "engineer"),
    ]
    assert '"deadband":["0.200000","0.500000"]' in trail.last().changes
    # The trail replays to the configuration as it stands (P11-01): nothing was written behind it.
    report = verify()
    assert report.ok, [str(f) for f in report.findings]


@pytest.mark.req("S95-06")
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
    svc.tag_retire(actor=A(plant["engineer"]), tag_id=inlet.pk, reason="sensor removed")
    assert [t.tag for t in connections()[0].tags] == ["ns=2;s=Power"]
    svc.endpoint_retire(actor=A(plant["engineer"]), code="gran-01-plc", reason="PLC replaced")
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
    with pytest.raises(svc.GatewayRefused, match=words):
        svc.tag_create(
            actor=A(plant["engineer"]),
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
        svc.tag_create(
            actor=engineer,
            endpoint="gran-01-plc",
            equipment=plant["units"]["DRY-01"],
            tag="ns=2;s=Inlet",
            name="again",
            reason="r",
        )
