"""Master-data pages: materials, products, equipment, stations, qualifications under change control.

Thin over ``masterdata`` and ``approvals``, as the API is: a new item, a
retirement and a change of a GMP field are requests signed by the requester
and approved by a QA approver with their signature; a descriptive field (a
name) changes at once with a reason. The forms are generated from the kind's
fields (masterdata/definitions.py), so a field added there shows here.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from batchline.accounts.roles import ROLES, role_label
from batchline.approvals import services as approvals
from batchline.approvals.models import ChangeRequest, RequestState
from batchline.audit.services import Actor, ReasonRequired
from batchline.configuration.selectors import notation
from batchline.equipment.selectors import display_zone
from batchline.masterdata import selectors
from batchline.masterdata.definitions import Field, Invalid, MasterKind, kind_of, shown
from batchline.masterdata.services import (
    CHANGE_KIND,
    PERMISSION,
    master_change,
    master_create,
    master_retire,
    model_of,
)
from batchline.rules import numbers
from batchline.signatures.models import Meaning
from batchline.signatures.services import (
    SignatureRefused,
    VerifiedSigner,
    signing_session_open,
    username_required,
)

from .access import require, signer_posted
from .gateway_change_views import open_gateway_changes
from .masterdata_import_views import open_imports

APPROVE = "approvals.approve_change"
REFUSED = (approvals.ChangeRefused, SignatureRefused, ReasonRequired, Invalid)
LISTS = ("list", "refs", "roles")
# The columns of a kind's list besides its code: what tells one item from the next.
COLUMNS = {
    "material": ("name", "kind", "unit", "shelf_life_days", "retest_days"),
    "product": ("name",),
    "equipment_class": (
        "name",
        "is_scale",
        "dirty_hold_hours",
        "clean_hold_hours",
        "calibration_interval_days",
    ),
    "equipment": ("name", "equipment_class", "site", "capacity", "unit"),
    "station": ("name", "site", "location", "address", "devices"),
    "qualification": ("title", "kind", "version", "retrain_interval_days", "roles"),
    "label_template": ("label", "title", "statement", "name"),
}
# The audit trail's actions on a master-data item, as its history names them.
ACTIONS = {
    "create": "created",
    "master_create": "created (approved request)",
    "update": "changed",
    "master_change": "changed",
    "master_retire": "retired (approved request)",
}
STATES = {
    RequestState.REQUESTED: "waiting for a QA approver",
    RequestState.REJECTED: "rejected: nothing changed",
    RequestState.WITHDRAWN: "withdrawn: nothing changed",
}


def _actor(request: HttpRequest) -> Actor:
    return Actor.of(request.user, via="web")


def _signer(request: HttpRequest, meaning: str) -> VerifiedSigner:
    return signer_posted(request, meaning)


def _kind(request: HttpRequest, name: str) -> MasterKind:
    try:
        kind = kind_of(name)
    except Invalid:
        raise Http404(f"{name!r} is not a kind of master data.") from None
    if not selectors.may_view(request.user, kind):
        raise PermissionDenied(f"Your roles do not allow you to see the {kind.plural.lower()}.")
    return kind


def _may_see_changes(user: Any) -> bool:
    return any(user.has_perm(p) for p in (APPROVE, PERMISSION, "accounts.view_audit_trail"))


# --- fields as a form shows them and reads them back -----------------------------------------------


def _shown(field: Field, value: Any, unit: str = "") -> str:
    """A stored value as the page shows it: decimals in the site's notation, like every number here,
    with the item's own unit where the field is counted in it (a scale's capacity)."""
    if field.type == "decimal" and value not in (None, ""):
        number = numbers.shown(Decimal(value), notation())
        return f"{number} {unit}" if unit and field.unit.startswith("(") else number
    return shown(field, value, unit)


def _typed(field: Field, value: Any) -> Any:
    """A stored value as its input holds it: text, or the codes a list of checkboxes ticks."""
    if field.type == "bool":
        return "yes" if value else "no"
    if field.type in ("refs", "roles"):
        return sorted(value or [])
    if field.type == "list":
        return ", ".join(value or [])
    if field.type == "decimal" and value not in (None, ""):
        return numbers.written(Decimal(value), notation())
    return "" if value is None else str(value)


def _options(field: Field, *, current: Any, creating: bool) -> list[tuple[str, str]]:
    if field.type == "choice":
        options = list(field.choices)
        if creating and not any(value == "" for value, _ in options):
            options.insert(0, ("", "Choose…"))
        return options
    if field.type == "ref":
        codes = selectors.codes_in_force(field.ref)
        if current and current not in codes:  # a retired unit still named stays shown, not silently changed
            codes.append(current)
        return [("", "Choose…" if field.required else "—"), *((c, c) for c in codes)]
    if field.type == "refs":
        codes = selectors.codes_in_force(field.ref)
        return [(c, c) for c in sorted(set(codes) | set(current or []))]
    if field.type == "roles":
        return [(r, role_label(r)) for r in ROLES]
    return []


def _inputs(
    kind: MasterKind, values: dict[str, Any], posted: QueryDict | None, *, creating: bool
) -> list[dict[str, Any]]:
    """Each field of a form: label, help, unit, choices, and its value (what was typed, after a refusal)."""
    rows = []
    for f in kind.fields:
        typed = _typed(f, values.get(f.name))
        if posted is not None and f"f_{f.name}" in posted:
            sent = posted.getlist(f"f_{f.name}")
            typed = [v for v in sent if v] if f.type in ("refs", "roles") else sent[-1]
        rows.append(
            {
                "field": f,
                "name": f.name,
                "input_name": f"f_{f.name}",
                "typed": typed,
                # What the form showed when it was opened: a change is judged against it (_moved_on).
                "was": (
                    posted.get(f"was_f_{f.name}")
                    if posted is not None and f"was_f_{f.name}" in posted
                    else None
                )
                or _joined(_typed(f, values.get(f.name))),
                "shown": _shown(f, values.get(f.name), values.get("unit") or ""),
                "options": _options(f, current=values.get(f.name), creating=creating),
                "editable": creating or not f.fixed,
                "inputmode": {"int": "numeric", "decimal": "decimal"}.get(f.type, ""),
                "unit": (f.unit if f.unit.startswith("(") else f"({f.unit})") if f.unit else "",
                "max_length": 2000 if f.type == "list" else f.max_length,
            }
        )
    return rows


def _sent(field: Field, post: QueryDict) -> Any:
    """What a field's input sent, as the service reads it; None if the form did not hold it."""
    name = f"f_{field.name}"
    if name not in post:
        return None
    if field.type in ("refs", "roles"):
        return [v.strip() for v in post.getlist(name) if v.strip()]
    raw = post.getlist(name)[-1]
    if field.type == "decimal" and raw.strip():
        # Typed in the site's notation, like every number on its pages; the service reads a point.
        try:
            return format(numbers.read(raw, notation()), "f")
        except numbers.NotANumber as exc:
            raise Invalid(numbers.sentence(field.label, exc)) from None
    return raw


def _joined(typed: Any) -> str:
    return ",".join(typed) if isinstance(typed, list) else str(typed)


def _same_typed(field: Field, a: str, b: Any) -> bool:
    """Whether two values as a form holds them (the site's notation, lists joined) say the same."""
    if field.type == "decimal":
        try:
            read = [numbers.read(str(v), notation()) if str(v).strip() else None for v in (a, _joined(b))]
        except numbers.NotANumber:
            return False
        return read[0] == read[1]
    if field.type in LISTS:
        return {i.strip() for i in a.split(",") if i.strip()} == {
            i.strip() for i in _joined(b).split(",") if i.strip()
        }
    return a.strip() == _joined(b).strip()


def _same(field: Field, sent: Any, typed: Any) -> bool:
    """Whether an input still holds what the form was filled with (then it is not sent as a change)."""
    if field.type in LISTS:
        items = sent if isinstance(sent, list) else str(sent).replace(";", ",").split(",")
        was = typed if isinstance(typed, list) else str(typed).split(",")
        return {i.strip() for i in items if i.strip()} == {i.strip() for i in was if i.strip()}
    if field.type == "decimal":
        try:
            old = numbers.read(str(typed), notation()) if str(typed).strip() else None
        except numbers.NotANumber:  # what the form showed, sent back altered: not what it showed
            return False
        new = Decimal(sent) if str(sent).strip() else None
        return old == new
    return str(sent).strip() == str(typed).strip()


def _effective(post: QueryDict) -> dt.datetime | None:
    """The optional date a change takes effect, typed (``datetime-local``) in the site's zone."""
    text = (post.get("effective_at") or "").strip()
    if not text:
        return None
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise Invalid(
            f"Takes effect: {text[:40]!r} is not a date and time (e.g. 2026-07-01 06:00)."
        ) from None
    when = when.replace(tzinfo=display_zone()) if when.tzinfo is None else when
    try:  # year 1 in a zone east of UTC is before the first instant a datetime holds
        when.astimezone(dt.UTC)
    except OverflowError:
        raise Invalid(f"Takes effect: {text[:40]!r} is not a date Batchline can hold.") from None
    return when


# --- change requests as people read them ---------------------------------------------------------


def _moment(text: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(text) if text else None


ISO_MOMENT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:\d\d)$")


def _moment_shown(value: Any) -> Any:
    """A time the trail holds in UTC (ISO), shown in the site's zone like every time on the page."""
    if isinstance(value, str) and ISO_MOMENT.match(value):
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        return f"{timezone.localtime(moment):%Y-%m-%d %H:%M %Z}"
    return "—" if value in (None, "") else value


def _request_rows(view: dict[str, Any]) -> list[dict[str, Any]]:
    """What a request changes, field by field: before → after (GMP fields first)."""
    kind = kind_of(view["kind"])
    operation, values, before = view["operation"], view["values"], view["before"] or {}
    unit = values.get("unit") or ""
    if not unit and kind.name == "equipment":  # a change names only what changes: the unit is the unit's
        unit = model_of(kind).objects.filter(code=view["code"]).values_list("unit", flat=True).first() or ""
    if operation == "retire":
        return [{"label": "In use", "before": "yes", "after": "no (retired)", "gmp": True}]
    rows = []
    for f in sorted(kind.fields, key=lambda f: not f.gmp):
        if f.name not in values or (
            operation == "create" and (f is kind.key or values[f.name] in (None, "", [], False))
        ):
            continue
        rows.append(
            {
                "label": f.label,
                "before": "—" if operation == "create" else _shown(f, before.get(f.name), unit),
                "after": _shown(f, values[f.name], unit),
                "gmp": f.gmp,
            }
        )
    return rows


def _requests(views: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for v in views:
        v["kind_label"] = kind_of(v["kind"]).label
        v["rows"] = _request_rows(v)
        v["effective"] = _moment(v["effective_at"])
        v["open"] = v["state"] == RequestState.REQUESTED
        if v["state"] == RequestState.APPROVED:
            v["state_words"] = (
                f"approved, not applied: {v['refused_on_effect']}"
                if v["refused_on_effect"]
                else ("approved, in force" if v["applied_at"] else "approved, waiting for its effective date")
            )
        else:
            v["state_words"] = STATES.get(v["state"], v["state_label"].lower())
        v["approve_dialog"], v["reject_dialog"] = f"approve-{v['id']}", f"reject-{v['id']}"
    return views


def _history(kind: MasterKind, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Audit entries of an item as people read them: each field by its label, references by code."""
    fields = {f.name: f for f in kind.fields} | {f"{f.name}_id": f for f in kind.fields if f.type == "ref"}
    parsed = [
        (e, json.loads(e["changes"]) if isinstance(e["changes"], str) else e["changes"] or {})
        for e in entries
    ]
    ids: dict[str, set[Any]] = {}
    for _e, changes in parsed:
        for name, pair in changes.items():
            f = fields.get(name)
            if f is not None and f.type == "ref":
                ids.setdefault(f.ref, set()).update(v for v in pair if v is not None)
    codes = {
        ref: dict(model_of(ref).objects.filter(pk__in=pks).values_list("pk", "code"))
        for ref, pks in ids.items()
    }
    out = []
    for e, changes in parsed:
        rows = []
        for name, (old, new) in changes.items():
            f = fields.get(name)
            if f is None:
                if name == "id":
                    continue
                rows.append(
                    {
                        "label": "Retired" if name == "retired_at" else name,
                        "old": _moment_shown(old),
                        "new": _moment_shown(new),
                    }
                )
                continue
            if f.type == "ref":
                old, new = codes[f.ref].get(old, old), codes[f.ref].get(new, new)
            rows.append({"label": f.label, "old": _shown(f, old), "new": _shown(f, new)})
        out.append({**e, "rows": rows, "what": ACTIONS.get(e["action"], e["action"])})
    return out


# --- pages -----------------------------------------------------------------------------------------


@login_required
def master_data(request: HttpRequest) -> HttpResponse:
    summary = selectors.kinds_summary(request.user)
    if not summary:
        raise PermissionDenied("Your roles do not allow you to see master data.")
    return render(
        request,
        "masterdata/index.html",
        {
            "kinds": summary,
            "waiting": sum(k["waiting"] for k in summary),
            "may_see_changes": _may_see_changes(request.user),
        },
    )


def _kind_page(request: HttpRequest, kind: MasterKind, *, status: int = 200, **extra: Any) -> HttpResponse:
    retired = request.GET.get("retired") == "1"
    columns = [kind.field(n) for n in COLUMNS.get(kind.name, ())]
    rows = selectors.items(kind, retired=retired)
    for row in rows:
        row["cells"] = [
            (f.label, _shown(f, row["values"][f.name], row["values"].get("unit") or "")) for f in columns
        ]
    posted = request.POST if request.method == "POST" else None
    can_request = request.user.has_perm(PERMISSION)
    context = {
        "kind": kind,
        "columns": columns,
        "rows": rows,
        "retired": retired,
        "can_request": can_request,
        "inputs": _inputs(kind, {}, posted, creating=True) if can_request else [],
        "reason": posted.get("reason", "") if posted else "",
        "effective_at": posted.get("effective_at", "") if posted else "",
        "username_required": username_required(request),
        **extra,
    }
    return render(request, "masterdata/kind.html", context, status=status)


@login_required
def master_kind(request: HttpRequest, kind: str) -> HttpResponse:
    """The items of a kind; a POST requests a new one (its signature, then a QA approver's)."""
    k = _kind(request, kind)
    if request.method != "POST":
        return _kind_page(request, k)
    require(request.user, PERMISSION)
    try:
        values = {f.name: v for f in k.fields if (v := _sent(f, request.POST)) is not None}
        effective_at = _effective(request.POST)
        signer = _signer(request, Meaning.REQUESTED)
        change = master_create(
            actor=_actor(request),
            signer=signer,
            kind=k.name,
            values=values,
            reason=request.POST.get("reason", ""),
            effective_at=effective_at,
            comment=request.POST.get("signer_comment", ""),
        )
    except REFUSED as exc:
        return _kind_page(
            request,
            k,
            status=422,
            refusal=[str(exc)],
            open_form=True,
            open_dialog="sign-create" if isinstance(exc, SignatureRefused) else None,
            dialog_messages=[str(exc)],
        )
    signing_session_open(signer)
    messages.success(request, f"{change.number} requested: a QA approver approves it before it takes effect.")
    return HttpResponseRedirect(reverse("master_kind", args=[k.name]))


def _item_page(
    request: HttpRequest, kind: MasterKind, code: str, *, status: int = 200, **extra: Any
) -> HttpResponse:
    view = selectors.item_view(kind, code)
    if view is None:
        raise Http404(f"There is no {kind.label.lower()} {code!r}.")
    posted = request.POST if request.method == "POST" else None
    which = extra.get("posted_form")
    can_request = request.user.has_perm(PERMISSION) and view["retired_at"] is None
    inputs = _inputs(kind, view["values"], posted if which == "change" else None, creating=False)
    requests = _requests(view["requests"])
    context = {
        "kind": kind,
        "item": view,
        "inputs": inputs,
        "gmp_editable": any(i["editable"] and i["field"].gmp for i in inputs),
        "plain_editable": any(i["editable"] and not i["field"].gmp for i in inputs),
        "history": _history(kind, view["history"]),
        "requests": requests,
        "open_request": next((r for r in requests if r["open"]), None),
        "can_request": can_request,
        "can_approve": request.user.has_perm(APPROVE),
        "username_required": username_required(request),
        "kept": posted or {},
        "back": "item",
        **extra,
    }
    return render(request, "masterdata/item.html", context, status=status)


@login_required
def master_item(request: HttpRequest, kind: str, code: str) -> HttpResponse:
    return _item_page(request, _kind(request, kind), code)


@login_required
@require_POST
def master_item_change(request: HttpRequest, kind: str, code: str) -> HttpResponse:
    """Send the fields that differ from what the page showed: names at once, GMP fields by request."""
    k = _kind(request, kind)
    require(request.user, PERMISSION)
    view = selectors.item_view(k, code)
    if view is None:
        raise Http404(f"There is no {k.label.lower()} {code!r}.")
    signing = bool(request.POST.get("signer_password"))
    try:
        values: dict[str, Any] = {}
        moved = []
        for f in k.fields:
            sent = _sent(f, request.POST)
            if sent is None or f.fixed:
                continue
            now = _typed(f, view["values"][f.name])
            # Judged against what the form showed, not what stands now: a field someone else changed
            # since the page was opened is neither reverted by a stale form nor overwritten unseen.
            was = request.POST.get(f"was_f_{f.name}")
            if was is None:
                was = _joined(now)
            if _same(f, sent, was if f.type not in LISTS else was.split(",")):
                continue
            if not _same_typed(f, was, now):
                moved.append(
                    f"{f.label} was changed since you opened this page (it is now {_shown(f, view['values'][f.name])})"
                )
                continue
            values[f.name] = sent
        if moved:
            raise approvals.ChangeRefused("; ".join(moved) + ": look at it again and change it from there.")
        if not values:
            raise approvals.ChangeRefused(
                f"{k.label} {code} holds these values already: nothing would change."
            )
        effective_at = _effective(request.POST)
        # Descriptive fields need no signature: the signing dialog is used only for GMP ones.
        signer = _signer(request, Meaning.REQUESTED) if signing else None
        outcome = master_change(
            actor=_actor(request),
            signer=signer,
            kind=k.name,
            code=code,
            values=values,
            reason=request.POST.get("reason", ""),
            effective_at=effective_at,
            comment=request.POST.get("signer_comment", ""),
        )
    except REFUSED as exc:
        # A GMP change sent without a signature: the signing dialog opens, the values kept.
        needs_signature = not signing and any(k.field(n).gmp for n in values)
        return _item_page(
            request,
            k,
            code,
            status=422,
            refusal=[str(exc)],
            posted_form="change",
            open_dialog="sign-change" if needs_signature or isinstance(exc, SignatureRefused) else None,
            dialog_messages=[str(exc)],
        )
    if outcome.request is not None and signer is not None:
        signing_session_open(signer)
    if outcome.applied:
        messages.success(request, "Changed now: " + "; ".join(outcome.applied) + ".")
    if outcome.request is not None:
        messages.success(
            request, f"{outcome.request.number} requested: a QA approver approves it before it takes effect."
        )
    return HttpResponseRedirect(reverse("master_item", args=[k.name, code]))


@login_required
@require_POST
def master_item_retire(request: HttpRequest, kind: str, code: str) -> HttpResponse:
    """Request that an item is used no more: its records keep it, readable."""
    k = _kind(request, kind)
    require(request.user, PERMISSION)
    if selectors.item_view(k, code) is None:
        raise Http404(f"There is no {k.label.lower()} {code!r}.")
    try:
        effective_at = _effective(request.POST)
        signer = _signer(request, Meaning.REQUESTED)
        change = master_retire(
            actor=_actor(request),
            signer=signer,
            kind=k.name,
            code=code,
            reason=request.POST.get("reason", ""),
            effective_at=effective_at,
            comment=request.POST.get("signer_comment", ""),
        )
    except REFUSED as exc:
        return _item_page(
            request,
            k,
            code,
            status=422,
            refusal=[str(exc)],
            posted_form="retire",
            open_dialog="sign-retire" if isinstance(exc, SignatureRefused) else None,
            dialog_messages=[str(exc)],
        )
    signing_session_open(signer)
    messages.success(
        request, f"{change.number} requested: a QA approver approves the retirement before it takes effect."
    )
    return HttpResponseRedirect(reverse("master_item", args=[k.name, code]))


def _changes_page(request: HttpRequest, *, status: int = 200, **extra: Any) -> HttpResponse:
    if not _may_see_changes(request.user):
        raise PermissionDenied(
            "Your roles do not allow this: master-data requests are for QA approvers, "
            "the people who request them and auditors."
        )
    context = {
        "requests": _requests(selectors.requests_open()),
        "imports": open_imports(),
        "gateway_changes": open_gateway_changes(),
        "can_approve": request.user.has_perm(APPROVE),
        "can_import": request.user.has_perm(PERMISSION),
        "username_required": username_required(request),
        "kept": request.POST if request.method == "POST" else {},
        "back": "changes",
        **extra,
    }
    return render(request, "masterdata/changes.html", context, status=status)


@login_required
def master_changes(request: HttpRequest) -> HttpResponse:
    return _changes_page(request)


def decide_on_changes_page(
    request: HttpRequest, change: ChangeRequest, decision: str, *, dialog: str, approved: str
) -> HttpResponse:
    """A QA approver's signed approval or rejection of a request listed on the requests page (an
    import, a gateway change); a refusal shows the page again with the dialog open and why."""
    comment = request.POST.get("signer_comment", "")
    meaning = {"approve": Meaning.APPROVED, "reject": Meaning.REJECTED}.get(decision)
    try:
        if meaning is None:
            raise approvals.ChangeRefused(f"{decision[:40]!r} is not a decision on a change.")
        signer = signer_posted(request, meaning)
        decide = approvals.change_approve if meaning == Meaning.APPROVED else approvals.change_reject
        decide(actor=Actor.of(request.user, via="web"), signer=signer, request=change, comment=comment)
    except (approvals.ChangeRefused, SignatureRefused, ReasonRequired) as exc:
        return _changes_page(
            request,
            status=422,
            refusal=[str(exc)],
            open_dialog=f"{decision}-{dialog}-{change.pk}",
            dialog_messages=[str(exc)],
        )
    signing_session_open(signer)
    word = approved if meaning == Meaning.APPROVED else "rejected: nothing changed."
    messages.success(request, f"{change.number} {word}")
    return HttpResponseRedirect(reverse("master_changes"))


@login_required
@require_POST
def master_decide(request: HttpRequest, pk: int, decision: str) -> HttpResponse:
    """A QA approver approves (in force now, or at its effective date) or rejects a request."""
    require(request.user, APPROVE)
    change = get_object_or_404(ChangeRequest, pk=pk, kind=CHANGE_KIND)
    kind, code = change.payload["kind"], change.payload["code"]
    # Back to the item's page when decided there; a new item has no page until it is approved.
    from_item = request.POST.get("back") == "item" and change.payload["operation"] != "create"
    comment = request.POST.get("signer_comment", "")
    dialog = f"{decision}-{change.pk}"
    try:
        if decision == "approve":
            signer = _signer(request, Meaning.APPROVED)
            approvals.change_approve(actor=_actor(request), signer=signer, request=change, comment=comment)
            view = selectors.request_view(change)
            when = _moment(view["effective_at"])
            done = f"{change.number} approved: in force now."
            if not view["applied_at"] and when is not None:
                done = f"{change.number} approved: it takes effect at {timezone.localtime(when):%Y-%m-%d %H:%M %Z}."
        elif decision == "reject":
            signer = _signer(request, Meaning.REJECTED)
            approvals.change_reject(actor=_actor(request), signer=signer, request=change, comment=comment)
            done = f"{change.number} rejected: nothing changed."
        else:
            raise approvals.ChangeRefused(f"{decision[:40]!r} is not a decision on a change.")
    except REFUSED as exc:
        extra: dict[str, Any] = {
            "status": 422,
            "refusal": [str(exc)],
            "open_dialog": dialog,
            "dialog_messages": [str(exc)],
        }
        if from_item:
            return _item_page(request, _kind(request, kind), code, posted_form="decide", **extra)
        return _changes_page(request, **extra)
    signing_session_open(signer)
    messages.success(request, done)
    if from_item:
        return HttpResponseRedirect(reverse("master_item", args=[kind, code]))
    return HttpResponseRedirect(reverse("master_changes"))
