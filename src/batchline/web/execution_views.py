"""The floor list, the operator's execution screen and the batch record view.

Every action posts with htmx and gets the execution panel back (no page
reload between steps); a refusal comes back as the same panel with the reasons
in words, status 422, and nothing written but the refusal itself.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.shortcuts import get_object_or_404, render
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_POST

from batchline.audit.services import Actor, ReasonRequired
from batchline.configuration import selectors as configuration
from batchline.execution import dispensing, instruments, monitoring, prompts, recording, selectors, services
from batchline.execution.models import Batch, BatchStep
from batchline.reports import documents
from batchline.rules import gates, numbers, states
from batchline.rules.verdict import Refused
from batchline.signatures import status as signature_status
from batchline.signatures.models import Meaning
from batchline.signatures.services import (
    SignatureRefused,
    VerifiedSigner,
    signer_authenticate,
    signing_session_open,
    username_required,
)

from . import offers, record_page, screens, step_panels
from .access import current_user, require

# Never typed back into a form after a refusal.
NOT_KEPT = frozenset({"signer_password", "witness_password", "csrfmiddlewaretoken"})


def _batch(number: str) -> Batch:
    try:
        return selectors.batch_by_number(number)
    except Batch.DoesNotExist as exc:
        raise Http404(f"No batch {number}") from exc


@login_required
def fefo_proposal(request: HttpRequest, number: str, key: str) -> HttpResponse:
    """The container to pick first, now: outside the screen's cache, as a lot's expiry passes unwritten."""
    require(request.user, "execution.view_batch")
    step = (
        BatchStep.objects.select_related("batch")
        .filter(batch__number=number, key=key, kind="weigh_dispense")
        .first()
    )
    if step is None:
        raise Http404(f"No weighing step {key} in batch {number}")
    return render(request, "execution/_fefo.html", {"proposal": dispensing.fefo_proposal(step, step.batch)})


def _panel(
    request: HttpRequest,
    number: str,
    *,
    selected: str | None = None,
    refusal: list[str] | None = None,
    refusal_recorded: bool = True,
    sign_error: str = "",
    confirm: list[str] | None = None,
    dialog: str = "",
    status: int = 200,
) -> HttpResponse:
    """The execution panel (the whole page unless htmx asks), from the cache when nothing has changed.

    After a refusal (``refusal``, ``sign_error``) or a question (``confirm``: values outside their
    specification) the form comes back as it was typed, never with a password, and the dialog
    named ``dialog`` opens again with the refusal in words; such a panel is never cached.
    """
    version = selectors.batch_version(number)  # first: what is read after it is at least as new
    if version is None:
        raise Http404(f"No batch {number}")
    user = current_user(request)
    can_control = user.has_perm("execution.control_batch")
    can_execute = user.has_perm("execution.execute_batch")
    # A step's role decides who may start it: the person's roles are part of what the panel offers.
    # Roles and the site's zone change only with audited writes: kept under the trail's head.
    head = version[1]
    roles: frozenset[str] = screens.at_head(
        head, f"roles:{user.pk}", lambda: frozenset(user.groups.values_list("name", flat=True))
    )
    needs_username = username_required(request)
    zone = screens.at_head(head, f"zone:{settings.TIME_ZONE}", timezone.get_current_timezone_name)
    answered = bool(refusal or sign_error or confirm)
    panel_key = (
        None
        if answered
        else screens.panel_key(
            version,
            selected=selected,
            can_control=can_control,
            can_execute=can_execute,
            roles=roles,
            username_required=needs_username,
            zone=zone,
        )
    )
    kept = (
        {k: v[:2000] for k, v in request.POST.items() if k not in NOT_KEPT}
        if answered and request.method == "POST"
        else {}
    )

    def render_panel(csrf_token: str) -> str:
        batch = selectors.batch_by_number(number)
        screen, current = selectors.batch_panel(batch, selected)
        if current is not None:  # each signature of the shown step with its status (11.70)
            signature_status.annotate(
                current.signatures, signature_status.step_statuses(batch.number, current)
            )
        last = screen.last_done
        ready = screen.ready
        context: dict[str, Any] = {
            **step_panels.context(batch, current),
            **offers.offers(batch, screen, current, user_id=user.pk, roles=roles, can_control=can_control),
            "screen": screen,
            "batch": batch,
            "current": current,
            "others_running": [
                s for s in screen.running if current is None or s.step.key != current.step.key
            ],
            "ready_now": [s for s in ready if current is None or s.step.key != current.step.key],
            "ready_keys": {s.step.key for s in ready},
            "folded_count": screen.done_count - (1 if last else 0),
            "scanned_kinds": step_panels.SCANNED,
            "work_states": gates.BATCH_ACCEPTS_WORK,
            "refusal": refusal or [],
            "refusal_recorded": refusal_recorded,
            "sign_error": sign_error,
            "confirm": confirm or [],
            "kept": kept,
            "open_dialog": dialog,
            "dialog_messages": [*(refusal or []), *([sign_error] if sign_error else [])],
            "dialog_include": "execution/_confirm_oos.html" if confirm else "",
            "username_required": needs_username,
            "can_control": can_control,
            "can_execute": can_execute,
            "zone_name": zone,
            "meaning": Meaning.PERFORMED.value,
            "meaning_label": Meaning.PERFORMED.label,
            "csrf_token": csrf_token,
        }
        return render_to_string("execution/_panel.html", context)

    token = get_token(request)
    if getattr(request, "htmx", False):
        return HttpResponse(
            screens.cached_html(panel_key, csrf_token=token, render=render_panel), status=status
        )

    def render_page(csrf_token: str) -> str:
        panel = screens.cached_html(panel_key, csrf_token=csrf_token, render=render_panel)
        context = {"number": number, "panel": mark_safe(panel), "csrf_token": csrf_token}  # noqa: S308 (our render)
        return render_to_string("execution/batch.html", context, request=request)

    page_key = (
        None
        if panel_key is None
        or request.method != "GET"  # the menu marks the page it is on
        or len(messages.get_messages(request))  # a message shows once: never cached
        else screens.page_key(panel_key, user_id=user.pk, permissions=user.get_all_permissions())
    )
    return HttpResponse(screens.cached_html(page_key, csrf_token=token, render=render_page), status=status)


@login_required
def batch(request: HttpRequest, number: str) -> HttpResponse:
    require(request.user, "execution.view_batch")
    return _panel(request, number, selected=request.GET.get("step"))


def _signer(request: HttpRequest, meaning: str, *, allow_witness: bool = False) -> VerifiedSigner:
    username = (request.POST.get("signer_username") or "").strip() or None
    witness = bool(allow_witness and username and username != request.user.get_username())
    return signer_authenticate(
        request=request,
        username=username,
        password=request.POST.get("signer_password", ""),
        meaning=meaning,
        witness=witness,
    )


def _witness(request: HttpRequest) -> VerifiedSigner | None:
    """The second person's signature for a value typed in place of a machine's reading, if they signed;
    without one the service names what is missing (the reason, the witness) at once."""
    if not request.POST.get("witness_password"):
        return None
    return signer_authenticate(
        request=request,
        username=(request.POST.get("witness_username") or "").strip() or None,
        password=request.POST.get("witness_password", ""),
        meaning=Meaning.VERIFIED,
        witness=True,
    )


# The signing dialog each action's form opens, to reopen after a refusal with what was typed.
_DIALOGS = {"verify": "sign-verify", "correct": "sign-correct"}


def _confirmed(request: HttpRequest) -> bool:
    return request.POST.get("confirm_out_of_specification", "") in ("1", "on")


@login_required
@require_POST
def step_action(request: HttpRequest, number: str, key: str, action: str) -> HttpResponse:
    user = current_user(request)
    # Who may act is decided before anything is looked up.
    if action == "verify":
        if not (user.has_perm("execution.execute_batch") or user.has_perm("signatures.sign_verified")):
            raise PermissionDenied("Verification happens at a station of the floor.")
    else:
        require(user, "execution.execute_batch")
    batch = _batch(number)
    actor = Actor.of(user, via="web")
    signer: VerifiedSigner | None = None
    dialog = _DIALOGS.get(action, "")
    shown: str | None = key  # the step acted on stays in view (a step started is the step shown)
    try:
        if action == "start":
            services.step_start(actor=actor, user=user, batch=batch, step_key=key)
        elif action == "complete":
            step = batch.steps.filter(key=key).first()
            if step is None:
                raise Http404(f"No step {key}")
            definition = step.spec
            if definition.get("signs"):
                dialog = "sign-step"
                signer = _signer(request, Meaning.PERFORMED)
            entries = {
                i["name"]: request.POST.get(f"value_{i['name']}", "") for i in definition.get("inputs", [])
            }
            checklist = [
                request.POST.get(f"check_{n}") == "on" for n in range(len(definition.get("checklist", [])))
            ]
            completed = services.step_complete(
                actor=actor,
                user=user,
                batch=batch,
                step_key=key,
                entries=entries,
                checklist=checklist,
                signer=signer,
                confirm_out_of_specification=_confirmed(request),
            )
            # Done: on to what comes next; waiting for its verifier: it stays, for them to sign here.
            shown = key if completed.state == "awaiting_verification" else None
        elif action == "dispense":
            # The button pressed decides the path: a hand-typed weight is never taken for a reading.
            manual = request.POST.get("mode") == "manual"
            # No witness typed: the service names everything missing (reason, witness) at once.
            witnessed = manual and bool(request.POST.get("signer_password"))
            witness = _signer(request, Meaning.VERIFIED, allow_witness=True) if witnessed else None
            services.step_dispense(
                actor=actor,
                user=user,
                batch=batch,
                step_key=key,
                source=request.POST.get("source", ""),
                scale=request.POST.get("scale", ""),
                manual_weight=request.POST.get("manual_weight", "") if manual else None,
                manual_unit=request.POST.get("manual_unit", ""),
                reason=request.POST.get("reason", "") if manual else "",
                witness=witness,
                other_lot_reason=request.POST.get("other_lot_reason", ""),
            )
        elif action == "verify":
            signer = _signer(request, Meaning.VERIFIED, allow_witness=True)
            verifier = signer.user
            services.step_verify(
                actor=Actor.of(verifier, via="web"), user=verifier, batch=batch, step_key=key, signer=signer
            )
            shown = None
        elif action == "reading":
            instruments.step_take_reading(
                actor=actor, user=user, batch=batch, step_key=key, name=request.POST.get("name", "")
            )
        elif action == "reading_manual":
            instruments.step_enter_reading(
                actor=actor,
                user=user,
                batch=batch,
                step_key=key,
                name=request.POST.get("name", ""),
                text=request.POST.get("text", ""),
                reason=request.POST.get("reason", ""),
                witness=_witness(request),
                confirm_out_of_specification=_confirmed(request),
            )
        elif action == "acknowledge":
            step = batch.steps.filter(key=key).first()
            if step is None:
                raise Http404(f"No step {key}")
            alarm = request.POST.get("alarm", "")
            monitoring.alarm_acknowledge(
                actor=actor,
                alarm_id=int(alarm) if alarm.isdigit() and len(alarm) < 19 else 0,
                comment=request.POST.get("comment", ""),
                step=step,
            )
        elif action == "correct":
            witness = _witness(request)
            signer = _signer(request, Meaning.PERFORMED)
            services.value_correct(
                actor=actor,
                user=user,
                batch=batch,
                step_key=key,
                name=request.POST.get("name", ""),
                text=request.POST.get("text", ""),
                reason=request.POST.get("reason", ""),
                signer=signer,
                confirm_out_of_specification=_confirmed(request),
                witness=witness,
            )
        else:
            raise Http404("Unknown action")
    except prompts.ConfirmationRequired as asked:  # a question before recording, not a refusal
        reasons = [r.message for r in asked.verdict.reasons]
        return _panel(request, number, selected=key, confirm=reasons, dialog=dialog, status=409)
    except Refused as refused:  # a gate, or input the materials service refused (a weight that is no number)
        reasons = [r.message for r in refused.verdict.reasons]
        # A refused acknowledgement changes nothing about the product: it is answered, not recorded.
        recorded = not isinstance(refused, monitoring.AlarmRefused)
        return _panel(
            request,
            number,
            selected=key,
            refusal=reasons,
            refusal_recorded=recorded,
            dialog=dialog,
            status=422,
        )
    except (SignatureRefused, ReasonRequired) as exc:
        return _panel(request, number, selected=key, sign_error=str(exc), dialog=dialog, status=422)
    if signer is not None and not signer.witness:
        signing_session_open(signer)
    return _panel(request, number, selected=shown)


@login_required
@require_POST
def batch_action(request: HttpRequest, number: str, command: str) -> HttpResponse:
    require(request.user, "execution.control_batch")
    batch = _batch(number)
    user = current_user(request)
    dialog = f"sign-{command}" if command in states.BATCH else ""
    try:
        signer = _signer(request, Meaning.PERFORMED)
        services.batch_command(
            actor=Actor.of(user, via="web"),
            batch=batch,
            command=command,
            signer=signer,
            reason=request.POST.get("reason", ""),
        )
    except services.ExecutionRefused as refused:
        reasons = [r.message for r in refused.verdict.reasons]
        return _panel(request, number, refusal=reasons, dialog=dialog, status=422)
    except (SignatureRefused, ReasonRequired) as exc:
        return _panel(request, number, sign_error=str(exc), dialog=dialog, status=422)
    signing_session_open(signer)
    return _panel(request, number)


@login_required
@require_POST
def scan(request: HttpRequest, number: str) -> HttpResponse:
    """A barcode scanner types a code and Enter.

    Into a running step's own field (``step``): a container or equipment tag for that
    step, and for no other. A step's code, into any field: that step opens.
    """
    require(request.user, "execution.view_batch")
    batch = _batch(number)
    code = request.POST.get("code", "").strip()
    step_key = request.POST.get("step", "")
    is_step = batch.steps.filter(key=code).exists()
    if step_key and not is_step:
        require(request.user, "execution.execute_batch")
        try:
            services.step_scan(
                actor=Actor.of(request.user, via="web"),
                user=current_user(request),
                batch=batch,
                step_key=step_key,
                scan=code,
            )
        except services.ExecutionRefused as exc:
            return _panel(
                request,
                number,
                selected=step_key,
                refusal=[r.message for r in exc.verdict.reasons],
                status=422,
            )
        return _panel(request, number, selected=step_key)
    if not is_step:
        scanning = [
            s.title for s in batch.steps.filter(state="running", kind__in=step_panels.SCANNED).only("title")
        ]
        where = (
            " To scan a label, use the scan field of the step it is for: "
            + ", ".join(f"“{t}”" for t in scanning)
            + "."
            if scanning
            else ""
        )
        return _panel(
            request,
            number,
            refusal=[f"{code!r} is not the code of a step of batch {batch.number}.{where}"],
            status=422,
        )
    return _panel(request, number, selected=code)


def _may_read_records(request: HttpRequest) -> None:
    if not (
        request.user.has_perm("execution.view_batch") or request.user.has_perm("accounts.view_audit_trail")
    ):
        raise PermissionDenied("Your roles do not allow reading batch records.")


@login_required
def batch_record(request: HttpRequest, number: str) -> HttpResponse:
    from . import step_records_views  # it imports this module's _panel

    _may_read_records(request)
    batch = _batch(number)
    screen = selectors.batch_screen(batch)
    content, statuses = signature_status.batch_statuses(batch)
    signature_status.annotate(
        [*screen.batch_signatures, *(sig for s in screen.steps for sig in s.signatures)], statuses
    )
    # Every step's values, materials and equipment from the record's content, as the PDF prints them;
    # "performed by" and every name as it stood when the person acted (21 CFR 11.50).
    recorded = {s["key"]: s for s in content["steps"]}
    for s in screen.steps:
        step = recorded[s.step.key]
        for role in ("started", "completed", "verified"):
            setattr(s.step, f"{role}_name", _printed(step[f"{role}_by"]))
        s.record = record_page.step_rows(step)  # type: ignore[attr-defined]
    context = {
        "screen": screen,
        "batch": batch,
        "created_name": _printed(content["header"]["created_by"]),
        "configuration": content["header"]["configuration"],
        "signature_records": content["signature_records"],
        "kind_sections": step_records_views.record_sections(content),
    }
    return render(request, "execution/record.html", context)


def _printed(person: dict[str, Any] | None) -> str:
    """A name as it stood then, and the name now beside it when it has changed since."""
    if not person:
        return ""
    return person["name"] + (f" (now {person['name_now']})" if person.get("name_now") else "")


@login_required
def batch_record_document(request: HttpRequest, number: str, fmt: str) -> HttpResponse:
    """The executed record as a file: PDF, JSON or BatchML (one click on the record page)."""
    _may_read_records(request)
    if fmt not in documents.FORMATS:
        raise Http404(f"No record format {fmt}")
    doc = documents.batch_document(_batch(number), fmt)
    response = HttpResponse(doc.data, content_type=doc.content_type)
    response["Content-Disposition"] = f'attachment; filename="{doc.filename}"'
    return response


@login_required
def scale_reading(request: HttpRequest) -> HttpResponse:
    """The live reading the booth screen polls (MT-SICS SI, stable or not): shown, never recorded."""
    require(request.user, "execution.execute_batch")
    code = request.GET.get("scale", "")[:40]
    reading = (
        dispensing.live_reading(code, actor=Actor.of(request.user, via="web"))
        if code
        else {"error": "Choose a scale."}
    )
    return render(request, "execution/_reading.html", {"reading": reading, "code": code})


@login_required
def device_reading(request: HttpRequest, number: str, key: str, name: str) -> HttpResponse:
    """The machine's current value of an input read from it, polled by the step screen: shown, never
    recorded (what "Take reading" would record now, or why it would be refused)."""
    require(request.user, "execution.execute_batch")
    step = get_object_or_404(BatchStep.objects.select_related("batch"), batch__number=number, key=key)
    definition = next((i for i in instruments.device_inputs(step) if i["name"] == name), None)
    if definition is None:
        raise Http404(f"No input {name[:60]} read from a machine")
    found, value, problem = instruments.judge_reading(definition, step, timezone.now())
    context = {
        "found": found,
        "number": numbers.written(value, configuration.notation()) if value is not None else "",
        "unit": definition.get("unit", ""),
        "problem": problem.message if problem else "",
    }
    return render(request, "execution/_device_value.html", context)


@login_required
@require_POST
def dispensed_label(request: HttpRequest, number: str, code: str) -> HttpResponse:
    """The label of a container weighed out for this batch (211.101(b)(4)): printed at the booth, logged."""
    return label_printed(request, number, code, recording.dispensed_label_print)


def label_printed(request: HttpRequest, number: str, code: str, printer: Any) -> HttpResponse:
    """A label of this batch (a dispensed container's, a sample's, an output container's) as PDF, its
    print logged by ``printer``; a reprint without its reason answers the screen with the refusal."""
    require(request.user, "execution.execute_batch")
    batch = _batch(number)
    try:
        content = printer(
            actor=Actor.of(request.user, via="web"),
            batch=batch,
            code=code,
            reason=request.POST.get("reason", ""),
        )
    except ReasonRequired as exc:
        return _panel(request, batch.number, refusal=[str(exc)], status=422)
    except Refused as exc:
        raise Http404(exc.verdict.reasons[0].message) from exc
    response = HttpResponse(content, content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="{code}.pdf"'
    return response
