"""A process value's course over its step as a chart: the frozen buckets and the limits in plot
coordinates, shared by the record page (SVG) and the PDF (ReportLab), so both draw the same."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any


@dataclass(frozen=True)
class Chart:
    width: float
    height: float
    band: list[tuple[float, float]]  # the highest values left to right, then the lowest back: a polygon
    limits: list[tuple[str, str, float]]  # (kind, value as written, y)
    low: str  # the axis's range, as written
    high: str


def chart(
    trend: dict[str, Any], limits: dict[str, list[str | None]], width: float, height: float
) -> Chart | None:
    """None when the trend holds no usable value. y grows downwards (SVG); the PDF flips it."""
    buckets = trend.get("buckets") or []
    if not buckets:
        return None
    values = [Decimal(v) for _, lo, hi in buckets for v in (lo, hi)]
    marks = [(kind, v) for kind in ("specification", "action") for v in limits.get(kind, []) if v is not None]
    every = values + [Decimal(v) for _, v in marks]
    low, high = min(every), max(every)
    pad = (high - low) / 10 or Decimal(1)
    low, high = low - pad, high + pad

    def y(value: Decimal) -> float:
        return round(float((high - value) / (high - low)) * height, 1)

    step = width / 120  # the buckets of execution.monitoring.BUCKETS across the step's period
    xs = [round(_index(b[0], trend) * step + step / 2, 1) for b in buckets]
    top = [(x, y(Decimal(hi))) for x, (_, _, hi) in zip(xs, buckets, strict=True)]
    bottom = [(x, y(Decimal(lo))) for x, (_, lo, _) in zip(xs, buckets, strict=True)]
    band = [*top, *reversed(bottom)]
    return Chart(
        width=width,
        height=height,
        band=band,
        limits=[(kind, v, y(Decimal(v))) for kind, v in marks],
        low=_plain(low),
        high=_plain(high),
    )


def _seconds(iso: str) -> float:
    return dt.datetime.fromisoformat(iso).timestamp()


def _index(at: str, trend: dict[str, Any]) -> int:
    """The bucket's position among the 120 of the step's period."""
    start, end = _seconds(trend["start"]), _seconds(trend["end"])
    span = max(end - start, 1.0)
    return min(119, max(0, round((_seconds(at) - start) / span * 120)))


def _plain(value: Decimal) -> str:
    return format(value.quantize(Decimal("0.01")).normalize(), "f")
