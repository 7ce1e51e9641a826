"""The execution engine: one code path for every client (P11-06, S88-05, DESIGN invariant 6).

Every action locks the batch row first (so actions on one batch run one at a
time, on SQLite and PostgreSQL alike), builds a snapshot, asks ``rules.gates``
and writes nothing when the verdict refuses, except the record of the refusal,
which is committed on its own afterwards as an exception for QA.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, ParamSpec, TypeVar

from django.db import IntegrityError, transaction
from django.utils import timezone

from batchline.audit.models import AuditEntry
from batchline.audit.services import (
    Actor,
    ReasonRequired,
    audit_append,
    audit_together,
    record_create,
    record_update,
)
from batchline.configuration import selectors as configuration
from batchline.equipment import stations
from batchline.equipment.stations import registered_station_only
from batchline.materials import services as stock
from batchline.materials.models import Container
from batchline.materials.selectors import output_lot
from batchline.outbox import events
from batchline.recipes.document import from_canonical
from batchline.recipes.models import MasterRecipe, RecipeStatus
from batchline.rules import bindings, exceptions, gates, graph, numbers, states
from batchline.rules.formula import FormulaError
from batchline.rules.formula import parse as parse_formula
from batchline.rules.limits import judge
from batchline.rules.numbers import NotANumber, Notation
from batchline.rules.verdict import Reason, Refused, Verdict
from batchline.signatures.models import Meaning
from batchline.signatures.services import VerifiedSigner, signature_apply
from batchline.training.selectors import curriculum_gaps, user_qualified
from batchline.units import convert

from . import (
    charging,
    dispensing,
    identify,
    labelling,
    monitoring,
    producing,
    prompts,
    raising,
    rows,
    sampling,
    steprecords,
    yields,
)
from .models import Batch, BatchState, BatchStep, Severity, StepState, StepValue
from .scaling import Ratio, number_limits, plain

VERIFY_PERMISSION = "signatures.sign_verified"
BATCH_NUMBER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,39}")
# StepValue.number is numeric(28, 9): at most 19 digits before the point and 9 after.
MAX_NUMBER = Decimal("1e19")


class ExecutionRefused(Refused):
    """A gate said no. ``verdict.reasons`` say why, in words for the operator."""


_refuse = ExecutionRefused.because


def _person(actor: Actor) -> int:
    if actor.id is None:
        raise _refuse("PERSON_REQUIRED", "Batches are executed by people, each under their own name.")
    return actor.id


P = ParamSpec("P")
R = TypeVar("R")


def _records_refusal(action: Callable[P, R]) -> Callable[P, R]:
    """A refused step action is rolled back, then its refusal is recorded on its own for QA."""

    @functools.wraps(action)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return action(*args, **kwargs)
        except ExecutionRefused as refused:
            batch, step_key, actor = kwargs["batch"], kwargs.get("step_key"), kwargs["actor"]
            # What was scanned or weighed from, and on which scale: the context QA reads.
            scanned = str(kwargs.get("scan") or kwargs.get("source") or "")
            _record_refusal(batch.pk, step_key, actor, refused, scanned, str(kwargs.get("scale") or ""))  # type: ignore[attr-defined,arg-type]
            raise

    return run


# A batch released or rejected by QA: its record is closed. A refused attempt on it is recorded as a
# security/audit event only (before the decision it is an open exception QA must see in the review).
RECORD_CLOSED = (BatchState.QA_RELEASED, BatchState.REJECTED)


def _record_refusal(
    batch_id: int, step_key: str | None, actor: Actor, refused: ExecutionRefused, scanned: str, scale: str
) -> None:
    """The refused attempt itself, kept for QA (P11-06 "blocked and logged"), in its own transaction.

    It holds the batch's lock like any action on the batch, taken before the audit
    chain's as everywhere else: one lock order, no deadlock.
    """
    with transaction.atomic():
        batch = rows.lock_batch(batch_id)
        if batch is None:
            raise Batch.DoesNotExist(f"no batch #{batch_id}")
        if batch.state in RECORD_CLOSED:
            # Nothing happened to the product: the attempt is a security/audit event on the batch, not
            # an open exception added to a decided record (whose release signature binds its exceptions).
            for reason in refused.verdict.reasons:
                audit_append(
                    actor=actor,
                    action="refused_after_release",
                    record_type="execution.batch",
                    record_id=batch.pk,
                    changes={},
                    reason=f"Refused on batch {batch.number} ({states.LABELS[batch.state]})"
                    + (f", step {step_key}" if step_key else "")
                    + (f", scanned {scanned[:60]}" if scanned else "")
                    + f": {reason.message} [{reason.code}]",
                )
            return
        found = rows.steps_and_roles(batch, [step_key], None).steps if step_key else []
        step = found[0] if found else None
        for reason in refused.verdict.reasons:
            code = f"REFUSED_{reason.code}"
            subject = exceptions.classify(code).subject
            # A dispensing step scans the container and weighs on the scale: a refusal about the
            # equipment there is about the scale; at an equipment step, about the unit scanned.
            equipment = (scale or scanned) if subject == exceptions.EQUIPMENT else ""
            raising.exception_raise(
                batch,
                actor=actor,
                code=code,
                message=f"Refused: {reason.message}",
                step=step,
                material=scanned[:60] if subject == exceptions.MATERIAL else "",
                equipment=equipment[:40],
            )


# --- batches ------------------------------------------------------------------------------


def batch_create(
    *, actor: Actor, recipe: MasterRecipe, number: str, planned_quantity: Decimal | str
) -> Batch:
    """A process order from an effective recipe, with its control recipe frozen into it.

    A planned quantity given as text is read in the site's notation (``rules.numbers``).
    """
    person = _person(actor)
    number = number.strip()
    if not number:
        raise _refuse("NUMBER_REQUIRED", "A batch needs a batch number.")
    if isinstance(planned_quantity, str):
        try:
            planned_quantity = numbers.read(planned_quantity, configuration.notation())
        except NotANumber as exc:
            raise _refuse("QUANTITY", numbers.sentence("Planned quantity", exc)) from None
    if not planned_quantity.is_finite() or planned_quantity <= 0:
        raise _refuse("QUANTITY", "The planned quantity must be a number more than zero.")
    # The size first: quantizing 1E+400 to six decimals is itself an error.
    if planned_quantity >= Decimal("1e12") or planned_quantity != planned_quantity.quantize(
        Decimal("0.000001")
    ):
        raise _refuse(
            "QUANTITY", "The planned quantity has at most 12 digits before and 6 after the decimal mark."
        )
    if not BATCH_NUMBER.fullmatch(number):
        raise _refuse(
            "NUMBER_FORMAT",
            "A batch number is letters, digits, '.', '_' and '-' (up to 40), starting with a letter or digit.",
        )
    with transaction.atomic():
        recipe = MasterRecipe.objects.select_for_update().get(pk=recipe.pk)
        if recipe.status != RecipeStatus.EFFECTIVE:
            raise _refuse(
                "RECIPE_NOT_EFFECTIVE",
                f"{recipe.code} version {recipe.version} is {recipe.get_status_display().lower()}: "
                "only an effective recipe can be used for a batch.",
            )
        if recipe.product.retired_at is not None:
            raise _refuse(
                "PRODUCT_RETIRED",
                f"{recipe.product.code} {recipe.product.name} is retired in the master data: no new batch is made of it.",
            )
        if Batch.objects.filter(number=number).exists():
            raise _refuse("NUMBER_TAKEN", f"Batch number {number} is already used.")
        ratio = planned_quantity / recipe.nominal_quantity
        if not Decimal("0.000001") <= ratio <= Decimal("1000000"):
            raise _refuse(
                "QUANTITY",
                f"{planned_quantity} {recipe.nominal_unit} is out of proportion to the recipe's batch size of "
                f"{recipe.nominal_quantity.normalize():f} {recipe.nominal_unit}.",
            )
        document = recipe.document
        row = Batch(
            number=number,
            recipe=recipe,
            planned_quantity=planned_quantity,
            nominal_quantity=recipe.nominal_quantity,
            unit=recipe.nominal_unit,
            scale=ratio.quantize(Decimal("0.000000001")),
            control_recipe=document,
            created_by_id=person,
            created_at=timezone.now(),
        )
        try:
            with transaction.atomic():  # a savepoint: the same number taken at the same moment is refused
                batch = record_create(row, actor=actor)
        except IntegrityError as exc:
            raise _refuse("NUMBER_TAKEN", f"Batch number {number} is already used.") from exc
        preds = from_canonical(document).predecessors()
        position = {key: i for i, key in enumerate(graph.topological_order(preds))}
        for op in document["operations"]:
            for step in op["steps"]:
                record_create(
                    BatchStep(
                        batch=batch,
                        key=step["key"],
                        seq=position[step["key"]],
                        operation=op["name"],
                        title=step["title"],
                        kind=step["kind"],
                        spec=_with_yield(step, op),
                        predecessors=preds[step["key"]],
                    ),
                    actor=actor,
                )
        product = recipe.product
        try:
            stock.output_lot_register(
                actor=actor,
                batch_number=number,
                product_code=product.code,
                product_name=product.name,
                unit=recipe.nominal_unit,
                at=batch.created_at,
            )
        except stock.MaterialRefused as exc:
            raise ExecutionRefused(exc.verdict) from exc
    return batch


def _with_yield(step: dict[str, Any], op: dict[str, Any]) -> dict[str, Any]:
    """The step that records its operation's actual output carries the operation's yield, so it is
    judged when that step completes, without reading the whole control recipe."""
    spec = op.get("yield")
    if spec and spec["actual"] in {v["name"] for v in recorded_values(step)}:
        # Its theoretical quantity, when it is the components used, counts this operation's only.
        steps = [st["key"] for st in op["steps"]]
        return {**step, "yield": {**spec, "operation": op["name"], "steps": steps}}
    return step


def recorded_values(step: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The definitions of every value a step records: inputs, calculations, a timer's measured
    duration and a produce step's total (``recipes.document.Step.recorded``), and the laboratory's
    results a sampling step waits for (recorded on it by ``sampling.result_fill``)."""
    found = [*step.get("inputs", []), *step.get("calculations", [])]
    if (step.get("timer") or {}).get("record"):
        found.append(step["timer"]["record"])
    if step.get("produce"):
        found.append(step["produce"])
    if ((step.get("sampling") or {}).get("result") or {}).get("waits"):
        found.append(step["sampling"]["result"])
    return found


def batch_produce(
    *, actor: Actor, batch: Batch, quantities: list[Decimal | str], unit: str, step_key: str = ""
) -> list[Container]:
    """Record produced output of a running batch into new containers of its output lot (GEN-01)."""
    _person(actor)
    with transaction.atomic():
        locked = rows.lock_batch(batch.pk)
        if locked is None:
            raise Batch.DoesNotExist(f"no batch #{batch.pk}")
        if locked.state != BatchState.RUNNING:
            raise _refuse(
                "BATCH_NOT_RUNNING",
                f"Batch {locked.number} is {states.LABELS[locked.state]}: output is recorded while it runs.",
            )
        lot = output_lot(locked.number)
        if lot is None:
            raise _refuse("NO_OUTPUT_LOT", f"Batch {locked.number} has no output lot to produce into.")
        try:
            return stock.lot_produce(
                actor=actor, lot=lot, quantities=quantities, unit=unit, step_key=step_key
            )
        except stock.MaterialRefused as exc:
            raise ExecutionRefused(exc.verdict) from exc


def _state_before_hold(batch: Batch) -> str:
    """Resume returns a batch to where the hold found it (released or running), as its trail says."""
    last_hold = (
        AuditEntry.objects.filter(record_type="execution.batch", record_id=str(batch.pk), action="hold")
        .order_by("-id")
        .values_list("changes", flat=True)
        .first()
    )
    if last_hold:
        before = json.loads(last_hold).get("state", [None])[0]
        if before in (BatchState.RELEASED, BatchState.RUNNING):
            return str(before)
    return BatchState.RUNNING


def batch_command(
    *, actor: Actor, batch: Batch, command: str, signer: VerifiedSigner | None, reason: str = ""
) -> Batch:
    """Release, hold, resume or abort a batch; each signed, hold and abort with a reason (S88-05)."""
    reason = reason.strip()  # as the audit entry keeps it: the signature binds the same text
    with transaction.atomic():
        locked = Batch.objects.select_for_update(no_key=True).get(pk=batch.pk)  # as rows.lock_batch
        verdict = states.check(states.BATCH, command, locked.state, what="batch")
        if not verdict.allowed:
            raise ExecutionRefused(verdict)
        t = states.BATCH[command]
        if t.meaning is None:
            raise _refuse("NOT_BY_HAND", f"'{command}' happens by itself when the steps run.")
        if signer is None or signer.user.pk != actor.id:
            raise _refuse("SIGNATURE_REQUIRED", f"To {command} a batch, sign with your user ID and password.")
        if not signer.user.has_perm("execution.control_batch"):
            raise _refuse("NOT_AUTHORISED", f"Your roles do not allow you to {command} a batch.")
        if t.reason_required and not reason.strip():
            raise ReasonRequired(f"Give a reason to {command} the batch.")
        target = _state_before_hold(locked) if command == "resume" else t.target
        record_update(locked, actor=actor, values={"state": target}, action=command, reason=reason)
        signature_apply(
            signer=signer,
            meaning=t.meaning,
            record=locked,
            content={"batch": locked.number, "command": command, "state": target, "reason": reason},
            actor=actor,
            comment=reason,
        )
        if command in ("hold", "abort"):
            raising.exception_raise(
                locked,
                actor=actor,
                code=command.upper(),
                severity=Severity.MEDIUM if command == "hold" else Severity.HIGH,
                message=f"Batch {'held' if command == 'hold' else 'aborted'}: {reason}",
            )
        if command == "abort":
            identify.release_all(locked, actor=actor)
            events.publish("batch.aborted", batch=locked.number, reason=reason)
    return locked


# --- steps --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Snapshot:
    batch: Batch
    steps: dict[str, BatchStep]
    views: dict[str, gates.StepView]
    preds: dict[str, list[str]]
    roles: frozenset[str]  # of the person acting
    others_open: bool | None  # whether a step other than ``key`` is not done (None: not asked)


def _snapshot(
    batch_id: int, key: str | None = None, *, user: Any, predecessors: bool = False, finishes: bool = False
) -> _Snapshot:
    """Lock the batch (one action per batch at a time) and read the step ``key`` and the roles of ``user``.

    With ``predecessors``, the step's predecessors too; with ``finishes`` (an
    action that may make the step done), whether any other step is still open;
    without ``key``, every step. The batch's frozen document is not read: each
    step row carries its own part, so an action costs the same in a recipe of
    30 steps or of 3,000.
    """
    batch = rows.lock_batch(batch_id)
    if batch is None:
        raise Batch.DoesNotExist(f"no batch #{batch_id}")
    found, roles, others_open = rows.steps_and_roles(
        batch, None if key is None else [key], user.pk, others_open=finishes and key is not None
    )
    if predecessors and found and found[0].predecessors:
        found.extend(rows.steps_and_roles(batch, list(found[0].predecessors), user.pk).steps)
    steps = {s.key: s for s in found}
    preds = {k: list(s.predecessors) for k, s in steps.items()}
    views = {}
    for key, step in steps.items():
        d = step.spec
        timer = d.get("timer") or {}
        views[key] = gates.StepView(
            key=key,
            title=step.title,
            state=step.state,
            role=d.get("role", ""),
            predecessors=tuple(preds[key]),
            min_seconds=int(Decimal(timer["min_minutes"]) * 60) if timer.get("min_minutes") else None,
            max_seconds=int(Decimal(timer["max_minutes"]) * 60) if timer.get("max_minutes") else None,
            performer_signs=bool(d.get("signs")) or d.get("kind") == "signature",
            verification=bool(d.get("verify")) or d.get("kind") == "verification",
            started_at=step.started_at,
            performed_by=step.completed_by_id,
        )
    return _Snapshot(batch, steps, views, preds, roles, others_open)


def _gate_actor(actor: Actor, snap: _Snapshot, user: Any = None) -> gates.Actor:
    """The person as the gates see them; whether they may verify is asked (of ``user``) only for verification."""
    return gates.Actor(
        id=_person(actor),
        roles=snap.roles,
        can_verify=user is not None and user.has_perm(VERIFY_PERMISSION),
    )


def _step(snap: _Snapshot, key: str) -> BatchStep:
    if key not in snap.steps:
        raise _refuse("NO_SUCH_STEP", f"Batch {snap.batch.number} has no step {key!r}.")
    return snap.steps[key]


@registered_station_only
@_records_refusal
def step_start(*, actor: Actor, user: Any, batch: Batch, step_key: str) -> BatchStep:
    """Start a step once its predecessors are complete and the person has its role."""
    with transaction.atomic(), audit_together():  # entries appended at the end: the chain's lock held briefly
        snap = _snapshot(batch.pk, step_key, user=user, predecessors=True)
        step = _step(snap, step_key)
        verdict = gates.may_start(
            snap.views[step_key], snap.views, _gate_actor(actor, snap), batch_state=snap.batch.state
        )
        if blocked := raising.blocked_reason(snap.batch):
            verdict = Verdict((blocked, *verdict.reasons))
        now = timezone.now()
        if step.spec.get("qualification"):
            qualified = user_qualified(_person(actor), step.spec["qualification"], now)
            verdict = Verdict((*verdict.reasons, *qualified.reasons))
        # The curricula of the performer's roles (master data, TRN-01): trained on each, currently.
        verdict = Verdict((*verdict.reasons, *curriculum_gaps(_person(actor), user.role_names, now).reasons))
        if not verdict.allowed:
            raise ExecutionRefused(verdict)
        record_update(
            step,
            actor=actor,
            values={"state": StepState.RUNNING, "started_at": now, "started_by_id": actor.id},
            action="start",
        )
        if snap.batch.state == BatchState.RELEASED:
            record_update(snap.batch, actor=actor, values={"state": BatchState.RUNNING}, action="start")
            # Manufacture starts now: the output lot's expiry is counted from here.
            stock.output_lot_manufacture_started(actor=actor, batch_number=snap.batch.number, at=now)
            events.publish("batch.started", batch=snap.batch.number, at=now)
        return step


def _parse_entry(
    definition: Mapping[str, Any], raw: str | Decimal | int, notation: Callable[[], Notation]
) -> tuple[str, Decimal | None, Reason | None]:
    """The entry as text and, for numbers, as a Decimal read in the site's notation; or why it cannot be taken.

    A typed entry is read by ``rules.numbers`` (the notation is read only for a typed
    number); a machine's number (an API client's JSON number) is exact already, and its
    text is the number as the site writes it.
    """
    label, kind = definition["label"], definition.get("type", "number")
    if isinstance(raw, Decimal | int) and not isinstance(raw, bool):
        number = Decimal(raw)
        if not number.is_finite():
            return "", None, Reason("NOT_A_NUMBER", f"{label}: {number} is not a number.")
        text = numbers.written(number, notation()) if abs(number) < MAX_NUMBER else f"{number:.3e}"
    else:
        text = str(raw).strip()
        number = None
    if len(text) > 2000:
        return text[:50], None, Reason("TOO_LONG", f"{label}: at most 2000 characters, not {len(text)}.")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "", None, Reason("NOT_TEXT", f"{label}: the entry contains characters that are not text.")
    if kind == "number":
        if number is None:
            try:
                # Whole digits read alike in every notation: the configuration is not asked for them.
                number = numbers.read(text, notation() if numbers.needs_notation(text) else numbers.POINT)
            except NotANumber as exc:
                return text[:50], None, Reason("NOT_A_NUMBER", numbers.sentence(label, exc))
        if abs(number) >= MAX_NUMBER or number.as_tuple().exponent < -9:  # type: ignore[operator]
            return (
                text[:50],
                None,
                Reason(
                    "NOT_A_NUMBER",
                    f"{label}: {text[:50]} has more digits than a recorded value can hold "
                    "(19 before the decimal mark, 9 after).",
                ),
            )
        return text, number, None
    if kind == "choice" and text not in definition.get("choices", []):
        return (
            text,
            None,
            Reason("NOT_A_CHOICE", f"{label}: choose one of {', '.join(definition['choices'])}."),
        )
    if kind == "yes_no" and text.lower() not in ("yes", "no"):
        return text, None, Reason("NOT_YES_NO", f"{label}: answer yes or no.")
    return (text.lower() if kind == "yes_no" else text), None, None


def _implausible(
    definition: Mapping[str, Any], number: Decimal, ratio: Ratio, notation: Callable[[], Notation]
) -> Reason | None:
    """Why a number cannot be right (outside its plausibility limits), in the site's notation; or None."""
    limits, unit, label = number_limits(definition, ratio), definition.get("unit", ""), definition["label"]
    if judge(number, limits, unit=unit, label=label).verdict.allowed:
        return None  # the notation is read only to say why not
    return judge(number, limits, unit=unit, label=label, notation=notation()).verdict.reasons[0]


def _said(text: str, number: Decimal | None) -> str:
    """A value in a message: a number as the site writes it (read now, only for the message)."""
    return text if number is None else numbers.recorded(number, text, configuration.notation())[0]


def current_values(batch: Batch) -> dict[str, StepValue]:
    """The latest value of every name in the batch (a correction replaces its original here, not in the table)."""
    values: dict[str, StepValue] = {}
    corrected = set(
        StepValue.objects.filter(step__batch=batch, corrects__isnull=False).values_list(
            "corrects_id", flat=True
        )
    )
    for v in StepValue.objects.filter(step__batch=batch).order_by("entered_at", "id"):
        if v.pk not in corrected:
            values[v.name] = v
    return values


def _write_value(
    step: BatchStep,
    *,
    actor: Actor,
    definition: Mapping[str, Any],
    source: str,
    text: str,
    number: Decimal | None,
    factor: Ratio,
    corrects: StepValue | None = None,
    reason: str = "",
) -> StepValue:
    in_spec = within_action = None
    if number is not None:
        judged = judge(
            number,
            number_limits(definition, factor),
            unit=definition.get("unit", ""),
            label=definition["label"],
        )
        in_spec, within_action = judged.in_specification, judged.within_action
    value = record_create(
        StepValue(
            step=step,
            name=definition["name"],
            label=definition["label"],
            source=source,
            text=text,
            number=number,
            unit=definition.get("unit", ""),
            in_specification=in_spec,
            within_action=within_action,
            critical=bool(definition.get("critical")),
            entered_by_id=_person(actor),
            entered_at=timezone.now(),
            station=actor.station,
            corrects=corrects,
            reason=reason,
        ),
        actor=actor,
        reason=reason,
        action="correct" if corrects else "record",
    )
    if in_spec is False:
        spec = number_limits(definition, factor).specification.text(
            definition.get("unit", ""), configuration.notation()
        )
        raising.exception_raise(
            step.batch,
            actor=actor,
            # A critical process parameter or quality attribute stops the batch (rules/exceptions.py).
            code="CRITICAL_OUT_OF_SPECIFICATION" if definition.get("critical") else "OUT_OF_SPECIFICATION",
            message=f"{definition['label']} {_said(text, number)} {definition.get('unit', '')} is outside its "
            f"specification {spec}.",
            step=step,
            value=value,
        )
    elif within_action is False and (definition.get("action") or {}):
        raising.exception_raise(
            step.batch,
            actor=actor,
            code="ACTION_LIMIT",
            severity=Severity.LOW,
            message=f"{definition['label']} {_said(text, number)} {definition.get('unit', '')} is outside its "
            "action limits.",
            step=step,
            value=value,
        )
    return value


def _calculate(
    batch: Batch,
    step: BatchStep,
    definition: Mapping[str, Any],
    *,
    actor: Actor,
    values: dict[str, StepValue],
    reason: str = "",
) -> StepValue:
    numbers = {name: v.number for name, v in values.items() if v.number is not None}
    try:
        result = parse_formula(definition["formula"]).evaluate(numbers)
        result = result.quantize(Decimal(1).scaleb(-int(definition.get("decimals", 2))))
        if not result.is_finite() or abs(result) >= MAX_NUMBER:
            raise FormulaError("the result is too large to record")
    except (FormulaError, InvalidOperation, ArithmeticError) as exc:
        raise _refuse("CALCULATION_FAILED", f"{definition['label']} cannot be calculated: {exc}.") from exc
    return _write_value(
        step,
        actor=actor,
        definition=definition,
        source="calculated",
        text=str(result),
        number=result,
        factor=batch.ratio,
        corrects=values.get(definition["name"]),
        reason=reason,
    )


@registered_station_only
@_records_refusal
def step_complete(
    *,
    actor: Actor,
    user: Any,
    batch: Batch,
    step_key: str,
    entries: Mapping[str, str | Decimal | int] | None = None,
    checklist: list[bool] | None = None,
    signer: VerifiedSigner | None = None,
    confirm_out_of_specification: bool = False,
) -> BatchStep:
    """Record the step's values, run its calculations, sign, and complete it (or hand it to a verifier).

    Implausible values and a missing signature refuse the whole step and write
    nothing but the refusal; values outside specification are recorded and
    raise exceptions, once ``confirm_out_of_specification`` says the person
    confirmed them (otherwise :class:`prompts.ConfirmationRequired`, nothing
    written and nothing recorded: a question, not a refusal).
    """
    entries = dict(entries or {})
    with transaction.atomic():
        snap = _snapshot(batch.pk, step_key, user=user, finishes=True)
        step = _step(snap, step_key)
        definition = step.definition()
        now = timezone.now()
        reasons: list[Reason] = [blocked] if (blocked := raising.blocked_reason(snap.batch)) else []
        parsed: list[tuple[Mapping[str, Any], str, Decimal | None]] = []
        missing = []
        # Read once, and only when a typed number needs it (a prompt completion costs no statement).
        notation = functools.cache(configuration.notation)
        for inp in definition.get("inputs", []):
            raw = entries.get(inp["name"], "")
            if isinstance(raw, str) and not raw.strip():
                if inp.get("required", True):
                    missing.append(inp["label"])
                continue
            text, number, problem = _parse_entry(inp, raw, notation)
            if problem is None and number is not None:
                problem = _implausible(inp, number, snap.batch.ratio, notation)
            if problem:
                reasons.append(problem)
            parsed.append((inp, text, number))
        items = definition.get("checklist", [])
        if items and (checklist is None or len(checklist) != len(items) or not all(checklist)):
            reasons.append(Reason("CHECKLIST_OPEN", "Confirm every item of the checklist."))
        if signer is not None and signer.user.pk != actor.id:
            reasons.append(Reason("SIGNER_IS_NOT_PERFORMER", "The person completing the step signs it."))
        reasons += charging.completion_reasons(step, snap.batch.ratio)
        reasons += identify.completion_reasons(step)
        reasons += dispensing.completion_reasons(step)
        reasons += monitoring.completion_reasons(step)
        if step.kind in steprecords.KINDS:
            step.batch = snap.batch
            reasons += sampling.completion_reasons(step)
            reasons += producing.completion_reasons(step)
            reasons += labelling.completion_reasons(step)
        verdict = gates.may_complete(
            snap.views[step_key],
            _gate_actor(actor, snap),
            batch_state=snap.batch.state,
            now=now,
            missing_inputs=missing,
            signed=signer is not None,
        )
        verdict = Verdict((*verdict.reasons, *reasons))
        if not verdict.allowed:
            raise ExecutionRefused(verdict)
        if not confirm_out_of_specification:  # asked last: only once nothing else stands in the way
            unconfirmed = prompts.out_of_specification(parsed, snap.batch.ratio)
            if not unconfirmed.allowed:
                raise prompts.ConfirmationRequired(unconfirmed)

        # Each change's entry is made as it happens and all are appended, chained in that
        # order, in one call at the end of the block: one round trip instead of one per record.
        with audit_together():
            for inp, text, number in parsed:
                _write_value(
                    step,
                    actor=actor,
                    definition=inp,
                    source="entered",
                    text=text,
                    number=number,
                    factor=snap.batch.ratio,
                )
            measured = _write_measured(step, definition, actor=actor, factor=snap.batch.ratio, now=now)
            if definition.get("calculations"):
                values = current_values(snap.batch)
                for calc in definition["calculations"]:
                    values[calc["name"]] = _calculate(snap.batch, step, calc, actor=actor, values=values)
            over = gates.overran(snap.views[step_key], now=now)
            late = (
                (now - step.started_at).total_seconds() / 60
                if step.started_at and parsed and over is None
                else 0
            )
            # The configuration is read only for an entry that may be late: its limit is 1 minute at
            # the least (configuration/definitions.py), so a prompt entry costs no statement.
            late_entry_minutes = configuration.current().late_entry_minutes if late > 1 else 0
            if late > 1 and late > late_entry_minutes:
                raising.exception_raise(
                    snap.batch,
                    actor=actor,
                    code="LATE_ENTRY",
                    severity=Severity.LOW,
                    step=step,
                    message=f"Values of “{step.title}” entered {int(late)} min after the step started "
                    f"(more than {late_entry_minutes} min): a late entry.",
                )
            if over is not None and not (measured is not None and measured.in_specification is not None):
                # A duration the step records and judges against its specification raises its own
                # exception when outside it: the same fact is not reported twice.
                raising.exception_raise(
                    snap.batch,
                    actor=actor,
                    code="DURATION_EXCEEDED",
                    severity=Severity.MEDIUM,
                    step=step,
                    message=f"“{step.title}” ran {int(over // 60)} min {int(over % 60)} s longer than its maximum.",
                )
            if "yield" in definition:
                step.batch = snap.batch
                yields.judge_step(step, actor=actor)
            needs_verifier = definition.get("verify") or definition.get("kind") == "verification"
            target = StepState.AWAITING_VERIFICATION if needs_verifier else StepState.DONE
            if definition.get("monitors"):
                monitoring.trends_freeze(actor=actor, step=step, now=now)
            record_update(
                step,
                actor=actor,
                values={"state": target, "completed_at": now, "completed_by_id": actor.id},
                action="complete",
            )
            if signer is not None:
                signature_apply(
                    signer=signer,
                    meaning=Meaning.PERFORMED,
                    record=step,
                    content=step_content(step),
                    actor=actor,
                )
            if target == StepState.DONE:  # a step waiting for its verifier leaves the batch open anyway
                _maybe_complete_batch(snap, actor=actor)
        # After the block that appends its entries together: releasing equipment opens savepoints.
        if snap.batch.state == BatchState.COMPLETE:
            identify.release_all(snap.batch, actor=actor)
        return step


def step_open(actor: Actor, user: Any, batch: Batch, step_key: str) -> tuple[_Snapshot, BatchStep]:
    """Lock the batch, read the step, and refuse early what no action on a running step may do now:
    the batch not on the floor, a blocking exception waiting, the person without the step's role.
    For the actions inside a step (a scan, a weighing, a sample, output, labels)."""
    snap = _snapshot(batch.pk, step_key, user=user)
    step = _step(snap, step_key)
    step.batch = snap.batch
    early = Verdict.of(
        gates.batch_reason(snap.batch.state),
        raising.blocked_reason(snap.batch),
        gates.role_reason(snap.views[step_key], _gate_actor(actor, snap)),
    )
    if not early.allowed:
        raise ExecutionRefused(early)
    return snap, step


@registered_station_only
@_records_refusal
def step_scan(*, actor: Actor, user: Any, batch: Batch, step_key: str, scan: str) -> StepValue:
    """A label scanned on a running step: a container on a material charge, a unit on an equipment step.

    Judged at the server's time under the batch lock; refused (nothing consumed
    or claimed, the refusal recorded for QA) when the material, lot, stock,
    equipment state, hold time or calibration is wrong. The entries of an
    accepted scan are appended together at the end: the audit chain's lock,
    which every writer in the plant takes, is held for that append and the
    commit only, not for the whole scan.
    """
    with transaction.atomic(), audit_together():
        snap, step = step_open(actor, user, batch, step_key)
        scanner = identify.scan_equipment if step.kind == "equipment_id" else charging.scan_charge
        try:
            verdict, value = scanner(
                actor=actor, snap_batch=snap.batch, step=step, scan=scan, person=_person(actor)
            )
        except Refused as refused:  # unknown container, a unit that does not convert: same path
            raise ExecutionRefused(refused.verdict) from refused
        if not verdict.allowed or value is None:
            raise ExecutionRefused(verdict)
        return value


@registered_station_only
@_records_refusal
def step_dispense(
    *,
    actor: Actor,
    user: Any,
    batch: Batch,
    step_key: str,
    source: str,
    scale: str,
    manual_weight: str | None = None,
    manual_unit: str = "",
    reason: str = "",
    witness: VerifiedSigner | None = None,
    other_lot_reason: str = "",
) -> StepValue:
    """Weigh material out of the scanned container on the chosen scale (or by hand, with a witness).

    The scale is read first, outside every lock; the reading is judged and
    recorded under the batch's lock. Refused (nothing weighed out, the
    refusal recorded for QA) on any failing gate, an unstable reading, a
    weight outside tolerance or a scale that does not answer.
    """
    if manual_weight is None:
        # Before the scale is asked anything: a reading from a scale the station may not use is no entry.
        elsewhere = stations.instrument_reason(actor, scale)
        if elsewhere is not None:
            raise ExecutionRefused(Verdict.of(elsewhere))
        read, problem = dispensing.read_scale(scale)
        if read is None:
            raise ExecutionRefused(Verdict.of(problem))
        weighing = dataclasses.replace(read, other_lot_reason=other_lot_reason)
    else:
        try:  # read in the site's notation; refused like any entry that is no number
            net = (
                charging.stock.quantity_of(manual_weight, what="weight")
                if manual_weight.strip()
                else Decimal(0)
            )
        except charging.stock.MaterialRefused as exc:
            raise ExecutionRefused(exc.verdict) from exc
        weighing = dispensing.Weighing(
            net=net,
            unit=manual_unit,
            tare=None,
            device="manual",
            manual_reason=reason,
            witness=witness,
            other_lot_reason=other_lot_reason,
            typed=manual_weight,
        )
    with (
        transaction.atomic(),
        audit_together(),
    ):  # as step_scan: the chain lock for the append and commit only
        snap, step = step_open(actor, user, batch, step_key)
        try:
            verdict, value = dispensing.dispense(
                actor=actor,
                batch=snap.batch,
                step=step,
                source=source,
                scale=scale,
                weighing=weighing,
                person=_person(actor),
            )
        except Refused as refused:
            raise ExecutionRefused(refused.verdict) from refused
        if not verdict.allowed or value is None:
            raise ExecutionRefused(verdict)
        if weighing.device == "manual":
            raising.exception_raise(
                snap.batch,
                actor=actor,
                code="MANUAL_WEIGHT_ENTRY",
                step=step,
                value=value,
                material=source,
                message=f"Weight typed by hand for “{step.title}”: {value.text} {value.unit}. Reason: {reason}",
            )
        return value


def step_content(step: BatchStep) -> dict[str, Any]:
    """What a step signature binds to: the step, every value recorded on it (corrections included) and
    the records of its own (samples, output, labels: ``steprecords``), as ``rules.bindings`` reads them."""
    values = [
        {"id": pk, "name": name, "text": text, "unit": unit, "corrects": corrects}
        for pk, name, text, unit, corrects in step.values.order_by("id").values_list(
            "id", "name", "text", "unit", "corrects_id"
        )
    ]
    records = steprecords.step_records(step) if step.kind in steprecords.KINDS else []
    return bindings.step_content(step.batch.number, step.key, values, records)


def _write_measured(
    step: BatchStep, definition: Mapping[str, Any], *, actor: Actor, factor: Ratio, now: Any
) -> StepValue | None:
    """What the system measured on completion: a timer's duration by the server's clock (start to
    now), a produce step's total from its containers; recorded as named values, judged like any."""
    record = (definition.get("timer") or {}).get("record")
    if record and step.started_at is not None:
        minutes = Decimal((now - step.started_at).total_seconds()) / 60
        duration = convert(minutes, "min", record.get("unit", "min"))
        duration = duration.quantize(Decimal(1).scaleb(-int(record.get("decimals", 1))))
        return _write_value(
            step,
            actor=actor,
            definition=record,
            source="measured",
            text=str(duration),
            number=duration,
            factor=factor,
        )
    produce = definition.get("produce")
    if produce:
        made = producing.total(step)
        return _write_value(
            step,
            actor=actor,
            definition=produce,
            source="calculated",
            text=plain(made),
            number=made,
            factor=factor,
        )
    return None


@registered_station_only
@_records_refusal
def step_verify(*, actor: Actor, user: Any, batch: Batch, step_key: str, signer: VerifiedSigner) -> BatchStep:
    """A different person verifies a completed step with their signature (DV-01)."""
    with transaction.atomic():
        snap = _snapshot(batch.pk, step_key, user=user, finishes=True)
        step = _step(snap, step_key)
        verdict = gates.may_verify(
            snap.views[step_key], _gate_actor(actor, snap, user), batch_state=snap.batch.state
        )
        if signer.user.pk != actor.id:
            verdict = Verdict((*verdict.reasons, Reason("SIGNER_IS_NOT_VERIFIER", "The verifier signs.")))
        if not verdict.allowed:
            raise ExecutionRefused(verdict)
        now = timezone.now()
        record_update(
            step,
            actor=actor,
            values={"state": StepState.DONE, "verified_at": now, "verified_by_id": actor.id},
            action="verify",
        )
        signature_apply(
            signer=signer, meaning=Meaning.VERIFIED, record=step, content=step_content(step), actor=actor
        )
        _maybe_complete_batch(snap, actor=actor)
        if snap.batch.state == BatchState.COMPLETE:
            identify.release_all(snap.batch, actor=actor)
        return step


@registered_station_only
@_records_refusal
def value_correct(
    *,
    actor: Actor,
    user: Any,
    batch: Batch,
    step_key: str,
    name: str,
    text: str,
    reason: str,
    signer: VerifiedSigner,
    confirm_out_of_specification: bool = False,
) -> StepValue:
    """Correct a recorded value: a new entry that points at the original, with reason and signature (DI-05).

    A correction to a value outside its specification is recorded only once confirmed, as
    at completion (:mod:`prompts`).

    The original stays; calculations that used the value are recalculated as
    corrections of their own. A step that was verified goes back to waiting
    for verification: what the verifier saw has changed. Raises an exception
    for review; a refused correction is recorded like any refused action.
    """
    if not reason.strip():
        raise ReasonRequired("Say why the value is corrected.")
    with transaction.atomic():
        snap = _snapshot(batch.pk, user=user)
        step = _step(snap, step_key)
        reasons = []
        if snap.batch.state not in gates.BATCH_ACCEPTS_WORK:
            reasons.append(
                Reason(
                    "BATCH_NOT_ACTIVE",
                    f"The batch is {states.LABELS[snap.batch.state]}: values can no longer be corrected.",
                )
            )
        missing_role = gates.role_reason(snap.views[step_key], _gate_actor(actor, snap))
        if missing_role:
            reasons.append(missing_role)
        if signer.user.pk != actor.id:
            reasons.append(
                Reason("SIGNER_IS_NOT_CORRECTOR", "The person correcting the value signs the correction.")
            )
        definition = next((i for i in step.definition().get("inputs", []) if i["name"] == name), None)
        values = current_values(snap.batch)
        original = values.get(name)
        if definition is None or original is None or original.step_id != step.pk:
            reasons.append(
                Reason("NO_SUCH_VALUE", f"Step “{step.title}” has no recorded value {name!r} to correct.")
            )
        if reasons:
            raise ExecutionRefused(Verdict(tuple(reasons)))
        assert definition is not None and original is not None
        new_text, number, problem = _parse_entry(definition, text, configuration.notation)
        if problem is None and number is not None:
            problem = _implausible(definition, number, snap.batch.ratio, configuration.notation)
        if problem is not None:
            raise ExecutionRefused(Verdict.of(problem))
        if not confirm_out_of_specification:
            unconfirmed = prompts.out_of_specification([(definition, new_text, number)], snap.batch.ratio)
            if not unconfirmed.allowed:
                raise prompts.ConfirmationRequired(unconfirmed)
        corrected = _write_value(
            step,
            actor=actor,
            definition=definition,
            source="entered",
            text=new_text,
            number=number,
            factor=snap.batch.ratio,
            corrects=original,
            reason=reason,
        )
        values[name] = corrected
        raising.exception_raise(
            snap.batch,
            actor=actor,
            code="CORRECTION",
            severity=Severity.MEDIUM,
            step=step,
            value=corrected,
            message=f"{definition['label']} corrected from {_said(original.text, original.number)} to "
            f"{_said(new_text, number)}: {reason}",
        )
        _recalculate(
            snap, values, actor=actor, changed=name, reason=f"recalculated: {definition['label']} corrected"
        )
        for affected in {step.key} | _steps_using(snap, name):
            s = snap.steps[affected]
            if "yield" in s.spec:  # the operation's output changed: its yield is judged again
                s.batch = snap.batch
                yields.judge_step(s, actor=actor)
            if s.state == StepState.DONE and s.verified_at is not None:
                record_update(
                    s,
                    actor=actor,
                    values={
                        "state": StepState.AWAITING_VERIFICATION,
                        "verified_at": None,
                        "verified_by_id": None,
                    },
                    action="verification_void",
                    reason=f"{definition['label']} corrected after verification",
                )
                raising.exception_raise(
                    snap.batch,
                    actor=actor,
                    code="VERIFICATION_VOID",
                    severity=Severity.MEDIUM,
                    step=s,
                    message=f"“{s.title}” must be verified again: {definition['label']} was corrected after its verification.",
                )
        signature_apply(
            signer=signer,
            meaning=Meaning.PERFORMED,
            record=corrected,
            content={
                "value": corrected.pk,
                "name": name,
                "text": new_text,
                "corrects": original.pk,
                "reason": reason,
            },
            actor=actor,
            comment=reason,
        )
        return corrected


def _steps_using(snap: _Snapshot, name: str) -> set[str]:
    """Steps whose calculations use ``name``, directly or through another calculation."""
    used, changed = set(), {name}
    for key in graph.topological_order(snap.preds):
        for calc in snap.steps[key].definition().get("calculations", []):
            if parse_formula(calc["formula"]).names & changed:
                used.add(key)
                changed.add(calc["name"])
    return used


def _recalculate(
    snap: _Snapshot, values: dict[str, StepValue], *, actor: Actor, changed: str, reason: str
) -> None:
    changed_names = {changed}
    order = graph.topological_order(snap.preds)
    for key in order:
        step = snap.steps[key]
        if step.state == StepState.PENDING:
            continue
        for calc in step.definition().get("calculations", []):
            uses = parse_formula(calc["formula"]).names
            if uses & changed_names and calc["name"] in values:
                values[calc["name"]] = _calculate(
                    snap.batch, step, calc, actor=actor, values=values, reason=reason
                )
                changed_names.add(calc["name"])


def _maybe_complete_batch(snap: _Snapshot, *, actor: Actor) -> None:
    """Complete the batch when the step just done was its last open one (read with the snapshot)."""
    batch = snap.batch
    others_open = rows.open_steps_remain(batch) if snap.others_open is None else snap.others_open
    if batch.state == BatchState.RUNNING and not others_open:
        record_update(batch, actor=actor, values={"state": BatchState.COMPLETE}, action="complete")
        yields.judge_batch(batch, actor=actor)
        events.publish("batch.completed", batch=batch.number)
