"""Batch commands: create a batch from an effective recipe, record its output, release, hold, resume
or abort it (S88-05)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from batchline.audit.models import AuditEntry
from batchline.audit.services import (
    Actor,
    ReasonRequired,
    record_create,
    record_update,
)
from batchline.configuration import selectors as configuration
from batchline.materials import services as stock
from batchline.materials.models import Container
from batchline.materials.selectors import output_lot
from batchline.outbox import events
from batchline.recipes.document import from_canonical
from batchline.recipes.models import MasterRecipe, RecipeStatus
from batchline.rules import graph, numbers, states
from batchline.rules.numbers import NotANumber
from batchline.signatures.services import VerifiedSigner, signature_apply

from . import (
    identify,
    raising,
    rows,
)
from .models import Batch, BatchState, BatchStep, Severity
from .refusals import ExecutionRefused, person_of, refuse

VERIFY_PERMISSION = "signatures.sign_verified"
BATCH_NUMBER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,39}")


def batch_create(
    *, actor: Actor, recipe: MasterRecipe, number: str, planned_quantity: Decimal | str
) -> Batch:
    """A process order from an effective recipe, with its control recipe frozen into it.

    A planned quantity given as text is read in the site's notation (``rules.numbers``).
    """
    person = person_of(actor)
    number = number.strip()
    if not number:
        raise refuse("NUMBER_REQUIRED", "A batch needs a batch number.")
    if isinstance(planned_quantity, str):
        try:
            planned_quantity = numbers.read(planned_quantity, configuration.notation())
        except NotANumber as exc:
            raise refuse("QUANTITY", numbers.sentence("Planned quantity", exc)) from None
    if not planned_quantity.is_finite() or planned_quantity <= 0:
        raise refuse("QUANTITY", "The planned quantity must be a number more than zero.")
    # The size first: quantizing 1E+400 to six decimals is itself an error.
    if planned_quantity >= Decimal("1e12") or planned_quantity != planned_quantity.quantize(
        Decimal("0.000001")
    ):
        raise refuse(
            "QUANTITY", "The planned quantity has at most 12 digits before and 6 after the decimal mark."
        )
    if not BATCH_NUMBER.fullmatch(number):
        raise refuse(
            "NUMBER_FORMAT",
            "A batch number is letters, digits, '.', '_' and '-' (up to 40), starting with a letter or digit.",
        )
    with transaction.atomic():
        recipe = MasterRecipe.objects.select_for_update().get(pk=recipe.pk)
        if recipe.status != RecipeStatus.EFFECTIVE:
            raise refuse(
                "RECIPE_NOT_EFFECTIVE",
                f"{recipe.code} version {recipe.version} is {recipe.get_status_display().lower()}: "
                "only an effective recipe can be used for a batch.",
            )
        if recipe.product.retired_at is not None:
            raise refuse(
                "PRODUCT_RETIRED",
                f"{recipe.product.code} {recipe.product.name} is retired in the master data: no new batch is made of it.",
            )
        if Batch.objects.filter(number=number).exists():
            raise refuse("NUMBER_TAKEN", f"Batch number {number} is already used.")
        ratio = planned_quantity / recipe.nominal_quantity
        if not Decimal("0.000001") <= ratio <= Decimal("1000000"):
            raise refuse(
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
            raise refuse("NUMBER_TAKEN", f"Batch number {number} is already used.") from exc
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
    person_of(actor)
    with transaction.atomic():
        locked = rows.lock_batch(batch.pk)
        if locked is None:
            raise Batch.DoesNotExist(f"no batch #{batch.pk}")
        if locked.state != BatchState.RUNNING:
            raise refuse(
                "BATCH_NOT_RUNNING",
                f"Batch {locked.number} is {states.LABELS[locked.state]}: output is recorded while it runs.",
            )
        lot = output_lot(locked.number)
        if lot is None:
            raise refuse("NO_OUTPUT_LOT", f"Batch {locked.number} has no output lot to produce into.")
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
            raise refuse("NOT_BY_HAND", f"'{command}' happens by itself when the steps run.")
        if signer is None or signer.user.pk != actor.id:
            raise refuse("SIGNATURE_REQUIRED", f"To {command} a batch, sign with your user ID and password.")
        if not signer.user.has_perm("execution.control_batch"):
            raise refuse("NOT_AUTHORISED", f"Your roles do not allow you to {command} a batch.")
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
