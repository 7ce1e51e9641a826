"""Units of measure, through pint with Decimal quantities (S88-04).

One registry for the process, loaded on first use (it takes a few hundred
milliseconds). Recipes name units as people write them ("kg", "°C", "kW",
"%", "rpm", "tablet"); an unknown unit is refused at import.
"""

from __future__ import annotations

import re
from decimal import Decimal
from functools import cache

import pint

# What a unit looks like as people write it; anything else never reaches pint's parser.
_UNIT_TEXT = re.compile(r"[A-Za-zµ°%][A-Za-zµ°%0-9/*^. -]{0,29}")


class UnknownUnit(ValueError):
    """A unit pint does not know; the message names it."""


@cache
def registry() -> pint.UnitRegistry:
    ureg: pint.UnitRegistry = pint.UnitRegistry(non_int_type=Decimal, cache_folder=None)
    # Counted things of the plant that pint does not know.
    ureg.define("tablet = [tablet] = tab")
    ureg.define("capsule = [capsule] = cap")
    ureg.define("piece = [piece] = pc")  # packaging counted, not weighed: drums, bottles, closures
    return ureg


def check_unit(text: str) -> str:
    """The unit as written, after checking pint knows it; raises :class:`UnknownUnit`."""
    text = text.strip()
    if not text:
        return ""
    if not _UNIT_TEXT.fullmatch(text):
        raise UnknownUnit(f"unknown unit {text!r}")
    try:
        registry().parse_units(text)
    except Exception as exc:  # pint raises many kinds; any of them means "not a unit"
        raise UnknownUnit(f"unknown unit {text!r}") from exc
    return text


def convert(value: Decimal, source: str, target: str) -> Decimal:
    q = registry().Quantity(value, source).to(target)
    return Decimal(q.magnitude)
