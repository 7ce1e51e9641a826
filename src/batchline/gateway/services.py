"""The gateway's configuration: endpoints and tags, each change audited with its reason (P11-11, A11-13).

Which unit speaks which protocol at which address, and which tag carries which parameter in which
unit of measure, decide what the record will say a machine measured: configuration of GMP
significance. Every function here is one engineer's action: it checks the person holds
``gateway.configure_gateway`` (the administrator role), checks the values, and writes the change
and its audit entry in one transaction. Nothing is deleted: a retired endpoint or tag is no longer
read, and the values it produced keep their source.

A running gateway reads the configuration when it starts (``selectors.connections``); a change
takes effect at its next start.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from batchline.audit.services import Actor, record_create, record_update
from batchline.equipment.models import Equipment
from batchline.rules.verdict import Refused
from batchline.units import UnknownUnit, check_unit

from .models import CONFIGURE_PERMISSION, Endpoint, Tag
from .readings import Protocol


class GatewayRefused(Refused):
    """The configuration change was refused; the message says why, and nothing was written."""


_refuse = GatewayRefused.because

# The address schemes each protocol's adapter reads (readings.Source.endpoint).
SCHEMES: dict[Protocol, tuple[str, ...]] = {
    Protocol.OPCUA: ("opc.tcp",),
    Protocol.SPARKPLUG: ("mqtt", "mqtts"),
    Protocol.MQTT_JSON: ("mqtt", "mqtts"),
    Protocol.MODBUS: ("modbus",),
}
SAMPLING_MS = (10, 24 * 3600 * 1000)


def may_configure(actor: Actor) -> None:
    user = get_user_model().objects.filter(pk=actor.id, is_active=True).first() if actor.id else None
    if user is None or not user.has_perm(CONFIGURE_PERMISSION):
        raise _refuse("NOT_ALLOWED", "Your roles do not allow you to configure the equipment gateway.")


def _reason(reason: str) -> str:
    if not reason.strip():
        raise _refuse("REASON_REQUIRED", "Say why the gateway's configuration changes.")
    return reason


def _protocol(value: str) -> Protocol:
    try:
        return Protocol(value)
    except ValueError:
        known = ", ".join(p.value for p in Protocol)
        raise _refuse("UNKNOWN_PROTOCOL", f"The gateway speaks {known}, not {value!r}.") from None


def _address(protocol: Protocol, address: str) -> str:
    address = address.strip()
    parts = urlsplit(address)
    if parts.scheme not in SCHEMES[protocol] or not parts.hostname:
        raise _refuse(
            "BAD_ADDRESS",
            f"A {protocol.value} endpoint's address looks like {SCHEMES[protocol][0]}://host:port…, "
            f"not {address!r}.",
        )
    return address


def _options(options: Mapping[str, Any] | None) -> dict[str, str]:
    """Options as text, as readings.Connection and TagSpec carry them."""
    out: dict[str, str] = {}
    for name, value in (options or {}).items():
        if not isinstance(name, str) or not name or not isinstance(value, str | int | float | bool):
            raise _refuse("BAD_OPTION", f"Option {name!r}: give a name and a plain value (text or number).")
        out[name] = str(value).lower() if isinstance(value, bool) else str(value)
    return out


def _endpoint(code: str, *, lock: bool = False) -> Endpoint:
    queryset = Endpoint.objects.select_for_update() if lock else Endpoint.objects.all()
    endpoint = queryset.filter(code=code).first()
    if endpoint is None:
        raise _refuse("UNKNOWN_ENDPOINT", f"There is no gateway endpoint {code!r}.")
    return endpoint


def _tag_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """The tag fields among ``values``, checked and in their stored form."""
    out: dict[str, Any] = {}
    if "tag" in values:
        tag = str(values["tag"]).strip()
        if not tag or len(tag) > 300:
            raise _refuse("BAD_TAG", "A tag's address is between 1 and 300 characters.")
        out["tag"] = tag
    if "name" in values:
        name = str(values["name"]).strip()
        if not name:
            raise _refuse("NAME_REQUIRED", "Name the parameter the tag carries, as recipes name it.")
        out["name"] = name[:200]
    if "unit_of_measure" in values:
        try:
            out["unit_of_measure"] = check_unit(str(values["unit_of_measure"] or ""))
        except UnknownUnit:
            raise _refuse(
                "UNKNOWN_UNIT", f"{values['unit_of_measure']!r} is not a unit of measure Batchline knows."
            ) from None
    if "sampling_ms" in values:
        sampling = values["sampling_ms"]
        if not isinstance(sampling, int) or not SAMPLING_MS[0] <= sampling <= SAMPLING_MS[1]:
            raise _refuse(
                "BAD_SAMPLING",
                f"The sampling interval is a whole number of milliseconds from {SAMPLING_MS[0]} "
                f"to {SAMPLING_MS[1]:,}, not {sampling!r}.",
            )
        out["sampling_ms"] = sampling
    if "deadband" in values:
        try:
            deadband = Decimal(str(values["deadband"]))
        except InvalidOperation:
            deadband = Decimal(-1)
        if not deadband.is_finite() or deadband < 0:
            raise _refuse(
                "BAD_DEADBAND", f"The deadband is a number of 0 or more, not {values['deadband']!r}."
            )
        out["deadband"] = deadband
    if "options" in values:
        out["options"] = _options(values["options"])
    if "equipment" in values:
        equipment = values["equipment"]
        if not isinstance(equipment, Equipment):
            raise _refuse("UNKNOWN_UNIT", f"There is no equipment unit {equipment!r}.")
        if equipment.retired_at is not None:
            raise _refuse("UNIT_RETIRED", f"Equipment {equipment.code} is retired.")
        out["equipment"] = equipment
    return out


def endpoint_create(
    *,
    actor: Actor,
    code: str,
    name: str,
    protocol: str,
    address: str,
    options: Mapping[str, Any] | None = None,
    reason: str,
) -> Endpoint:
    """Register an address the gateway connects to. Refused for a code or address that exists."""
    may_configure(actor)
    _reason(reason)
    proto = _protocol(protocol)
    address = _address(proto, address)
    code = code.strip().lower()
    if not code:
        raise _refuse("CODE_REQUIRED", "An endpoint needs a code.")
    with transaction.atomic():
        if Endpoint.objects.filter(code=code).exists():
            raise _refuse("CODE_TAKEN", f"A gateway endpoint {code} exists already.")
        holder = Endpoint.objects.filter(protocol=proto.value, address=address).first()
        if holder is not None:
            raise _refuse("ADDRESS_TAKEN", f"{address} is endpoint {holder.code}'s already.")
        return record_create(
            Endpoint(
                code=code,
                name=name.strip()[:200],
                protocol=proto.value,
                address=address,
                options=_options(options),
            ),
            actor=actor,
            reason=reason,
        )


def endpoint_change(*, actor: Actor, code: str, values: Mapping[str, Any], reason: str) -> Endpoint:
    """Change an endpoint's name, address or options (its protocol stays: register another instead)."""
    may_configure(actor)
    _reason(reason)
    unknown = set(values) - {"name", "address", "options"}
    if unknown:
        raise _refuse("NOT_CHANGEABLE", f"An endpoint's {', '.join(sorted(unknown))} cannot be changed.")
    with transaction.atomic():
        endpoint = _endpoint(code, lock=True)
        changes: dict[str, Any] = {}
        if "name" in values:
            changes["name"] = str(values["name"]).strip()[:200]
        if "address" in values:
            changes["address"] = _address(Protocol(endpoint.protocol), str(values["address"]))
            holder = (
                Endpoint.objects.filter(protocol=endpoint.protocol, address=changes["address"])
                .exclude(pk=endpoint.pk)
                .first()
            )
            if holder is not None:
                raise _refuse("ADDRESS_TAKEN", f"{changes['address']} is endpoint {holder.code}'s already.")
        if "options" in values:
            changes["options"] = _options(values["options"])
        record_update(endpoint, actor=actor, values=changes, reason=reason)
        return endpoint


def endpoint_retire(*, actor: Actor, code: str, reason: str) -> Endpoint:
    """Stop reading an endpoint (and so all its tags); what it produced stays with its source."""
    may_configure(actor)
    _reason(reason)
    with transaction.atomic():
        endpoint = _endpoint(code, lock=True)
        if endpoint.retired_at is None:
            record_update(
                endpoint, actor=actor, values={"retired_at": timezone.now()}, action="retire", reason=reason
            )
        return endpoint


def tag_create(
    *,
    actor: Actor,
    endpoint: str,
    equipment: Equipment,
    tag: str,
    name: str,
    unit_of_measure: str = "",
    sampling_ms: int = 1000,
    deadband: Decimal | int | float | str = 0,
    options: Mapping[str, Any] | None = None,
    reason: str,
) -> Tag:
    """Say which unit's which parameter a tag at an endpoint carries, in which unit of measure."""
    may_configure(actor)
    _reason(reason)
    fields = _tag_values(
        {
            "tag": tag,
            "name": name,
            "unit_of_measure": unit_of_measure,
            "sampling_ms": sampling_ms,
            "deadband": deadband,
            "options": options,
            "equipment": equipment,
        }
    )
    with transaction.atomic():
        where = _endpoint(endpoint, lock=True)
        if where.retired_at is not None:
            raise _refuse("ENDPOINT_RETIRED", f"Endpoint {where.code} is retired.")
        holder = Tag.objects.filter(endpoint=where, tag=fields["tag"]).first()
        if holder is not None:
            raise _refuse(
                "TAG_TAKEN",
                f"Tag {fields['tag']} at {where.code} is configured already"
                + (" (retired)." if holder.retired_at else f" as {holder.name}."),
            )
        return record_create(Tag(endpoint=where, **fields), actor=actor, reason=reason)


def tag_change(*, actor: Actor, tag_id: int, values: Mapping[str, Any], reason: str) -> Tag:
    """Change a tag's parameter name, unit, unit of measure, sampling, deadband or options."""
    may_configure(actor)
    _reason(reason)
    unknown = set(values) - {"name", "unit_of_measure", "sampling_ms", "deadband", "options", "equipment"}
    if unknown:
        raise _refuse(
            "NOT_CHANGEABLE",
            f"A tag's {', '.join(sorted(unknown))} cannot be changed: retire it and configure another.",
        )
    changes = _tag_values(values)
    with transaction.atomic():
        tag = Tag.objects.select_for_update().filter(pk=tag_id).first()
        if tag is None:
            raise _refuse("UNKNOWN_TAG", f"There is no gateway tag {tag_id}.")
        record_update(tag, actor=actor, values=changes, reason=reason)
        return tag


def tag_retire(*, actor: Actor, tag_id: int, reason: str) -> Tag:
    """Stop reading a tag; its stored values stay."""
    may_configure(actor)
    _reason(reason)
    with transaction.atomic():
        tag = Tag.objects.select_for_update().filter(pk=tag_id).first()
        if tag is None:
            raise _refuse("UNKNOWN_TAG", f"There is no gateway tag {tag_id}.")
        if tag.retired_at is None:
            record_update(
                tag, actor=actor, values={"retired_at": timezone.now()}, action="retire", reason=reason
            )
        return tag
