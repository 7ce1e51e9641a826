"""The part of the execution screen that belongs to one kind of step: one template and, if it
needs data of its own, one function (docs/architecture.md "The execution screen").

A step's panel (``execution/_step.html``) shows what every step has (title,
instruction, timer, recorded values with their limits, the start, complete,
verify and correct actions) and includes ``execution/kinds/<kind>.html`` for
what only its kind has: the weigh booth, the charge of containers, the scan of
an equipment tag. A kind without a template of its own includes
``execution/kinds/_none.html``. A kind that needs more than the step shows
registers a function here that returns it, read only for the step shown.

The screen is cached under the audit trail's head (web/screens.py): a panel
may show only what changes with an audited write. What changes as time
passes alone (the first-to-expire proposal, a scale's live reading) is loaded
by the panel itself with ``hx-get``, outside the cache.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from batchline.configuration import selectors as configuration
from batchline.equipment.models import Equipment
from batchline.execution import charging, labelling, producing, sampling
from batchline.execution.models import Batch
from batchline.execution.scaling import tolerance_text
from batchline.execution.selectors import StepScreen
from batchline.materials.models import Consumption, Container
from batchline.rules import numbers

# Step kinds whose running step takes what a scanner reads (a container, an equipment tag).
SCANNED = frozenset({"material_charge", "equipment_id"})


def templates(kind: str) -> list[str]:
    """The kind's own template, else the empty one (``{% include %}`` takes the first that exists)."""
    return [f"execution/kinds/{kind}.html", "execution/kinds/_none.html"]


def plain(number: Any) -> str:
    """A number in the site's notation (the GMP configuration in force)."""
    return numbers.shown(number, configuration.notation())


def _quantity(batch: Batch, s: StepScreen) -> dict[str, Any]:
    """The material the step moves: its target scaled to the batch and the range it accepts."""
    target, low, high, unit = charging.required(s.step.spec, batch.ratio)
    return {
        "code": s.step.spec["material"]["code"],
        "target": plain(target),
        "accepted": tolerance_text(target, low, high, unit, configuration.notation()),
        "unit": unit,
    }


def _charge(batch: Batch, s: StepScreen) -> dict[str, Any]:
    s.step.batch = batch
    material = s.step.spec["material"]
    weighing = material.get("dispensed")
    if weighing:  # everything that weighing filled, whole: the containers still to scan are named
        target, _low, _high, unit = charging.window(s.step, batch.ratio)
        waiting = [c for c in charging.weighed_out(batch.number, weighing) if c.quantity > 0]
        whole = {
            "code": material["code"],
            "target": plain(target),
            "accepted": f"every container weighed out at “{charging.title_of(s.step, weighing)}”, whole",
            "unit": unit,
            "waiting": waiting,
        }
    return {
        "charge": {
            **(whole if weighing else _quantity(batch, s)),
            "charged": plain(charging.charged(s.step)),
            "containers": Consumption.objects.filter(batch_number=batch.number, step_key=s.step.key)
            .select_related("container", "lot")
            .order_by("id"),
        }
    }


def _booth(batch: Batch, s: StepScreen) -> dict[str, Any]:
    return {
        "booth": {
            **_quantity(batch, s),
            "potency": s.step.spec["material"].get("potency_adjust", False),
            "scales": Equipment.objects.filter(equipment_class__is_scale=True).order_by("code"),
            "dispensed": Container.objects.filter(
                dispensed_for=batch.number, ledger__step_key=s.step.key
            ).distinct(),
        }
    }


def _sampling(batch: Batch, s: StepScreen) -> dict[str, Any]:
    s.step.batch = batch
    return {"sampling": sampling.describe(s.step, batch)}


def _produce(batch: Batch, s: StepScreen) -> dict[str, Any]:
    s.step.batch = batch
    return {
        "produce": {
            "unit": s.step.spec["produce"]["unit"],
            "label": s.step.spec["produce"]["label"],
            "containers": producing.containers(s.step),
            "total": producing.total(s.step),
        }
    }


def _labelling(batch: Batch, s: StepScreen) -> dict[str, Any]:
    s.step.batch = batch
    described = labelling.describe(s.step)
    last = described["issues"][-1] if described["issues"] else None
    described["specimen"] = f"data:image/png;base64,{last.specimen_png}" if last else None
    return {"labelling": described}


# kind → what its panel needs besides the step; all of it changes only with audited writes.
CONTEXT: dict[str, Callable[[Batch, StepScreen], dict[str, Any]]] = {
    "material_charge": _charge,
    "weigh_dispense": _booth,
    "sampling": _sampling,
    "produce": _produce,
    "labelling": _labelling,
}


def context(batch: Batch, shown: StepScreen | None) -> dict[str, Any]:
    """What the shown step's kind adds to the screen."""
    if shown is None:
        return {}
    extra = CONTEXT.get(shown.step.kind)
    return {"kind_templates": templates(shown.step.kind), **(extra(batch, shown) if extra else {})}
