"""What the gateway's configuration requests share: who may make them, the checks of an address, a
protocol and options, the state a request's ``before`` holds, and a request withdrawn (issue 15).

The commands are in ``tags`` and ``endpoints``; ``services`` names them for their callers."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from django.contrib.auth import get_user_model

from batchline.approvals.models import ChangeRequest
from batchline.approvals.services import change_request, change_withdraw
from batchline.audit.services import Actor
from batchline.rules.verdict import Refused
from batchline.signatures.services import VerifiedSigner

from .models import CONFIGURE_PERMISSION, REQUEST_KINDS, Endpoint, Tag
from .readings import Protocol


class GatewayRefused(Refused):
    """The configuration change was refused; the message says why, and nothing was written."""


refuse = GatewayRefused.because

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
        raise refuse("NOT_ALLOWED", "Your roles do not allow you to configure the equipment gateway.")


def checked_reason(reason: str) -> str:
    if not reason.strip():
        raise refuse("REASON_REQUIRED", "Say why the gateway's configuration changes.")
    return reason


def protocol_of(value: str) -> Protocol:
    try:
        return Protocol(value)
    except ValueError:
        known = ", ".join(p.value for p in Protocol)
        raise refuse("UNKNOWN_PROTOCOL", f"The gateway speaks {known}, not {value!r}.") from None


def address_of(protocol: Protocol, address: str) -> str:
    address = address.strip()
    parts = urlsplit(address)
    if parts.scheme not in SCHEMES[protocol] or not parts.hostname:
        raise refuse(
            "BAD_ADDRESS",
            f"A {protocol.value} endpoint's address looks like {SCHEMES[protocol][0]}://host:port…, "
            f"not {address!r}.",
        )
    return address


def options_of(options: Mapping[str, Any] | None) -> dict[str, str]:
    """Options as text, as readings.Connection and TagSpec carry them."""
    out: dict[str, str] = {}
    for name, value in (options or {}).items():
        if not isinstance(name, str) or not name or not isinstance(value, str | int | float | bool):
            raise refuse("BAD_OPTION", f"Option {name!r}: give a name and a plain value (text or number).")
        out[name] = str(value).lower() if isinstance(value, bool) else str(value)
    return out


def endpoint_of(code: str, *, lock: bool = False) -> Endpoint:
    queryset = Endpoint.objects.select_for_update() if lock else Endpoint.objects.all()
    endpoint = queryset.filter(code=code).first()
    if endpoint is None:
        raise refuse("UNKNOWN_ENDPOINT", f"There is no gateway endpoint {code!r}.")
    return endpoint


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


def endpoint_state(endpoint: Endpoint | None) -> dict[str, Any] | None:
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


def stored_values(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Checked tag values (``tag_values``) in their JSON form: the unit by code, the deadband as text."""
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


def tag_state(tag: Tag | None) -> dict[str, Any] | None:
    if tag is None:
        return None
    return {
        **stored_values({f: getattr(tag, f) for f in TAG_FIELDS}),
        "retired": tag.retired_at is not None,
    }


def tag_subject(endpoint: str, tag: str) -> str:
    """The tag's address as a subject id (64 characters at most): the same for its whole life."""
    subject = f"{endpoint}/{tag}"
    if len(subject) <= 64:
        return subject
    return subject[:47] + "#" + hashlib.blake2b(subject.encode(), digest_size=8).hexdigest()


def shown(name: str, value: Any) -> str:
    if name == "options":
        return ", ".join(f"{k}={v}" for k, v in sorted(value.items())) or "none"
    return str(value) if value not in ("", None) else "none"


def request_make(
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


def applied_reason(request: ChangeRequest) -> str:
    return f"{request.number} approved: {request.reason}"


def request_withdraw(*, actor: Actor, request_id: int, reason: str) -> ChangeRequest:
    """Take back an open tag or endpoint request: nothing of it is applied, its signature stays.

    Who may: a holder of ``gateway.configure_gateway`` (the requester, or another engineer standing in);
    ``approvals.change_withdraw`` locks the request, refuses one decided meanwhile and audits the reason.
    """
    may_configure(actor)
    request = ChangeRequest.objects.filter(pk=request_id, kind__in=REQUEST_KINDS).first()
    if request is None:
        raise refuse("UNKNOWN_REQUEST", f"There is no gateway change request {request_id}.")
    user = get_user_model().objects.get(pk=actor.id)
    return change_withdraw(actor=actor, user=user, request=request, reason=reason)
