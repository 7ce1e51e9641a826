"""Tags under two-person change control: created, changed or retired by a signed request that a QA
approver's signed approval applies (kind ``gateway_tag``, see ``services``)."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from django.utils import timezone

from batchline.approvals.models import ChangeRequest
from batchline.approvals.services import ChangeRefused
from batchline.audit.services import Actor, record_create, record_update
from batchline.equipment.models import Equipment
from batchline.signatures.services import VerifiedSigner
from batchline.units import UnknownUnit, check_unit

from .changes import (
    LABELS,
    SAMPLING_MS,
    TAG_FIELDS,
    TAG_SUBJECT,
    GatewayRefused,
    applied_reason,
    checked_reason,
    endpoint_of,
    endpoint_state,
    may_configure,
    options_of,
    refuse,
    request_make,
    shown,
    stored_values,
    tag_state,
    tag_subject,
)
from .models import TAG_KIND, Endpoint, Tag


def tag_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """The tag fields among ``values``, checked and in their stored form."""
    out: dict[str, Any] = {}
    if "tag" in values:
        tag = str(values["tag"]).strip()
        if not tag or len(tag) > 300:
            raise refuse("BAD_TAG", "A tag's address is between 1 and 300 characters.")
        out["tag"] = tag
    if "name" in values:
        name = str(values["name"]).strip()
        if not name:
            raise refuse("NAME_REQUIRED", "Name the parameter the tag carries, as recipes name it.")
        out["name"] = name[:200]
    if "unit_of_measure" in values:
        try:
            out["unit_of_measure"] = check_unit(str(values["unit_of_measure"] or ""))
        except UnknownUnit:
            raise refuse(
                "UNKNOWN_UNIT", f"{values['unit_of_measure']!r} is not a unit of measure Batchline knows."
            ) from None
    if "sampling_ms" in values:
        sampling = values["sampling_ms"]
        if not isinstance(sampling, int) or not SAMPLING_MS[0] <= sampling <= SAMPLING_MS[1]:
            raise refuse(
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
            raise refuse(
                "BAD_DEADBAND", f"The deadband is a number of 0 or more, not {values['deadband']!r}."
            )
        out["deadband"] = deadband
    if "options" in values:
        out["options"] = options_of(values["options"])
    if "equipment" in values:
        equipment = values["equipment"]
        if isinstance(equipment, str):  # a unit named by its code, as a form or the API names it
            equipment = Equipment.objects.filter(code=equipment.strip()).first() or equipment
        if not isinstance(equipment, Equipment):
            raise refuse("UNKNOWN_UNIT", f"There is no equipment unit {equipment!r}.")
        if equipment.retired_at is not None:
            raise refuse("UNIT_RETIRED", f"Equipment {equipment.code} is retired.")
        out["equipment"] = equipment
    return out


def tag_current(request: ChangeRequest) -> dict[str, Any]:
    """The tag and its endpoint now, in the form the request's ``before`` holds them."""
    endpoint = Endpoint.objects.filter(code=request.payload["endpoint"]).first()
    tag = (
        Tag.objects.select_related("equipment").filter(endpoint=endpoint, tag=request.payload["tag"]).first()
        if endpoint is not None
        else None
    )
    return {"endpoint": endpoint_state(endpoint), "tag": tag_state(tag)}


def tag_words(values: Mapping[str, Any]) -> str:
    uom = f" [{values['unit_of_measure']}]" if values.get("unit_of_measure") else ""
    return (
        f"{values['equipment']} · {values['name']}{uom}, sampling {values['sampling_ms']} ms, "
        f"deadband {values['deadband']}"
        + (f", options {shown('options', values['options'])}" if values.get("options") else "")
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
    checked_reason(reason)
    fields = tag_values(
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
    where = endpoint_of(endpoint)
    if where.retired_at is not None:
        raise refuse("ENDPOINT_RETIRED", f"Endpoint {where.code} is retired.")
    holder = Tag.objects.filter(endpoint=where, tag=address).first()
    if holder is not None:
        raise refuse(
            "TAG_TAKEN",
            f"Tag {address} at {where.code} is configured already"
            + (" (retired)." if holder.retired_at else f" as {holder.name}."),
        )
    values = stored_values(fields)
    return request_make(
        actor=actor,
        signer=signer,
        kind=TAG_KIND,
        subject_type=TAG_SUBJECT,
        subject_id=tag_subject(where.code, address),
        summary=f"Gateway tag {address} at {where.code} ({where.address}): new, {tag_words(values)}",
        payload={"operation": "create", "endpoint": where.code, "tag": address, "values": values},
        before={"endpoint": endpoint_state(where), "tag": None},
        reason=reason,
        comment=comment,
    )


def tag_for_request(tag_id: int) -> Tag:
    tag = Tag.objects.select_related("endpoint", "equipment").filter(pk=tag_id).first()
    if tag is None:
        raise refuse("UNKNOWN_TAG", f"There is no gateway tag {tag_id}.")
    if tag.retired_at is not None:
        raise refuse("TAG_RETIRED", f"Tag {tag.tag} at {tag.endpoint.code} is retired.")
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
    checked_reason(reason)
    unknown = set(values) - set(TAG_FIELDS)
    if unknown:
        raise refuse(
            "NOT_CHANGEABLE",
            f"A tag's {', '.join(sorted(unknown))} cannot be changed: retire it and configure another.",
        )
    tag = tag_for_request(tag_id)
    now = tag_state(tag)
    assert now is not None
    proposed = stored_values(tag_values(values))
    changed = {k: v for k, v in proposed.items() if now[k] != v}
    if not changed:
        raise refuse("NO_CHANGE", "These are the tag's values already: nothing would change.")
    words = "; ".join(f"{LABELS[k]} {shown(k, now[k])} → {shown(k, v)}" for k, v in changed.items())
    return request_make(
        actor=actor,
        signer=signer,
        kind=TAG_KIND,
        subject_type=TAG_SUBJECT,
        subject_id=tag_subject(tag.endpoint.code, tag.tag),
        summary=f"Gateway tag {tag.tag} at {tag.endpoint.code} ({tag.equipment.code} · {tag.name}): {words}",
        payload={"operation": "change", "endpoint": tag.endpoint.code, "tag": tag.tag, "values": changed},
        before={"endpoint": endpoint_state(tag.endpoint), "tag": now},
        reason=reason,
        comment=comment,
    )


def tag_retire_request(
    *, actor: Actor, signer: VerifiedSigner, tag_id: int, reason: str, comment: str = ""
) -> ChangeRequest:
    """Request that a tag is read no more; its stored values stay."""
    may_configure(actor)
    checked_reason(reason)
    tag = tag_for_request(tag_id)
    return request_make(
        actor=actor,
        signer=signer,
        kind=TAG_KIND,
        subject_type=TAG_SUBJECT,
        subject_id=tag_subject(tag.endpoint.code, tag.tag),
        summary=f"Gateway tag {tag.tag} at {tag.endpoint.code} ({tag.equipment.code} · {tag.name}): retired",
        payload={"operation": "retire", "endpoint": tag.endpoint.code, "tag": tag.tag, "values": {}},
        before={"endpoint": endpoint_state(tag.endpoint), "tag": tag_state(tag)},
        reason=reason,
        comment=comment,
    )


def tag_apply(request: ChangeRequest, actor: Actor) -> None:
    """Write an approved tag request as the approver, checked against the data as it stands now."""
    payload = request.payload
    values: dict[str, Any] = dict(payload["values"])
    try:
        if "equipment" in values:
            unit = Equipment.objects.filter(code=values["equipment"]).first()
            values["equipment"] = unit if unit is not None else values["equipment"]
        fields = tag_values(values)
        endpoint = endpoint_of(payload["endpoint"], lock=True)
        if payload["operation"] == "create":
            if endpoint.retired_at is not None:
                raise refuse("ENDPOINT_RETIRED", f"Endpoint {endpoint.code} is retired.")
            record_create(
                Tag(endpoint=endpoint, tag=payload["tag"], **fields),
                actor=actor,
                reason=applied_reason(request),
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
            reason=applied_reason(request),
        )
    except GatewayRefused as exc:
        raise ChangeRefused(f"{request.number} cannot be applied: {exc}") from None
