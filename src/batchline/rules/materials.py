"""May this container be used for this batch, now? (MAT-01…, 21 CFR 211.84, 211.86, 211.87)

One expiry rule, applied everywhere: a lot is usable strictly before its
expiry instant, judged at the server's time of use; at the instant itself it
has expired. A lot without an expiry (a batch's output before its batch
started, or of a product with no shelf life in its master data) is not usable,
and is never called expired. Past its retest date-time a lot is blocked until a new result
extends it (same boundary). Times in messages are shown in the site's zone,
with how long ago, because "expired at 14:05, 90 minutes ago" is what an
operator acts on.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from .verdict import Reason, Verdict

QUARANTINE, RELEASED, REJECTED, BLOCKED = "quarantine", "released", "rejected", "blocked"
LOT_STATUS_LABELS = {
    QUARANTINE: "in quarantine",
    RELEASED: "released",
    REJECTED: "rejected",
    BLOCKED: "blocked",
}


@dataclass(frozen=True, slots=True)
class LotView:
    number: str
    material_code: str
    material_name: str
    status: str
    expires_at: dt.datetime | None  # None: a batch's output lot whose expiry is not set yet
    retest_at: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class ContainerView:
    code: str
    lot: LotView
    quantity: Decimal
    unit: str
    reserved_for: str | None = None  # a batch number, or free for any batch
    dispensed_for: str | None = None  # set on a container weighed out for one batch


def when(instant: dt.datetime, now: dt.datetime, tz: dt.tzinfo) -> str:
    """ "14:05 CET, 90 minutes ago" (same day) or "14:05 CET on 3 March 2026, 2 days ago"."""
    local, today = instant.astimezone(tz), now.astimezone(tz)
    clock = local.strftime("%H:%M %Z")
    if local.date() != today.date():
        clock += f" on {local.day} {local.strftime('%B %Y')}"
    seconds = (now - instant).total_seconds()
    if seconds < 0:
        return f"{clock}, in {_span(-seconds)}"
    return f"{clock}, {_span(seconds)} ago" if seconds >= 1 else f"{clock}, just now"


def _span(seconds: float) -> str:
    minutes = int(seconds // 60)
    if minutes < 1:
        return f"{int(seconds)} seconds"
    if minutes < 120:
        return "1 minute" if minutes == 1 else f"{minutes} minutes"
    hours = minutes // 60
    if hours < 48:
        return f"{hours} hours"
    return f"{hours // 24} days"


def lot_usable(lot: LotView, now: dt.datetime, tz: dt.tzinfo = dt.UTC) -> Verdict:
    """Status, expiry and retest of a lot at ``now`` (the server's clock)."""
    name = f"Lot {lot.number} of {lot.material_name}"
    reasons = []
    if lot.status != RELEASED:
        code = {QUARANTINE: "LOT_IN_QUARANTINE", REJECTED: "LOT_REJECTED", BLOCKED: "LOT_BLOCKED"}
        label = LOT_STATUS_LABELS.get(lot.status, lot.status)
        reasons.append(
            Reason(
                code.get(lot.status, "LOT_NOT_RELEASED"),
                f"{name} is {label}: only released lots can be used.",
            )
        )
    if lot.expires_at is None:
        # Never "expired" and never usable: the expiry is counted from the start of manufacture,
        # or set by QA where the product's master data has no shelf life.
        reasons.append(
            Reason(
                "LOT_NO_EXPIRY",
                f"{name} has no expiry date yet: it cannot be used until one is set "
                "(from the product's shelf life when its batch starts, or by QA).",
            )
        )
    elif now >= lot.expires_at:
        reasons.append(
            Reason("LOT_EXPIRED", f"{name} expired at {when(lot.expires_at, now, tz)}: it cannot be used.")
        )
    elif lot.retest_at is not None and now >= lot.retest_at:
        reasons.append(
            Reason(
                "LOT_RETEST_DUE",
                f"{name} was due for retest at {when(lot.retest_at, now, tz)}: "
                "it is blocked until a new result extends it.",
            )
        )
    return Verdict(tuple(reasons))


def container_usable(
    container: ContainerView,
    now: dt.datetime,
    *,
    material_code: str,
    batch_number: str,
    needed: Decimal | None = None,
    tz: dt.tzinfo = dt.UTC,
) -> Verdict:
    """Everything the material identification gate checks, every failing reason at once."""
    lot = container.lot
    if lot.material_code != material_code:
        return Verdict.of(
            Reason(
                "WRONG_MATERIAL",
                f"Container {container.code} holds {lot.material_name} ({lot.material_code}), "
                f"not {material_code}: scan the right material.",
            )
        )
    reasons = list(lot_usable(lot, now, tz).reasons)
    if container.quantity <= 0:
        reasons.append(Reason("CONTAINER_EMPTY", f"Container {container.code} is empty."))
    elif needed is not None and container.quantity < needed:
        reasons.append(
            Reason(
                "NOT_ENOUGH_MATERIAL",
                f"Container {container.code} holds {container.quantity} {container.unit}; "
                f"this needs {needed} {container.unit}.",
            )
        )
    owner = container.dispensed_for or container.reserved_for
    if owner is not None and owner != batch_number:
        reasons.append(
            Reason(
                "RESERVED_FOR_OTHER_BATCH",
                f"Container {container.code} is reserved for batch {owner}, not {batch_number}.",
            )
        )
    return Verdict(tuple(reasons))
