"""Quantities of a recipe scaled to a batch: one place for the engine, the screen and the record.

A value marked ``scales`` becomes value × planned ÷ nominal, multiplied first
(30 × 100 ÷ 300 is exactly 10; 30 × (100 ÷ 300) is not).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

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


def target_text(definition: Mapping[str, Any], ratio: Ratio, notation: Notation = POINT) -> str:
    target = scaled(definition.get("target"), ratio, bool(definition.get("scales")))
    return "" if target is None else shown(target, notation)
