"""Endpoints: registered and renamed by one administrator (audited); an address, options or retirement
changed only by a signed request that a QA approver's signed approval applies (kind
``gateway_endpoint``, see ``services``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import transaction
from django.utils import timezone

from batchline.approvals.models import ChangeRequest
from batchline.approvals.services import ChangeRefused
from batchline.audit.services import Actor, record_create, record_update
from batchline.signatures.services import VerifiedSigner

from .changes import (
    ENDPOINT_SUBJECT,
    LABELS,
    GatewayRefused,
    address_of,
    applied_reason,
    checked_reason,
    endpoint_of,
    endpoint_state,
    may_configure,
    options_of,
    protocol_of,
    refuse,
    request_make,
    shown,
)
from .models import ENDPOINT_KIND, Endpoint
from .readings import Protocol


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
    checked_reason(reason)
    proto = protocol_of(protocol)
    address = address_of(proto, address)
    code = code.strip().lower()
    if not code:
        raise refuse("CODE_REQUIRED", "An endpoint needs a code.")
    with transaction.atomic():
        if Endpoint.objects.filter(code=code).exists():
            raise refuse("CODE_TAKEN", f"A gateway endpoint {code} exists already.")
        holder = Endpoint.objects.filter(protocol=proto.value, address=address).first()
        if holder is not None:
            raise refuse("ADDRESS_TAKEN", f"{address} is endpoint {holder.code}'s already.")
        return record_create(
            Endpoint(
                code=code,
                name=name.strip()[:200],
                protocol=proto.value,
                address=address,
                options=options_of(options),
            ),
            actor=actor,
            reason=reason,
        )


def endpoint_rename(*, actor: Actor, code: str, name: str, reason: str) -> Endpoint:
    """Change an endpoint's descriptive name: one administrator's audited change."""
    may_configure(actor)
    checked_reason(reason)
    with transaction.atomic():
        endpoint = endpoint_of(code, lock=True)
        record_update(endpoint, actor=actor, values={"name": name.strip()[:200]}, reason=reason)
        return endpoint


def endpoint_values(endpoint: Endpoint, values: Mapping[str, Any]) -> dict[str, Any]:
    unknown = set(values) - {"address", "options"}
    if unknown:
        raise refuse(
            "NOT_CHANGEABLE",
            f"An endpoint's {', '.join(sorted(unknown))} cannot be changed by a request"
            + (" (rename it with endpoint_rename)." if unknown == {"name"} else "."),
        )
    out: dict[str, Any] = {}
    if "address" in values:
        out["address"] = address_of(Protocol(endpoint.protocol), str(values["address"]))
        holder = (
            Endpoint.objects.filter(protocol=endpoint.protocol, address=out["address"])
            .exclude(pk=endpoint.pk)
            .first()
        )
        if holder is not None:
            raise refuse("ADDRESS_TAKEN", f"{out['address']} is endpoint {holder.code}'s already.")
    if "options" in values:
        out["options"] = options_of(values["options"])
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
    checked_reason(reason)
    endpoint = endpoint_of(code)
    if endpoint.retired_at is not None:
        raise refuse("ENDPOINT_RETIRED", f"Endpoint {endpoint.code} is retired.")
    now = endpoint_state(endpoint)
    assert now is not None
    changed = {k: v for k, v in endpoint_values(endpoint, values).items() if now[k] != v}
    if not changed:
        raise refuse("NO_CHANGE", "These are the endpoint's values already: nothing would change.")
    words = "; ".join(f"{LABELS[k]} {shown(k, now[k])} → {shown(k, v)}" for k, v in changed.items())
    tags = endpoint.tags.filter(retired_at__isnull=True).count()
    return request_make(
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
    checked_reason(reason)
    endpoint = endpoint_of(code)
    if endpoint.retired_at is not None:
        raise refuse("ENDPOINT_RETIRED", f"Endpoint {endpoint.code} is retired already.")
    tags = endpoint.tags.filter(retired_at__isnull=True).count()
    return request_make(
        actor=actor,
        signer=signer,
        kind=ENDPOINT_KIND,
        subject_type=ENDPOINT_SUBJECT,
        subject_id=endpoint.code,
        summary=f"Gateway endpoint {endpoint.code} ({endpoint.address}): retired, its {tags} tag(s) read no more",
        payload={"operation": "retire", "endpoint": endpoint.code, "values": {}},
        before=endpoint_state(endpoint),
        reason=reason,
        comment=comment,
    )


def endpoint_current(request: ChangeRequest) -> dict[str, Any] | None:
    return endpoint_state(Endpoint.objects.filter(code=request.payload["endpoint"]).first())


def endpoint_apply(request: ChangeRequest, actor: Actor) -> None:
    payload = request.payload
    try:
        endpoint = endpoint_of(payload["endpoint"], lock=True)
        if payload["operation"] == "retire":
            record_update(
                endpoint,
                actor=actor,
                values={"retired_at": timezone.now()},
                action="retire",
                reason=applied_reason(request),
            )
            return
        record_update(
            endpoint,
            actor=actor,
            values=endpoint_values(endpoint, payload["values"]),
            reason=applied_reason(request),
        )
    except GatewayRefused as exc:
        raise ChangeRefused(f"{request.number} cannot be applied: {exc}") from None
