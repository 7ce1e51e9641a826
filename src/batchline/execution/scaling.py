"""Quantities of a recipe scaled to a batch: one place for the engine, the screen and the record.

A value marked ``scales`` becomes value × planned ÷ nominal, multiplied first
(30 × 100 ÷ 300 is exactly 10; 30 × (100 ÷ 300) is not).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

from batchline.rules import numbers
from batchline.rules.limits import NumberLimits, Range
from batchline.rules.numbers import POINT, Notation, shown

Ratio = tuple[Decimal, Decimal]  # (planned, nominal)


def scaled(value: Any, ratio: Ratio, scales: bool) -> Decimal | None:
    if value is None:
        return None
    return Decimal(value) * ratio[0] / ratio[1] if scales else Decimal(value)


def number_limits(definition: Mapping[str, Any], ratio: Ratio) -> NumberLimits:
    scales = bool(definition.get("scales"))

    def rng(name: str) -> Range:
        limits = definition.get(name) or {}
        return Range(scaled(limits.get("low"), ratio, scales), scaled(limits.get("high"), ratio, scales))

    return NumberLimits(plausible=rng("plausible"), specification=rng("specification"), action=rng("action"))


def plain(value: Decimal) -> str:
    """A number as people write it: no exponent, no trailing zeros."""
    return f"{value.normalize():f}"


def range_text(rng: Range, unit: str, notation: Notation = POINT) -> str:
    """Limits for a person to read, in the site's notation; empty where there are none."""
    if rng.low is None and rng.high is None:
        return ""
    plainly = Range(*(None if x is None else Decimal(plain(x)) for x in (rng.low, rng.high)))
    return plainly.text(unit, notation)


def _decimals(written: Any) -> int:
    return max(-int(Decimal(str(written)).as_tuple().exponent), 0)


def scaled_text(written: Any, ratio: Ratio, scales: bool, notation: Notation = POINT) -> str:
    """A recipe number scaled to the batch, shown to the recipe's own decimals: exact where it comes
    out exact (600 mg × ½ is 300), else rounded to three places more (10 kg × 100 ÷ 70 is 14.286),
    never the 28 digits of the division; in the site's notation."""
    value = scaled(written, ratio, scales)
    if value is None:
        return ""
    own = _decimals(written)
    exact = value.quantize(Decimal(1).scaleb(-own))
    if exact == value:
        return numbers.written(exact, notation)
    return shown(value.quantize(Decimal(1).scaleb(-(own + 3))), notation)


def limits_text(definition: Mapping[str, Any], ratio: Ratio, name: str, notation: Notation = POINT) -> str:
    """One of an input's limits (``plausible``, ``specification``, ``action``) scaled and shown as
    :func:`scaled_text` shows its target: ``570–630 mg``, ``≥ 3.5 %``; empty where there are none."""
    limits = definition.get(name) or {}
    if limits.get("low") is None and limits.get("high") is None:
        return ""
    scales = bool(definition.get("scales"))
    low, high = (limits.get(k) for k in ("low", "high"))
    u = definition.get("unit", "")
    texts = [None if x is None else scaled_text(x, ratio, scales, notation) for x in (low, high)]
    unit = f" {u}" if u else ""
    if texts[0] is not None and texts[1] is not None:
        return f"{texts[0]}–{texts[1]}{unit}"
    return f"≥ {texts[0]}{unit}" if texts[0] is not None else f"≤ {texts[1]}{unit}"


def target_text(definition: Mapping[str, Any], ratio: Ratio, notation: Notation = POINT) -> str:
    return scaled_text(definition.get("target"), ratio, bool(definition.get("scales")), notation)


def tolerance_places(target: Decimal, low: Decimal, high: Decimal) -> int:
    """As many decimals as tell a range's ends and its target apart, never fewer than 3 (a gram in
    kilograms): a 5 g weighing reads 0.0049–0.0051 kg, not 0.005–0.005 kg (issue 11)."""
    for places in range(3, 9):
        q = Decimal(1).scaleb(-places)
        lo, hi = _ends(low, high, q)
        mid = target.quantize(q)
        if (lo < hi or low == high) and (lo != mid or low == target) and (mid != hi or high == target):
            return places
    return 9


def _ends(low: Decimal, high: Decimal, q: Decimal) -> tuple[Decimal, Decimal]:
    # Low rounded up, high rounded down: every number the text shows is accepted.
    return low.quantize(q, rounding=ROUND_CEILING), high.quantize(q, rounding=ROUND_FLOOR)


def tolerance_text(
    target: Decimal, low: Decimal, high: Decimal, unit: str, notation: Notation = POINT
) -> str:
    """The accepted range as a person reads it, with :func:`tolerance_places` decimals, in the site's
    notation."""
    lo, hi = _ends(low, high, Decimal(1).scaleb(-tolerance_places(target, low, high)))
    return f"{shown(lo, notation)}–{shown(hi, notation)} {unit}".rstrip()


def target_shown(target: Decimal, low: Decimal, high: Decimal, notation: Notation = POINT) -> str:
    """The target with as many decimals as its range, in the site's notation."""
    return shown(target.quantize(Decimal(1).scaleb(-tolerance_places(target, low, high))), notation)
