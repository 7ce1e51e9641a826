"""The gateway tests' plant, engineer, QA approver and readings, and tags configured by the two of them."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db import transaction

from batchline.approvals.models import ChangeRequest
from batchline.approvals.services import change_approve
from batchline.audit.services import Actor, record_create
from batchline.equipment import services as eq_svc
from batchline.equipment.models import Site
from batchline.gateway import services as svc
from batchline.gateway.models import Tag
from batchline.gateway.readings import Protocol, Quality, Reading, Source
from batchline.signatures.services import VerifiedSigner, signer_authenticate
from tests.conftest import PASSWORD, make_user
from tests.signatures.test_signing import station

SETUP = Actor(None, "test-setup", "Test set-up", "cli")
ENDPOINT = "opc.tcp://127.0.0.1:4840"
T0 = dt.datetime(2026, 12, 7, 10, 0, tzinfo=dt.UTC)


def make_plant() -> dict[str, Any]:
    """A site, a granulator and a dryer, an engineer (the administrator role) to request their
    configuration and a QA approver to approve it."""
    with transaction.atomic():
        site = record_create(Site(code="p1", name="Plant 1"), actor=SETUP)
    kind = eq_svc.equipment_class_create(actor=SETUP, code="granulator", name="Granulator")
    units = {
        code: eq_svc.equipment_create(actor=SETUP, site=site, code=code, name=code, equipment_class=kind)
        for code in ("GRAN-01", "DRY-01")
    }
    return {
        "site": site,
        "units": units,
        "engineer": make_user("engineer", ["administrator"]),
        "approver": make_user("qa", ["qa_approver"]),
    }


@pytest.fixture
def plant(db: None) -> dict[str, Any]:
    return make_plant()


def reading(
    value: float | int | bool | str | None,
    *,
    at: dt.datetime = T0,
    tag: str = "ns=2;s=Inlet",
    unit: str = "GRAN-01",
    quality: Quality = Quality.GOOD,
    endpoint: str = ENDPOINT,
    received: dt.datetime | None = None,
    **extra: Any,
) -> Reading:
    """A reading as an OPC UA adapter would hand it over: device time ``at``, received a moment later."""
    return Reading(
        source=Source(unit=unit, protocol=Protocol.OPCUA, endpoint=endpoint, tag=tag),
        value=value,
        quality=quality,
        source_time=at,
        gateway_time=received or at + dt.timedelta(milliseconds=5),
        unit_of_measure=extra.pop("unit_of_measure", "degC"),
        **extra,
    )


def minute_readings(count: int, *, start: dt.datetime = T0, tag: str = "ns=2;s=Inlet") -> list[Reading]:
    return [reading(20.0 + i / 10, at=start + dt.timedelta(minutes=i), tag=tag) for i in range(count)]


def sign(actor: Actor, meaning: str) -> VerifiedSigner:
    """The person behind ``actor``, authenticated at their station for one signature."""
    from batchline.accounts.models import User

    user = User.objects.get(pk=actor.id)
    return signer_authenticate(
        request=station(user), username=user.username, password=PASSWORD, meaning=meaning
    )


def approve(
    approver: Any, request: ChangeRequest, comment: str = "checked against the P&ID"
) -> ChangeRequest:
    actor = Actor.of(approver, via="web")
    return change_approve(actor=actor, signer=sign(actor, "approved"), request=request, comment=comment)


def tag_configured(engineer: Any, approver: Any, **values: Any) -> Tag:
    """A tag as the product configures one: the engineer's signed request, the approver's signed approval."""
    actor = Actor.of(engineer, via="web")
    request = svc.tag_create_request(actor=actor, signer=sign(actor, "requested"), **values)
    approve(approver, request)
    return Tag.objects.get(endpoint__code=values["endpoint"], tag=values["tag"])
