"""Create, change and retire master data: descriptive fields at once, GMP ones under two signatures.

- A new item, a retirement and any change of a GMP field (masterdata/definitions.py)
  is a change request signed by the requester (meaning "requested"); nothing
  takes effect until another person, a QA approver, approves it with their
  signature (``approvals``). It takes effect then, or at the effective date the
  requester gave (the worker applies it: :func:`changes_due_apply`).
- A change of descriptive fields only (a name, a location) takes effect at once,
  audited with its reason.
- Nothing is deleted: a retired item is refused for new use and stays readable
  in every record that used it.

What a request would write is checked when it is requested and again when it
is applied, against the data as it stands then (a referenced unit retired in
between refuses the approval in words, and nothing changes).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.apps import apps
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone

from batchline import arrivals
from batchline.approvals.models import ChangeRequest
from batchline.approvals.services import ChangeRefused, Kind, change_request, kind_register
from batchline.audit.services import SYSTEM, Actor, ReasonRequired, record_create, record_update
from batchline.labels.gs1 import gtin_is_valid
from batchline.labels.template import LABELS, template_problem
from batchline.rules import canonical
from batchline.signatures.services import VerifiedSigner

from .definitions import REF_MODELS, Invalid, MasterKind, describe, kind_of, parse_values
from .models import MasterChange

PERMISSION = "masterdata.request_change"
CHANGE_KIND = "master_data"


def model_of(kind: MasterKind | str) -> Any:  # an AuditedModel class, found by name
    dotted = kind.model if isinstance(kind, MasterKind) else REF_MODELS[kind]
    return apps.get_model(dotted)


def item_get(kind: MasterKind, code: str, *, lock: bool = False) -> Any:
    queryset = model_of(kind).objects.all()
    if lock:
        queryset = queryset.select_for_update()
    item = queryset.filter(code=code).first()
    if item is None:
        raise ChangeRefused(f"There is no {kind.label.lower()} {code!r}.")
    return item


def stored(kind: MasterKind, item: Any) -> dict[str, Any]:
    """An item's fields in their stored (JSON-ready) form: references by code, decimals as text."""
    out: dict[str, Any] = {}
    for f in kind.fields:
        if f.type == "ref":
            related = getattr(item, f.name)
            out[f.name] = related.code if related is not None else None
        else:
            value = getattr(item, f.name)
            if isinstance(value, Decimal):
                value = format(value.normalize(), "f")
            out[f.name] = list(value) if isinstance(value, list) else value
    return out


# What an import creates or changes before the row at hand, by (kind, code): its values as they will be.
Planned = Mapping[tuple[str, str], Mapping[str, Any]]


def _ref(kind_name: str, code: str, *, label: str, planned: Planned | None = None) -> Any:
    if planned and (kind_name, code) in planned:
        return None  # made by an earlier row of the same import
    item = model_of(kind_name).objects.filter(code=code).first()
    if item is None:
        raise ChangeRefused(f"{label}: there is no {kind_name.replace('_', ' ')} {code!r}.")
    if getattr(item, "retired_at", None) is not None:
        raise ChangeRefused(f"{label}: {code} is retired.")
    return item


def item_check(
    kind: MasterKind, values: Mapping[str, Any], item: Any, *, planned: Planned | None = None
) -> None:
    """What one field cannot say alone: references that exist, a scale's numbers that fit together.

    ``planned``: what an import's earlier rows create or change, read as if it stood already.
    """
    for f in kind.fields:
        if (
            f.type == "ref"
            and values.get(f.name)
            and (item is None or stored(kind, item)[f.name] != values[f.name])
        ):
            _ref(f.ref, values[f.name], label=f.label, planned=planned)
        if f.type == "refs":
            old = set(stored(kind, item)[f.name]) if item is not None else set()
            for code in set(values.get(f.name) or []) - old:
                _ref(f.ref, code, label=f.label, planned=planned)
    name = kind.name
    if name == "material" and values.get("gtin"):
        if not gtin_is_valid(values["gtin"]):
            raise ChangeRefused(
                f"GTIN {values['gtin']} is not a valid GTIN (14 digits with its check digit)."
            )
        holder = (
            model_of(kind).objects.filter(gtin=values["gtin"]).exclude(pk=getattr(item, "pk", None)).first()
        )
        if holder is not None:
            raise ChangeRefused(
                f"GTIN {values['gtin']} is material {holder.code}'s: one trade item, one material."
            )
    if name == "equipment":
        class_planned = (planned or {}).get(("equipment_class", values["equipment_class"]))
        eq_class = model_of("equipment_class").objects.filter(code=values["equipment_class"]).first()
        is_scale = class_planned["is_scale"] if class_planned else eq_class is not None and eq_class.is_scale
        if is_scale:
            missing = [
                label
                for field, label in (
                    ("capacity", "capacity"),
                    ("readability", "readability"),
                    ("minimum_weight", "minimum weight"),
                    ("unit", "unit"),
                )
                if not values.get(field)
            ]
            if missing:
                raise ChangeRefused(f"A scale needs its {', '.join(missing)}.")
            d, minimum, cap = (Decimal(values[k]) for k in ("readability", "minimum_weight", "capacity"))
            if not d < minimum < cap:
                raise ChangeRefused(
                    f"A scale's readability ({d}) is below its minimum weight ({minimum}), "
                    f"and that below its capacity ({cap})."
                )
        port = values.get("port")
        if port is not None and not 1 <= port <= 65535:
            raise ChangeRefused(f"Port {port} is not a TCP port (1 to 65535).")
        if bool(values.get("host")) != bool(port):
            raise ChangeRefused("A device's address has both its host and its port, or neither.")
    if name == "station":
        network = ipaddress.ip_network(values["address"], strict=False)
        addresses = {
            other.code: other.address
            for other in model_of("station").objects.filter(retired_at__isnull=True)
            if item is None or other.pk != item.pk
        }
        addresses |= {c: v["address"] for (k, c), v in (planned or {}).items() if k == "station"}
        addresses.pop(values["code"], None)
        for other_code, address in addresses.items():
            if network.overlaps(ipaddress.ip_network(address, strict=False)):
                raise ChangeRefused(
                    f"Network address {values['address']} overlaps station {other_code}'s ({address}): "
                    "a terminal must be one station."
                )
    if name == "label_template":
        problem = template_problem(values["label"], values["title"], values.get("statement") or "")
        if problem:
            raise ChangeRefused(problem)
        others = [
            code
            for code in model_of(kind)
            .objects.filter(label=values["label"], retired_at__isnull=True)
            .exclude(code=values["code"])
            .values_list("code", flat=True)
        ] + [
            c
            for (k, c), v in (planned or {}).items()
            if k == "label_template" and c != values["code"] and v.get("label") == values["label"]
        ]
        if others:
            raise ChangeRefused(
                f"Label template {others[0]} lays out the {LABELS[values['label']].lower()} label already: "
                "one template in force per label (change it, or retire it first)."
            )
    if name == "qualification" and item is not None and values.get("version", item.version) < item.version:
        raise ChangeRefused(
            f"{item.code} is at version {item.version}: a version is never lowered (training on it would count again)."
        )


def fixed_refused(kind: MasterKind, changed: Mapping[str, Any]) -> None:
    fixed = [kind.field(n).label for n in changed if kind.field(n).fixed]
    if fixed:
        raise ChangeRefused(
            f"{', '.join(fixed)} of a {kind.label.lower()} is fixed once created (records read it): "
            f"create a new {kind.label.lower()} instead."
        )


def _effective(effective_at: dt.datetime | None) -> str | None:
    if effective_at is None:
        return None
    if timezone.is_naive(effective_at):
        raise ChangeRefused("Give the effective date with its time zone.")
    return effective_at.astimezone(dt.UTC).isoformat()


# Where a recipe document names an item of each kind (recipes/document.py).
_RECIPE_KEYS = {
    "material": "material",
    "equipment_class": "equipment_class",
    "qualification": "qualification",
}


def recipes_using(kind: MasterKind, code: str) -> list[str]:
    """Recipe versions in review, approved or effective that name the item: they would break (MBR-04)."""
    from batchline.recipes.models import MasterRecipe, RecipeStatus

    live = MasterRecipe.objects.filter(
        status__in=[RecipeStatus.IN_REVIEW, RecipeStatus.APPROVED, RecipeStatus.EFFECTIVE]
    ).select_related("product")
    if kind.name == "product":
        return [f"{r.code} v{r.version}" for r in live if r.product.code == code]
    key = _RECIPE_KEYS.get(kind.name)
    if key is None:
        return []

    def names(value: Any) -> bool:
        if isinstance(value, dict):
            return any(
                (k == key and (v == code or (isinstance(v, dict) and v.get("code") == code))) or names(v)
                for k, v in value.items()
            )
        return isinstance(value, list) and any(names(v) for v in value)

    return [f"{r.code} v{r.version}" for r in live if names(r.document)]


def _retire_check(kind: MasterKind, code: str) -> None:
    using = recipes_using(kind, code)
    if using:
        raise ChangeRefused(
            f"{kind.label} {code} is named by recipe {', '.join(using)}: retire or revise "
            f"{'that recipe' if len(using) == 1 else 'those recipes'} first, or its batches could not be made."
        )


@dataclass(frozen=True)
class Outcome:
    """What a change did: descriptive fields applied at once, a request for the GMP ones."""

    applied: list[str]
    request: ChangeRequest | None


def _request(
    *,
    actor: Actor,
    signer: VerifiedSigner,
    kind: MasterKind,
    code: str,
    operation: str,
    values: dict[str, Any],
    before: Any,
    words: list[str],
    reason: str,
    effective_at: dt.datetime | None,
    comment: str,
) -> ChangeRequest:
    verb = {"create": "new", "change": "change of", "retire": "retirement of"}[operation]
    summary = f"{kind.label} {code}: {verb}"
    if words:
        summary += " — " + "; ".join(words)
    when = _effective(effective_at)
    if when:
        summary += f" (effective {effective_at:%Y-%m-%d %H:%M %Z})"
    return change_request(
        actor=actor,
        signer=signer,
        kind=CHANGE_KIND,
        subject_type=kind.subject_type,
        subject_id=code,
        summary=summary,
        payload={
            "kind": kind.name,
            "code": code,
            "operation": operation,
            "values": values,
            "effective_at": when,
        },
        before=before,
        reason=reason,
        comment=comment,
    )


def may_request(actor: Actor) -> None:
    user = get_user_model().objects.filter(pk=actor.id, is_active=True).first() if actor.id else None
    if user is None or not user.has_perm(PERMISSION):
        raise ChangeRefused("Your roles do not allow you to change master data.")


def full_values(k: MasterKind, parsed: Mapping[str, Any]) -> dict[str, Any]:
    """A new item's every field: the given ones, and the others at the model's defaults."""
    full = {f.name: parsed.get(f.name, [] if f.type in ("list", "refs", "roles") else None) for f in k.fields}
    for f in k.fields:
        if full[f.name] is None and f.type == "bool":
            full[f.name] = False
        if full[f.name] is None and f.type in ("text", "choice", "address") and f.name != "gtin":
            full[f.name] = ""
    return full


def master_create(
    *,
    actor: Actor,
    signer: VerifiedSigner,
    kind: str,
    values: Mapping[str, Any],
    reason: str,
    effective_at: dt.datetime | None = None,
    comment: str = "",
) -> ChangeRequest:
    """Request a new item; it exists once a QA approver approves it (and its effective date is reached)."""
    k = kind_of(kind)
    may_request(actor)
    try:
        parsed = parse_values(k, values, creating=True)
    except Invalid as exc:
        raise ChangeRefused(str(exc)) from None
    full = full_values(k, parsed)
    code = str(full[k.key.name])
    if model_of(k).objects.filter(code=code).exists():
        raise ChangeRefused(f"{k.label} {code} exists already: change it instead.")
    item_check(k, full, None)
    return _request(
        actor=actor,
        signer=signer,
        kind=k,
        code=code,
        operation="create",
        values=full,
        before={"exists": False},
        words=describe(k, {}, {n: v for n, v in full.items() if n != k.key.name}),
        reason=reason,
        effective_at=effective_at,
        comment=comment,
    )


def master_change(
    *,
    actor: Actor,
    signer: VerifiedSigner | None,
    kind: str,
    code: str,
    values: Mapping[str, Any],
    reason: str,
    effective_at: dt.datetime | None = None,
    comment: str = "",
) -> Outcome:
    """Change some fields: descriptive ones at once; if any GMP field changes, the GMP ones by request.

    ``signer`` is needed only when a GMP field changes (its request is signed).
    """
    k = kind_of(kind)
    reason = reason.strip()
    if not reason:
        raise ReasonRequired("Give a reason for the change: the audit trail and any approver read it.")
    may_request(actor)
    try:
        parsed = parse_values(k, values, creating=False)
    except Invalid as exc:
        raise ChangeRefused(str(exc)) from None
    item = item_get(k, code)
    now = stored(k, item)
    changed = {n: v for n, v in parsed.items() if now.get(n) != v}
    if not changed:
        raise ChangeRefused(f"{k.label} {code} holds these values already: nothing would change.")
    fixed_refused(k, changed)
    if item.retired_at is not None:
        raise ChangeRefused(
            f"{k.label} {code} is retired: it is kept as it was, for the records that used it."
        )
    gmp = {n: v for n, v in changed.items() if k.field(n).gmp}
    plain = {n: v for n, v in changed.items() if not k.field(n).gmp}
    if gmp:
        if signer is None:
            raise ChangeRefused(
                "This changes how batches are made or judged: it is requested with your signature and "
                "takes effect when a QA approver approves it."
            )
        item_check(k, {**now, **gmp}, item)
    with transaction.atomic():
        if plain:
            locked = item_get(k, code, lock=True)
            record_update(locked, actor=actor, values=plain, reason=reason, action="master_change")
        request = None
        if gmp:
            assert signer is not None
            request = _request(
                actor=actor,
                signer=signer,
                kind=k,
                code=code,
                operation="change",
                values=gmp,
                before={n: now.get(n) for n in gmp},
                words=describe(k, now, gmp),
                reason=reason,
                effective_at=effective_at,
                comment=comment,
            )
    return Outcome(applied=describe(k, now, plain), request=request)


def master_retire(
    *,
    actor: Actor,
    signer: VerifiedSigner,
    kind: str,
    code: str,
    reason: str,
    effective_at: dt.datetime | None = None,
    comment: str = "",
) -> ChangeRequest:
    """Request that an item is used no more; its records keep it, readable, for ever."""
    k = kind_of(kind)
    may_request(actor)
    item = item_get(k, code)
    if item.retired_at is not None:
        raise ChangeRefused(f"{k.label} {code} is retired already.")
    _retire_check(k, code)
    return _request(
        actor=actor,
        signer=signer,
        kind=k,
        code=code,
        operation="retire",
        values={},
        before={"retired_at": None},
        words=[],
        reason=reason,
        effective_at=effective_at,
        comment=comment,
    )


# --- the approved request, applied ---------------------------------------------------------------


def _current(request: ChangeRequest) -> Any:
    """The subject as the request's ``before`` holds it, read now (approvals compares the two)."""
    k = kind_of(request.payload["kind"])
    item = model_of(k).objects.filter(code=request.payload["code"]).first()
    operation = request.payload["operation"]
    if operation == "create" or item is None:
        return {"exists": item is not None}
    if operation == "retire":
        return {"retired_at": None if item.retired_at is None else item.retired_at.isoformat()}
    now = stored(k, item)
    return {n: now.get(n) for n in request.payload["values"]}


def _attributes(k: MasterKind, values: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in values.items():
        f = k.field(name)
        if f.type == "ref":
            out[name] = None if value is None else model_of(f.ref).objects.get(code=value)
        elif f.type == "decimal":
            out[name] = None if value is None else Decimal(value)
        else:
            out[name] = value
    return out


def _apply_now(request: ChangeRequest, actor: Actor, reason: str) -> None:
    payload = request.payload
    item_apply(
        kind_of(payload["kind"]),
        payload["code"],
        payload["operation"],
        payload["values"],
        actor=actor,
        reason=reason,
    )


def item_apply(
    k: MasterKind, code: str, operation: str, values: Mapping[str, Any], *, actor: Actor, reason: str
) -> None:
    """Write one approved create, change or retirement, checked against the data as it stands now.

    Runs inside the caller's transaction (an approval's); locks the item it changes.
    """
    if operation == "create":
        if model_of(k).objects.filter(code=code).exists():
            raise ChangeRefused(f"{k.label} {code} exists already.")
        item_check(k, values, None)
        record_create(
            model_of(k)(**_attributes(k, values)),
            actor=actor,
            reason=reason,
            action="master_create",
        )
        if k.name in ("material", "product"):
            # A message from the ERP may be waiting for it (erp/inbound.py): told once this commits.
            arrivals.announce(f"{k.name}:{code}")
        return
    item = item_get(k, code, lock=True)
    if item.retired_at is not None:
        raise ChangeRefused(f"{k.label} {code} is retired: it is kept as it was.")
    if operation == "retire":
        _retire_check(k, code)
        record_update(
            item, actor=actor, values={"retired_at": timezone.now()}, reason=reason, action="master_retire"
        )
        return
    item_check(k, {**stored(k, item), **values}, item)
    attributes = _attributes(k, values)
    if k.versioned:
        attributes["version"] = item.version + 1
    record_update(item, actor=actor, values=attributes, reason=reason, action="master_change")


def waiting_refusal(kind_name: str, code: str) -> None:
    """Refuse an approval while an approved change of the same item waits for its effective date:
    applied later, over this one, it would put in force what nobody approved (their combination)."""
    pending = (
        MasterChange.objects.filter(kind=kind_name, code=code, applied_at__isnull=True)
        .select_related("change_request")
        .first()
    )
    if pending is not None:
        raise ChangeRefused(
            f"{pending.change_request.number}, an approved change of {kind_of(kind_name).label.lower()} {code}, "
            f"waits for its effective date ({pending.effective_at:%Y-%m-%d %H:%M} UTC): it takes effect first "
            "(or is withdrawn by a new request after it)."
        )


def _apply(request: ChangeRequest, actor: Actor) -> None:
    """On approval: take effect now, or wait for the effective date (the worker applies it then)."""
    waiting_refusal(request.payload["kind"], request.payload["code"])
    when = request.payload.get("effective_at")
    effective_at = dt.datetime.fromisoformat(when) if when else timezone.now()
    due = effective_at <= timezone.now()
    if due:
        _apply_now(request, actor, request.reason)
    else:  # checked now, so that an approval of what cannot be applied is refused at once
        _check_later(request)
    record_create(
        MasterChange(
            change_request=request,
            kind=request.payload["kind"],
            code=request.payload["code"],
            operation=request.payload["operation"],
            effective_at=effective_at,
            applied_at=timezone.now() if due else None,
        ),
        actor=actor,
        reason=request.reason,
    )


def _check_later(request: ChangeRequest) -> None:
    payload = request.payload
    k = kind_of(payload["kind"])
    if payload["operation"] == "create":
        item_check(k, payload["values"], None)
    elif payload["operation"] == "change":
        item = item_get(k, payload["code"])
        item_check(k, {**stored(k, item), **payload["values"]}, item)


def changes_due_apply(now: dt.datetime | None = None) -> list[str]:
    """Apply the approved changes whose effective date has come (the worker's round); returns their numbers.

    Each in its own transaction: one that can no longer be applied (its item
    was retired meanwhile) is recorded as refused and the others go on.
    """
    now = now or timezone.now()
    done = []
    for change in MasterChange.objects.filter(applied_at__isnull=True, effective_at__lte=now).select_related(
        "change_request"
    ):
        request = change.change_request
        with transaction.atomic():
            locked = MasterChange.objects.select_for_update().get(pk=change.pk)
            if locked.applied_at is not None:
                continue
            try:
                with transaction.atomic():
                    # What was approved replaces what stood then; if that moved on, nobody approved the result.
                    if canonical.normalise(_current(request)) != request.before:
                        raise ChangeRefused(
                            f"{request.number}: what it changes is no longer as it was when approved."
                        )
                    _apply_now(
                        request,
                        SYSTEM,
                        f"{request.number} approved, effective {locked.effective_at:%Y-%m-%d %H:%M} UTC: {request.reason}",
                    )
            except (ChangeRefused, IntegrityError) as exc:
                record_update(
                    locked,
                    actor=SYSTEM,
                    values={"applied_at": now, "refused": str(exc)},
                    reason="could not take effect on its effective date",
                    action="master_refused",
                )
                continue
            record_update(locked, actor=SYSTEM, values={"applied_at": now}, reason="effective date reached")
            done.append(request.number)
    return done


KIND = Kind(
    name=CHANGE_KIND,
    label="Change of master data",
    request_permission=PERMISSION,
    current=_current,
    apply=_apply,
)
kind_register(KIND)
