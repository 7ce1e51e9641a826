"""A change described in words and ranked by importance, for whoever approves it (MBR-02, VAL-06).

A reviewer approving a change must see first what can alter the product: a
specification from 60 to 50 N, not thirty renumbered positions. Every change
gets a tier:

1. limits, specifications, critical parameters, tolerances, targets and
   quantities, yields: what the product is judged against;
2. what is used and who must sign: materials, equipment, qualifications,
   signatures and verification, steps added or removed;
3. texts: instructions, names, labels;
4. order alone, which changes nothing that is judged.

:func:`describe_fields` turns ``{field: (old, new)}`` into sentences with the
numbers' units, for recipes (``recipes/compare.py``) and master data alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import Any


class Tier(IntEnum):
    LIMIT = 1
    RESOURCE = 2
    TEXT = 3
    ORDER = 4


TIER_NAMES = {
    Tier.LIMIT: "limits and quantities",
    Tier.RESOURCE: "materials, signatures, steps",
    Tier.TEXT: "texts",
    Tier.ORDER: "order",
}


@dataclass(frozen=True)
class FieldWords:
    """How one field is named and ranked; ``unit`` follows its numbers (``new_unit`` after a unit change)."""

    label: str
    tier: Tier
    unit: str = ""
    new_unit: str | None = None


@dataclass(frozen=True)
class Described:
    tier: Tier
    words: str
    field: str = ""
    # The path-level rows (recipes/compare.py) this sentence stands for.
    paths: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"tier": int(self.tier), "words": self.words, "field": self.field, "paths": list(self.paths)}


def show(value: Any, unit: str = "") -> str:
    """A value as a reader writes it: a number with its unit, a text quoted, a list item by item."""
    if value is None or value == "" or value == []:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(show(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k} {show(v)}" for k, v in value.items())
    if isinstance(value, int | float) or _numeric(value):
        return f"{value} {unit}".rstrip() if unit else str(value)
    return f"'{value}'"


def _numeric(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        float(value)
    except ValueError:
        return False
    return value.strip() == value and value.lower() not in ("nan", "inf", "-inf", "infinity")


def sentence(what: str, old: Any, new: Any, words: FieldWords, *, subject: str = "") -> str:
    """``subject: what changed from old to new``, or set/removed when one side is empty."""
    before = show(old, words.unit)
    after = show(new, words.unit if words.new_unit is None else words.new_unit)
    head = f"{subject}: {what}" if subject else what[:1].upper() + what[1:]
    if isinstance(old, list) and isinstance(new, list) and old and new:
        added = [x for x in new if x not in old]
        removed = [x for x in old if x not in new]
        parts = [f"added {show(x)}" for x in added] + [f"removed {show(x)}" for x in removed]
        return f"{head}: {'; '.join(parts)}" if parts else f"{head}: the same items in another order"
    if isinstance(old, bool) and isinstance(new, bool):
        return f"{head}: {after} (was {before})"
    if before == "none":
        return f"{head} set to {after} (none before)"
    if after == "none":
        return f"{head} removed (was {before})"
    return f"{head} changed from {before} to {after}"


def describe_fields(
    changes: Mapping[str, tuple[Any, Any]],
    fields: Mapping[str, FieldWords],
    *,
    subject: str = "",
) -> list[Described]:
    """One sentence per changed field, most important first, then in the order ``fields`` names them.

    A field ``fields`` does not name is still described, by its own name and as
    tier 1: nobody has said it is harmless, so it is not ranked below what is known.
    Unchanged pairs (old == new) are left out.
    """
    order = {name: i for i, name in enumerate(fields)}
    out = []
    for name, (old, new) in changes.items():
        if old == new:
            continue
        words = fields.get(name) or FieldWords(name.replace("_", " ").replace(".", " "), Tier.LIMIT)
        out.append(Described(words.tier, sentence(words.label, old, new, words, subject=subject), field=name))
    return sorted(out, key=lambda d: (d.tier, order.get(d.field, len(order))))
