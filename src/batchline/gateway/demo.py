"""The demo's gateway configuration: the plant simulator's OPC UA server and its tags, as an engineer
would enter them (audited, with a reason), for the units the demo plant has (issue 15)."""

from __future__ import annotations

from batchline.audit.services import Actor
from batchline.equipment.models import Equipment

from . import services
from .models import Endpoint
from .opcua_sim import TAGS, PlantSimulator

ENDPOINT = "sim-opcua"  # endpoint codes are kept in lower case


def seed(actor: Actor, *, port: int, host: str = "127.0.0.1") -> Endpoint:
    """The simulator's endpoint and a tag per simulated value; nothing is written twice."""
    found = Endpoint.objects.filter(code=ENDPOINT).first()
    if found is not None:
        return found
    reason = "demo data: the plant simulator's OPC UA server"
    address = PlantSimulator(port=port, host=host).endpoint
    endpoint = services.endpoint_create(
        actor=actor,
        code=ENDPOINT,
        name="Plant simulator (granulator and fluid-bed dryer)",
        protocol="opcua",
        address=address,
        reason=reason,
    )
    for t in TAGS:
        unit = Equipment.objects.filter(code=t.unit).first()
        if unit is None:
            continue
        services.tag_create(
            actor=actor,
            endpoint=ENDPOINT,
            equipment=unit,
            tag=PlantSimulator.node_id(t),
            name=t.parameter,
            unit_of_measure=t.unit_of_measure,
            sampling_ms=1000,
            reason=reason,
        )
    return endpoint
