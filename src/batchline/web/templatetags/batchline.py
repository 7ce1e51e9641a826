from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from typing import Any

from django import template
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from batchline.accounts.roles import role_label
from batchline.rules import numbers
from batchline.rules.numbers import Notation

register = template.Library()


@register.filter
def jsonvalue(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


@register.filter
def rolelabel(name: str) -> str:
    return role_label(name)


@register.filter
def split(value: str) -> list[str]:
    return value.split()


def _notation() -> Notation:
    # Read once per request (configuration.selectors memoises the version in force).
    from batchline.configuration.selectors import notation

    return notation()


def _decimal(value: Any) -> Decimal | None:
    """A stored number (a Decimal, or its canonical text "0.5013"); None for anything else."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


@register.filter
def plain(value: Any) -> str:
    """A number as the site writes it: 100000, not 1E+5; 2.5, not 2.500000; 2,5 on a comma site."""
    number = _decimal(value)
    return str(value) if number is None else numbers.shown(number, _notation())


@register.filter
def sitenumber(value: Any) -> str:
    """A number for a field to edit, in the site's notation with its decimals (0,50); typed text as typed."""
    if value is None or value == "":
        return ""
    number = _decimal(value)
    return str(value) if number is None else numbers.written(number, _notation())


@register.filter
def recorded(value: Any) -> str:
    """A recorded value with its unit: the number in the site's notation, and the typed text where that
    reads otherwise (DI-05: nobody reads a different number than was judged)."""

    def get(name: str) -> Any:
        return value.get(name) if isinstance(value, dict) else getattr(value, name, None)

    number = _decimal(get("number"))
    shown, typed = numbers.recorded(
        number, get("text") or "", _notation(), calculated=get("source") == "calculated"
    )
    out = format_html("{} {}", shown, get("unit") or "") if get("unit") else format_html("{}", shown)
    if typed:
        out += format_html(' <span class="help" data-testid="typed">(typed “{}”)</span>', typed)
    return mark_safe(out)  # noqa: S308 (built with format_html)


@register.filter
def get(mapping: dict[str, Any], key: str) -> Any:
    """``mapping[key]`` in a template, or the key itself when it is missing."""
    return mapping.get(key, key)


@register.filter
def when(value: Any) -> str:
    """An instant (a datetime or the record's ISO text) in the zone in force, with its name."""
    import datetime as dt

    from django.utils import timezone

    if not value:
        return ""
    at = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    return f"{timezone.localtime(at):%Y-%m-%d %H:%M:%S %Z}"


@register.filter
def pick(mapping: dict[str, Any] | None, key: str) -> Any:
    """``mapping[key]``, or "" when it is missing (what a person typed into a field, to type it back)."""
    return (mapping or {}).get(key, "")


@register.filter
def epoch_ms(value: Any) -> int:
    """An instant as milliseconds since 1970 (UTC): what the page's clock counts from."""
    return int(value.timestamp() * 1000)


@register.filter
def duration(seconds: int) -> str:
    """Seconds as people say a duration: "10 min", "1 min 30 s", "45 s"."""
    minutes, rest = divmod(int(seconds), 60)
    if not minutes:
        return f"{rest} s"
    return f"{minutes} min" + (f" {rest} s" if rest else "")


@register.filter
def state_words(state: str) -> str:
    """A state as a sentence says it ("released by QA", "in review"): one table, rules/states.py."""
    from batchline.rules.states import LABELS

    return LABELS.get(state, state.replace("_", " "))
