"""Reads for the floor list, the execution screen, the batch record and the API.

The queries of a screen do not grow with the number of steps: a batch's
steps, values, signatures and exceptions are each read in one query and put
together here (a test pins the count for 10 and 500 steps).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import QuerySet

from batchline.audit.models import AuditChain, AuditEntry
from batchline.configuration import selectors as configuration
from batchline.recipes.document import monitor_limits
from batchline.rules import gates, numbers
from batchline.rules.numbers import Notation
from batchline.signatures.models import Signature

from . import instruments, monitoring
from .models import Batch, BatchException, BatchState, BatchStep, ProcessAlarm, StepState, StepValue
from .scaling import Ratio, limits_text, target_text

ACTIVE_STATES = (BatchState.CREATED, BatchState.RELEASED, BatchState.RUNNING, BatchState.HELD)


def floor_batches() -> QuerySet[Batch]:
    return Batch.objects.filter(state__in=ACTIVE_STATES).select_related("recipe").order_by("-created_at")


def batches_awaiting_review() -> QuerySet[Batch]:
    """Finished on the floor, not yet released or rejected: the floor links them to their review."""
    return (
        Batch.objects.filter(state__in=(BatchState.COMPLETE, BatchState.IN_REVIEW))
        .select_related("recipe")
        .order_by("-created_at")
    )


def batch_version(number: str) -> tuple[int, int] | None:
    """The batch's id and where the audit trail stands, in one statement; None if no batch.

    A rendering of the execution screen cached under this pair cannot go stale:
    every write of GMP data appends an audit entry in its own transaction
    (DESIGN invariant 1), so any committed change to what the screen shows
    (the batch, its steps, values, signatures, exceptions, the recipe, a
    person's printed name) moves the trail on. On SQLite entry ids grow in
    commit order; on PostgreSQL entries go to parallel chains and ids are not
    in commit order, so the sum of the chains' committed heads is the measure
    (``audit/chain.py``). Read it before the data: what is then read is at
    least as new as the version it is filed under.
    """
    with connection.cursor() as cursor:
        cursor.execute(_VERSION_SQL[connection.vendor], [number])
        row = cursor.fetchone()
    return (row[0], int(row[1] or 0)) if row else None


# ORDER BY ... LIMIT 1 rather than MAX(): the same index scan, and PostgreSQL plans
# it in a seventh of the time (docs/performance.md).
_VERSION_SQL = {
    "sqlite": (
        f"SELECT b.id, (SELECT a.id FROM {AuditEntry._meta.db_table} a ORDER BY a.id DESC LIMIT 1) "  # noqa: S608
        f"FROM {Batch._meta.db_table} b WHERE b.number = %s"
    ),
    "postgresql": (
        f"SELECT b.id, (SELECT SUM(c.seq) FROM {AuditChain._meta.db_table} c) "  # noqa: S608
        f"FROM {Batch._meta.db_table} b WHERE b.number = %s"
    ),
}


def batch_by_number(number: str) -> Batch:
    # The frozen document stays unread: each step row carries its own part.
    return (
        Batch.objects.select_related("recipe", "created_by")
        .defer("control_recipe", "recipe__document")
        .get(number=number)
    )


@dataclass
class ValueRow:
    value: StepValue
    corrections: list[StepValue] = field(default_factory=list)  # newer entries that replaced it, in order
    specification: str = ""  # its limits as a person reads them, where it has any

    @property
    def current(self) -> StepValue:
        return self.corrections[-1] if self.corrections else self.value


@dataclass
class InputView:
    definition: dict[str, Any]
    row: ValueRow | None
    plausible: str
    specification: str
    target: str


@dataclass
class StepScreen:
    step: BatchStep
    definition: dict[str, Any]
    rows: list[ValueRow]
    inputs: list[InputView]
    signatures: list[Signature]
    exceptions: list[BatchException]
    predecessors: list[str]

    @property
    def state_label(self) -> str:
        return gates.STEP_STATE_LABELS[self.step.state]

    @property
    def alarms(self) -> list[ProcessAlarm]:
        """What the judges of its process values said (execution/monitoring.py), oldest first."""
        if not self.definition.get("monitors"):
            return []
        return list(ProcessAlarm.objects.filter(step=self.step).select_related("acknowledged_by"))

    @property
    def monitors(self) -> list[dict[str, Any]]:
        """Its process values from the machine as the screen shows them: limits in words, and the unit
        they are read from (the one its equipment step identified, else that step's title)."""
        out = []
        notation = configuration.notation()
        for m in self.definition.get("monitors") or []:
            limits = monitor_limits(m)
            out.append(
                {
                    **m,
                    "specification_text": limits.specification.text(m["unit"], notation)
                    if m.get("specification")
                    else "",
                    "action_text": limits.action.text(m["unit"], notation) if m.get("action") else "",
                    "read_from": monitoring.unit_of(self.step, m["equipment"]),
                }
            )
        return out

    @property
    def typed_inputs(self) -> list[InputView]:
        """The inputs a person types at completion (an input read from a machine is taken instead)."""
        return [i for i in self.inputs if not i.definition.get("device")]

    @property
    def readings_open(self) -> list[InputView]:
        """The inputs read from a machine that have no value yet (execution/instruments.py)."""
        return [i for i in self.inputs if i.definition.get("device") and not i.row]

    @property
    def corrects_readings(self) -> bool:
        """Whether a value it can correct was read from a machine: its correction needs a second person."""
        return any(i.definition.get("device") for i in self.correctable)

    @property
    def correctable(self) -> list[InputView]:
        """The entered values a correction can replace (a scan or a weighing is not typed again)."""
        return [i for i in self.inputs if i.row]

    @property
    def timer(self) -> tuple[int | None, int | None] | None:
        """The step's shortest and longest duration in seconds, if it is timed."""
        timer = self.definition.get("timer") or {}
        if not timer.get("min_minutes") and not timer.get("max_minutes"):
            return None
        return tuple(  # type: ignore[return-value]
            int(Decimal(str(timer[k])) * 60) if timer.get(k) else None for k in ("min_minutes", "max_minutes")
        )


@dataclass
class BatchScreen:
    batch: Batch
    steps: list[StepScreen]
    exceptions: list[BatchException]
    batch_signatures: list[Signature]

    def step(self, key: str | None) -> StepScreen | None:
        return next((s for s in self.steps if s.step.key == key), None)

    def current(self) -> StepScreen | None:
        """The step to show: one in progress, else one waiting for verification, else the next to start."""
        for wanted in (StepState.RUNNING, StepState.AWAITING_VERIFICATION):
            for s in self.steps:
                if s.step.state == wanted:
                    return s
        done = {s.step.key for s in self.steps if s.step.state == StepState.DONE}
        for s in self.steps:
            if s.step.state == StepState.PENDING and all(p in done for p in s.predecessors):
                return s
        return None

    @property
    def done_count(self) -> int:
        return sum(1 for s in self.steps if s.step.state == StepState.DONE)

    @property
    def running(self) -> list[StepScreen]:
        return [s for s in self.steps if s.step.state == StepState.RUNNING]

    @property
    def ready(self) -> list[StepScreen]:
        """Steps not started whose predecessors are all complete: they can start now."""
        done = {s.step.key for s in self.steps if s.step.state == StepState.DONE}
        return [
            s
            for s in self.steps
            if s.step.state == StepState.PENDING and all(p in done for p in s.predecessors)
        ]

    @property
    def last_done(self) -> StepScreen | None:
        """The step completed last (verified, or completed without a verifier), if any."""
        done = [s for s in self.steps if s.step.state == StepState.DONE]
        return max(done, key=lambda s: (s.step.verified_at or s.step.completed_at, s.step.seq), default=None)


def batch_screen(batch: Batch, notation: Notation | None = None) -> BatchScreen:
    """Everything the execution screen and the batch record show, in five queries (and the site's
    notation, unless the caller has read it)."""
    steps = list(
        BatchStep.objects.filter(batch=batch).select_related("started_by", "completed_by", "verified_by")
    )
    values = list(
        StepValue.objects.filter(step__batch=batch).select_related("entered_by").order_by("entered_at", "id")
    )
    step_ids = [str(s.pk) for s in steps]
    value_ids = [str(v.pk) for v in values]
    signatures = list(
        Signature.objects.filter(record_type="execution.batchstep", record_id__in=step_ids)
        | Signature.objects.filter(record_type="execution.stepvalue", record_id__in=value_ids)
        | Signature.objects.filter(record_type="execution.batch", record_id=str(batch.pk))
    )
    exceptions = list(
        BatchException.objects.filter(batch=batch).select_related("user", "step").order_by("at", "id")
    )

    definitions = {s.key: s.spec for s in steps}
    preds = {s.key: list(s.predecessors) for s in steps}

    rows_by_step: dict[int, list[ValueRow]] = defaultdict(list)
    row_of: dict[int, ValueRow] = {}
    for v in values:
        if v.corrects_id and v.corrects_id in row_of:
            row = row_of[v.corrects_id]
            row.corrections.append(v)
            row_of[v.pk] = row
        else:
            row = ValueRow(v)
            row_of[v.pk] = row
            rows_by_step[v.step_id].append(row)
    sigs_by_step: dict[str, list[Signature]] = defaultdict(list)
    value_step = {str(v.pk): v.step_id for v in values}
    batch_sigs = []
    for sig in signatures:
        if sig.record_type == "execution.batchstep":
            sigs_by_step[sig.record_id].append(sig)
        elif sig.record_type == "execution.stepvalue":
            sigs_by_step[str(value_step[sig.record_id])].append(sig)
        else:
            batch_sigs.append(sig)
    exc_by_step: dict[int | None, list[BatchException]] = defaultdict(list)
    for e in exceptions:
        exc_by_step[e.step_id].append(e)

    screens = []
    notation = notation or configuration.notation()
    for step in steps:
        d = definitions[step.key]
        rows = rows_by_step.get(step.pk, [])
        by_name = {r.value.name: r for r in rows}
        inputs = [_input_view(i, by_name.get(i["name"]), batch.ratio, notation) for i in d.get("inputs", [])]
        screens.append(
            StepScreen(
                step=step,
                definition=d,
                rows=rows,
                inputs=inputs,
                signatures=sorted(sigs_by_step.get(str(step.pk), []), key=lambda s: (s.signed_at, s.pk)),
                exceptions=exc_by_step.get(step.pk, []),
                predecessors=preds[step.key],
            )
        )
    return BatchScreen(batch=batch, steps=screens, exceptions=exceptions, batch_signatures=batch_sigs)


def _person(u: Any) -> dict[str, Any] | None:
    return {"username": u.username, "name": u.printed_name} if u else None


def value_record(v: StepValue, reading: dict[str, Any] | None) -> dict[str, Any]:
    """A recorded value as the record gives it: ``reading`` is where a value read from a machine came
    from (``instruments.readings_of``), None for any other source (a value typed in its place is
    ``manual``)."""
    return {
        "id": v.pk,
        "name": v.name,
        "label": v.label,
        "text": v.text,
        # The number judged and recorded, exact ("0.5013"); ``text`` is how it was typed.
        "number": None if v.number is None else numbers.shown(v.number),
        "unit": v.unit,
        "source": v.source,
        "in_specification": v.in_specification,
        "entered_by": _person(v.entered_by),
        "entered_at": v.entered_at.isoformat(),
        "station": v.station,
        "corrects": v.corrects_id,
        "reason": v.reason,
        "reading": reading,
    }


def batch_record(batch: Batch) -> dict[str, Any]:
    """The electronic batch record as JSON-ready data (API and exports)."""
    screen = batch_screen(batch)
    recorded = [v for s in screen.steps for r in s.rows for v in [r.value, *r.corrections]]
    readings = instruments.readings_of(v.pk for v in recorded if v.source == "device")

    def sig(s: Signature) -> dict[str, Any]:
        return {
            "id": s.pk,
            "meaning": s.meaning,
            "signer": s.signer_username,
            "printed_name": s.signer_name,
            "signed_at": s.signed_at.isoformat(),
            "manifestation": s.manifestation(),
            "comment": s.comment,
        }

    return {
        "batch": batch.number,
        "state": batch.state,
        "recipe": {"code": batch.recipe.code, "version": batch.recipe.version, "name": batch.recipe.name},
        "planned_quantity": str(batch.planned_quantity),
        "unit": batch.unit,
        "signatures": [sig(s) for s in screen.batch_signatures],
        "steps": [
            {
                "key": s.step.key,
                "operation": s.step.operation,
                "title": s.step.title,
                "state": s.step.state,
                "started_at": s.step.started_at.isoformat() if s.step.started_at else None,
                "started_by": _person(s.step.started_by),
                "completed_at": s.step.completed_at.isoformat() if s.step.completed_at else None,
                "completed_by": _person(s.step.completed_by),
                "verified_by": _person(s.step.verified_by),
                "values": [
                    value_record(v, readings.get(v.pk)) for r in s.rows for v in [r.value, *r.corrections]
                ],
                "signatures": [sig(x) for x in s.signatures],
            }
            for s in screen.steps
        ],
        "exceptions": [
            {
                "code": e.code,
                "severity": e.severity,
                "message": e.message,
                "step": e.step.key if e.step else None,
                "user": _person(e.user),
                "at": e.at.isoformat(),
            }
            for e in screen.exceptions
        ],
    }


def batch_panel(batch: Batch, selected: str | None = None) -> tuple[BatchScreen, StepScreen | None]:
    """What the execution screen needs: every step's title and state, the exceptions, and one step in full.

    Lighter than :func:`batch_screen` (which the batch record uses): values,
    limits and signatures are read and built for the shown step only.
    """
    # Ordered by seq alone: the model's default order starts with the batch, which
    # the ORM turns into a join on the batch table to sort by its creation time.
    steps = list(
        BatchStep.objects.filter(batch=batch)
        .only(
            "id",
            "batch_id",
            "key",
            "title",
            "kind",
            "state",
            "seq",
            "operation",
            "predecessors",
            "completed_at",
            "verified_at",
        )
        .order_by("seq")
    )
    exceptions = list(BatchException.objects.filter(batch=batch).select_related("user").order_by("at", "id"))
    step_of = {s.pk: s for s in steps}
    for e in exceptions:  # the step's title, from the rows just read (steps are never deleted)
        if e.step_id in step_of:
            e.step = step_of[e.step_id]
    light = [
        StepScreen(
            step=s,
            definition={},
            rows=[],
            inputs=[],
            signatures=[],
            exceptions=[],
            predecessors=list(s.predecessors),
        )
        for s in steps
    ]
    screen = BatchScreen(batch=batch, steps=light, exceptions=exceptions, batch_signatures=[])
    pick = screen.step(selected) or screen.current()
    # The shown step and every running one in full, in one statement: each running step keeps a
    # panel of its own (its timer, its scan field), however many run side by side.
    wanted = {s.step.pk for s in screen.running} | ({pick.step.pk} if pick else set())
    full = (
        {
            s.pk: s
            for s in BatchStep.objects.select_related("started_by", "completed_by", "verified_by").filter(
                pk__in=wanted
            )
        }
        if wanted
        else {}
    )
    for s in screen.running:
        s.step = full[s.step.pk]
        s.definition = s.step.spec
    if pick is None:
        return screen, None
    step = full[pick.step.pk]
    values = list(
        StepValue.objects.filter(step=step).select_related("entered_by").order_by("entered_at", "id")
    )
    signatures = list(
        Signature.objects.filter(record_type="execution.batchstep", record_id=str(step.pk))
        | Signature.objects.filter(
            record_type="execution.stepvalue", record_id__in=[str(v.pk) for v in values]
        )
    )
    rows: list[ValueRow] = []
    row_of: dict[int, ValueRow] = {}
    for v in values:
        if v.corrects_id and v.corrects_id in row_of:
            row_of[v.corrects_id].corrections.append(v)
            row_of[v.pk] = row_of[v.corrects_id]
        else:
            row_of[v.pk] = ValueRow(v)
            rows.append(row_of[v.pk])
    by_name = {r.value.name: r for r in rows}
    d = step.spec
    notation = configuration.notation()
    inputs = [_input_view(i, by_name.get(i["name"]), batch.ratio, notation) for i in d.get("inputs", [])]
    calculations = (_input_view(c, None, batch.ratio, notation) for c in d.get("calculations", []))
    for view in [*inputs, *calculations]:
        if view.definition["name"] in by_name:  # what the verifier compares each value with
            by_name[view.definition["name"]].specification = view.specification
    detail = StepScreen(
        step=step,
        definition=d,
        rows=rows,
        inputs=inputs,
        signatures=sorted(signatures, key=lambda s: (s.signed_at, s.pk)),
        exceptions=[e for e in exceptions if e.step_id == step.pk],
        predecessors=list(step.predecessors),
    )
    return screen, detail


def _input_view(
    definition: dict[str, Any], row: ValueRow | None, ratio: Ratio, notation: Notation
) -> InputView:
    return InputView(
        definition=definition,
        row=row,
        plausible=limits_text(definition, ratio, "plausible", notation),
        specification=limits_text(definition, ratio, "specification", notation),
        target=target_text(definition, ratio, notation),
    )
