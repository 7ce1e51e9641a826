"""The demo's gateway configuration: the plant simulator's OPC UA server and its tags, as an engineer
would enter them (issue 15): the endpoint registered by the administrator, each tag requested by them
and approved by a QA approver, both signed, as every tag is."""

from __future__ import annotations

from collections.abc import Callable

from batchline.approvals.services import change_approve
from batchline.audit.services import Actor
from batchline.equipment.models import Equipment
from batchline.signatures.services import VerifiedSigner

from . import services
from .models import Endpoint, Tag
from .opcua_sim import TAGS, PlantSimulator

ENDPOINT = "sim-opcua"  # endpoint codes are kept in lower case

# Authenticates a person for one signature with a meaning ("requested", "approved").
Sign = Callable[[Actor, str], VerifiedSigner]


def seed(actor: Actor, *, approver: Actor, sign: Sign, port: int, host: str = "127.0.0.1") -> Endpoint:
    """The simulator's endpoint and a tag per simulated value; nothing is written twice."""
    reason = "demo data: the plant simulator's OPC UA server"
    endpoint = Endpoint.objects.filter(code=ENDPOINT).first()
    if endpoint is None:
        endpoint = services.endpoint_create(
            actor=actor,
            code=ENDPOINT,
            name="Plant simulator (granulator and fluid-bed dryer)",
            protocol="opcua",
            address=PlantSimulator(port=port, host=host).endpoint,
            reason=reason,
        )
    for t in TAGS:
        unit = Equipment.objects.filter(code=t.unit).first()
        node = PlantSimulator.node_id(t)
        if unit is None or Tag.objects.filter(endpoint=endpoint, tag=node).exists():
            continue
        request = services.tag_create_request(
            actor=actor,
            signer=sign(actor, "requested"),
            endpoint=ENDPOINT,
            equipment=unit,
            tag=node,
            name=t.parameter,
            unit_of_measure=t.unit_of_measure,
            sampling_ms=1000,
            reason=reason,
        )
        change_approve(
            actor=approver, signer=sign(approver, "approved"), request=request, comment="demo data"
        )
    return endpoint
