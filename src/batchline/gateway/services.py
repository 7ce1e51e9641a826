"""The gateway's configuration: endpoints and tags, under two-person change control (P11-11, A11-13).

Which tag carries which unit's which parameter, in which unit of measure, decides what the record
will say a machine measured: GMP configuration, which no administrator changes alone
(DESIGN invariant 8, docs/trust.md). So:

- a tag is created, changed (any field) or retired only by a change request that the administrator
  signs ("requested") and another person, a QA approver, approves with their signature
  (``approvals``); the approval applies it, in its own transaction, only if the tag and its endpoint
  still stand as they did when requested (kind ``gateway_tag``);
- an endpoint's address, protocol options or retirement redirect or stop every tag on it: the same,
  kind ``gateway_endpoint``;
- registering an endpoint and renaming one stay one administrator's audited change: an endpoint
  feeds nothing until an approved tag uses it, and a tag's request binds its endpoint's address.

Every function checks the person holds ``gateway.configure_gateway`` (the administrator role), checks
the values when requested and again when applied, and writes the change and its audit entry (with
its reason) in one transaction. Nothing is deleted: a retired endpoint or tag is no longer read, and
the values it produced keep their source.

A running gateway reads the configuration when it starts (``selectors.connections``); a change
takes effect at its next start.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from batchline.approvals.models import ChangeRequest
from batchline.approvals.services import ChangeRefused, Kind, change_request, change_withdraw
from batchline.audit.services import Actor, record_create, record_update
from batchline.equipment.models import Equipment
from batchline.rules.verdict import Refused
from batchline.signatures.services import VerifiedSigner
from batchline.units import UnknownUnit, check_unit

from .models import CONFIGURE_PERMISSION, ENDPOINT_KIND, REQUEST_KINDS, TAG_KIND, Endpoint, Tag
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
        if isinstance(equipment, str):  # a unit named by its code, as a form or the API names it
            equipment = Equipment.objects.filter(code=equipment.strip()).first() or equipment
        if not isinstance(equipment, Equipment):
            raise _refuse("UNKNOWN_UNIT", f"There is no equipment unit {equipment!r}.")
        if equipment.retired_at is not None:
            raise _refuse("UNIT_RETIRED", f"Equipment {equipment.code} is retired.")
        out["equipment"] = equipment
    return out


TAG_SUBJECT = "gateway.tag"
ENDPOINT_SUBJECT = "gateway.endpoint"
# What a tag request may set; every one of them changes what, or whether, the record sees: the
# options carry a register's type, scale and word order (protocols/modbus.py), and a wide deadband
# or a slow sampling interval can hide an excursion from the judge (docs/gateway.md).
TAG_FIELDS = ("equipment", "name", "unit_of_measure", "sampling_ms", "deadband", "options")
LABELS = {
    "equipment": "unit",
    "name": "parameter",
    "unit_of_measure": "unit of measure",
    "sampling_ms": "sampling (ms)",
    "deadband": "deadband",
    "options": "options",
    "address": "address",
}


def _endpoint_state(endpoint: Endpoint | None) -> dict[str, Any] | None:
    """An endpoint as a request's ``before`` holds it: what decides where its tags are read."""
    if endpoint is None:
        return None
    return {
        "code": endpoint.code,
        "protocol": endpoint.protocol,
        "address": endpoint.address,
        "options": dict(endpoint.options),
        "retired": endpoint.retired_at is not None,
    }


def _stored_values(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Checked tag values (``_tag_values``) in their JSON form: the unit by code, the deadband as text."""
    out: dict[str, Any] = {}
    for name, value in fields.items():
        if name == "equipment":
            value = value.code
        elif name == "deadband":
            value = format(Decimal(value).normalize(), "f")
        elif name == "options":
            value = dict(value)
        out[name] = value
    return out


def _tag_state(tag: Tag | None) -> dict[str, Any] | None:
    if tag is None:
        return None
    return {
        **_stored_values({f: getattr(tag, f) for f in TAG_FIELDS}),
        "retired": tag.retired_at is not None,
    }


def tag_subject(endpoint: str, tag: str) -> str:
    """The tag's address as a subject id (64 characters at most): the same for its whole life."""
    subject = f"{endpoint}/{tag}"
    if len(subject) <= 64:
        return subject
    return subject[:47] + "#" + hashlib.blake2b(subject.encode(), digest_size=8).hexdigest()


def _tag_current(request: ChangeRequest) -> dict[str, Any]:
    """The tag and its endpoint now, in the form the request's ``before`` holds them."""
    endpoint = Endpoint.objects.filter(code=request.payload["endpoint"]).first()
    tag = (
        Tag.objects.select_related("equipment").filter(endpoint=endpoint, tag=request.payload["tag"]).first()
        if endpoint is not None
        else None
    )
    return {"endpoint": _endpoint_state(endpoint), "tag": _tag_state(tag)}


def _shown(name: str, value: Any) -> str:
    if name == "options":
        return ", ".join(f"{k}={v}" for k, v in sorted(value.items())) or "none"
    return str(value) if value not in ("", None) else "none"


def _tag_words(values: Mapping[str, Any]) -> str:
    uom = f" [{values['unit_of_measure']}]" if values.get("unit_of_measure") else ""
    return (
        f"{values['equipment']} · {values['name']}{uom}, sampling {values['sampling_ms']} ms, "
        f"deadband {values['deadband']}"
        + (f", options {_shown('options', values['options'])}" if values.get("options") else "")
    )


def _request(
    *,
    actor: Actor,
    signer: VerifiedSigner,
    kind: str,
    subject_type: str,
    subject_id: str,
    summary: str,
    payload: dict[str, Any],
    before: Any,
    reason: str,
    comment: str,
) -> ChangeRequest:
    return change_request(
        actor=actor,
        signer=signer,
        kind=kind,
        subject_type=subject_type,
        subject_id=subject_id,
        summary=summary,
        payload=payload,
        before=before,
        reason=reason,
        comment=comment,
    )


def tag_create_request(
    *,
    actor: Actor,
    signer: VerifiedSigner,
    endpoint: str,
    equipment: Equipment | str,
    tag: str,
    name: str,
    unit_of_measure: str = "",
    sampling_ms: int = 1000,
    deadband: Decimal | int | float | str = 0,
    options: Mapping[str, Any] | None = None,
    reason: str,
    comment: str = "",
) -> ChangeRequest:
    """Request that a tag at an endpoint carries a unit's parameter; a QA approver's approval creates it."""
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
    address = fields.pop("tag")
    where = _endpoint(endpoint)
    if where.retired_at is not None:
        raise _refuse("ENDPOINT_RETIRED", f"Endpoint {where.code} is retired.")
    holder = Tag.objects.filter(endpoint=where, tag=address).first()
    if holder is not None:
        raise _refuse(
            "TAG_TAKEN",
            f"Tag {address} at {where.code} is configured already"
            + (" (retired)." if holder.retired_at else f" as {holder.name}."),
        )
    values = _stored_values(fields)
    return _request(
        actor=actor,
        signer=signer,
        kind=TAG_KIND,
        subject_type=TAG_SUBJECT,
        subject_id=tag_subject(where.code, address),
        summary=f"Gateway tag {address} at {where.code} ({where.address}): new, {_tag_words(values)}",
        payload={"operation": "create", "endpoint": where.code, "tag": address, "values": values},
        before={"endpoint": _endpoint_state(where), "tag": None},
        reason=reason,
        comment=comment,
    )


def _tag_for_request(tag_id: int) -> Tag:
    tag = Tag.objects.select_related("endpoint", "equipment").filter(pk=tag_id).first()
    if tag is None:
        raise _refuse("UNKNOWN_TAG", f"There is no gateway tag {tag_id}.")
    if tag.retired_at is not None:
        raise _refuse("TAG_RETIRED", f"Tag {tag.tag} at {tag.endpoint.code} is retired.")
    return tag


def tag_change_request(
    *,
    actor: Actor,
    signer: VerifiedSigner,
    tag_id: int,
    values: Mapping[str, Any],
    reason: str,
    comment: str = "",
) -> ChangeRequest:
    """Request a change of a tag's unit, parameter, unit of measure, sampling, deadband or options."""
    may_configure(actor)
    _reason(reason)
    unknown = set(values) - set(TAG_FIELDS)
    if unknown:
        raise _refuse(
            "NOT_CHANGEABLE",
            f"A tag's {', '.join(sorted(unknown))} cannot be changed: retire it and configure another.",
        )
    tag = _tag_for_request(tag_id)
    now = _tag_state(tag)
    assert now is not None
    proposed = _stored_values(_tag_values(values))
    changed = {k: v for k, v in proposed.items() if now[k] != v}
    if not changed:
        raise _refuse("NO_CHANGE", "These are the tag's values already: nothing would change.")
    words = "; ".join(f"{LABELS[k]} {_shown(k, now[k])} → {_shown(k, v)}" for k, v in changed.items())
    return _request(
        actor=actor,
        signer=signer,
        kind=TAG_KIND,
        subject_type=TAG_SUBJECT,
        subject_id=tag_subject(tag.endpoint.code, tag.tag),
        summary=f"Gateway tag {tag.tag} at {tag.endpoint.code} ({tag.equipment.code} · {tag.name}): {words}",
        payload={"operation": "change", "endpoint": tag.endpoint.code, "tag": tag.tag, "values": changed},
        before={"endpoint": _endpoint_state(tag.endpoint), "tag": now},
        reason=reason,
        comment=comment,
    )


def tag_retire_request(
    *, actor: Actor, signer: VerifiedSigner, tag_id: int, reason: str, comment: str = ""
) -> ChangeRequest:
    """Request that a tag is read no more; its stored values stay."""
    may_configure(actor)
    _reason(reason)
    tag = _tag_for_request(tag_id)
    return _request(
        actor=actor,
        signer=signer,
        kind=TAG_KIND,
        subject_type=TAG_SUBJECT,
        subject_id=tag_subject(tag.endpoint.code, tag.tag),
        summary=f"Gateway tag {tag.tag} at {tag.endpoint.code} ({tag.equipment.code} · {tag.name}): retired",
        payload={"operation": "retire", "endpoint": tag.endpoint.code, "tag": tag.tag, "values": {}},
        before={"endpoint": _endpoint_state(tag.endpoint), "tag": _tag_state(tag)},
        reason=reason,
        comment=comment,
    )


def _applied_reason(request: ChangeRequest) -> str:
    return f"{request.number} approved: {request.reason}"


def _tag_apply(request: ChangeRequest, actor: Actor) -> None:
    """Write an approved tag request as the approver, checked against the data as it stands now."""
    payload = request.payload
    values: dict[str, Any] = dict(payload["values"])
    try:
        if "equipment" in values:
            unit = Equipment.objects.filter(code=values["equipment"]).first()
            values["equipment"] = unit if unit is not None else values["equipment"]
        fields = _tag_values(values)
        endpoint = _endpoint(payload["endpoint"], lock=True)
        if payload["operation"] == "create":
            if endpoint.retired_at is not None:
                raise _refuse("ENDPOINT_RETIRED", f"Endpoint {endpoint.code} is retired.")
            record_create(
                Tag(endpoint=endpoint, tag=payload["tag"], **fields),
                actor=actor,
                reason=_applied_reason(request),
            )
            return
        tag = Tag.objects.select_for_update().get(endpoint=endpoint, tag=payload["tag"])
        if payload["operation"] == "retire":
            fields = {"retired_at": timezone.now()}
        record_update(
            tag,
            actor=actor,
            values=fields,
            action="retire" if payload["operation"] == "retire" else "update",
            reason=_applied_reason(request),
        )
    except GatewayRefused as exc:
        raise ChangeRefused(f"{request.number} cannot be applied: {exc}") from None


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
    """Register an address the gateway connects to. Refused for a code or address that exists.

    One administrator's audited change: an endpoint feeds no parameter until an approved tag uses it,
    and that tag's request binds the endpoint's address, which the approver sees.
    """
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


def endpoint_rename(*, actor: Actor, code: str, name: str, reason: str) -> Endpoint:
    """Change an endpoint's descriptive name: one administrator's audited change."""
    may_configure(actor)
    _reason(reason)
    with transaction.atomic():
        endpoint = _endpoint(code, lock=True)
        record_update(endpoint, actor=actor, values={"name": name.strip()[:200]}, reason=reason)
        return endpoint


def _endpoint_values(endpoint: Endpoint, values: Mapping[str, Any]) -> dict[str, Any]:
    unknown = set(values) - {"address", "options"}
    if unknown:
        raise _refuse(
            "NOT_CHANGEABLE",
            f"An endpoint's {', '.join(sorted(unknown))} cannot be changed by a request"
            + (" (rename it with endpoint_rename)." if unknown == {"name"} else "."),
        )
    out: dict[str, Any] = {}
    if "address" in values:
        out["address"] = _address(Protocol(endpoint.protocol), str(values["address"]))
        holder = (
            Endpoint.objects.filter(protocol=endpoint.protocol, address=out["address"])
            .exclude(pk=endpoint.pk)
            .first()
        )
        if holder is not None:
            raise _refuse("ADDRESS_TAKEN", f"{out['address']} is endpoint {holder.code}'s already.")
    if "options" in values:
        out["options"] = _options(values["options"])
    return out


def endpoint_change_request(
    *,
    actor: Actor,
    signer: VerifiedSigner,
    code: str,
    values: Mapping[str, Any],
    reason: str,
    comment: str = "",
) -> ChangeRequest:
    """Request a new address or new options for an endpoint: every tag on it is then read there."""
    may_configure(actor)
    _reason(reason)
    endpoint = _endpoint(code)
    if endpoint.retired_at is not None:
        raise _refuse("ENDPOINT_RETIRED", f"Endpoint {endpoint.code} is retired.")
    now = _endpoint_state(endpoint)
    assert now is not None
    changed = {k: v for k, v in _endpoint_values(endpoint, values).items() if now[k] != v}
    if not changed:
        raise _refuse("NO_CHANGE", "These are the endpoint's values already: nothing would change.")
    words = "; ".join(f"{LABELS[k]} {_shown(k, now[k])} → {_shown(k, v)}" for k, v in changed.items())
    tags = endpoint.tags.filter(retired_at__isnull=True).count()
    return _request(
        actor=actor,
        signer=signer,
        kind=ENDPOINT_KIND,
        subject_type=ENDPOINT_SUBJECT,
        subject_id=endpoint.code,
        summary=f"Gateway endpoint {endpoint.code} ({tags} tag(s) read there): {words}",
        payload={"operation": "change", "endpoint": endpoint.code, "values": changed},
        before=now,
        reason=reason,
        comment=comment,
    )


def endpoint_retire_request(
    *, actor: Actor, signer: VerifiedSigner, code: str, reason: str, comment: str = ""
) -> ChangeRequest:
    """Request that an endpoint, and so every tag on it, is read no more; what it produced stays."""
    may_configure(actor)
    _reason(reason)
    endpoint = _endpoint(code)
    if endpoint.retired_at is not None:
        raise _refuse("ENDPOINT_RETIRED", f"Endpoint {endpoint.code} is retired already.")
    tags = endpoint.tags.filter(retired_at__isnull=True).count()
    return _request(
        actor=actor,
        signer=signer,
        kind=ENDPOINT_KIND,
        subject_type=ENDPOINT_SUBJECT,
        subject_id=endpoint.code,
        summary=f"Gateway endpoint {endpoint.code} ({endpoint.address}): retired, its {tags} tag(s) read no more",
        payload={"operation": "retire", "endpoint": endpoint.code, "values": {}},
        before=_endpoint_state(endpoint),
        reason=reason,
        comment=comment,
    )


def _endpoint_current(request: ChangeRequest) -> dict[str, Any] | None:
    return _endpoint_state(Endpoint.objects.filter(code=request.payload["endpoint"]).first())


def _endpoint_apply(request: ChangeRequest, actor: Actor) -> None:
    payload = request.payload
    try:
        endpoint = _endpoint(payload["endpoint"], lock=True)
        if payload["operation"] == "retire":
            record_update(
                endpoint,
                actor=actor,
                values={"retired_at": timezone.now()},
                action="retire",
                reason=_applied_reason(request),
            )
            return
        record_update(
            endpoint,
            actor=actor,
            values=_endpoint_values(endpoint, payload["values"]),
            reason=_applied_reason(request),
        )
    except GatewayRefused as exc:
        raise ChangeRefused(f"{request.number} cannot be applied: {exc}") from None


def request_withdraw(*, actor: Actor, request_id: int, reason: str) -> ChangeRequest:
    """Take back an open tag or endpoint request: nothing of it is applied, its signature stays.

    Who may: a holder of ``gateway.configure_gateway`` (the requester, or another engineer standing in);
    ``approvals.change_withdraw`` locks the request, refuses one decided meanwhile and audits the reason.
    """
    may_configure(actor)
    request = ChangeRequest.objects.filter(pk=request_id, kind__in=REQUEST_KINDS).first()
    if request is None:
        raise _refuse("UNKNOWN_REQUEST", f"There is no gateway change request {request_id}.")
    user = get_user_model().objects.get(pk=actor.id)
    return change_withdraw(actor=actor, user=user, request=request, reason=reason)


TAG_CHANGE = Kind(
    name=TAG_KIND,
    label="Change of a gateway tag",
    request_permission=CONFIGURE_PERMISSION,
    current=_tag_current,
    apply=_tag_apply,
)
ENDPOINT_CHANGE = Kind(
    name=ENDPOINT_KIND,
    label="Change of a gateway endpoint",
    request_permission=CONFIGURE_PERMISSION,
    current=_endpoint_current,
    apply=_endpoint_apply,
)
