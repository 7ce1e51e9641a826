"""Template filters for the controls of simulated devices (only ever shown for one registered as simulated)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django import template

register = template.Library()


@register.filter
def simulated_only(units: Iterable[Any]) -> list[Any]:
    """The units among ``units`` registered as simulated (a demo's or a test's)."""
    return [u for u in units if getattr(u, "simulated", False)]
