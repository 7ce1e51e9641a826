from __future__ import annotations

import json
from typing import Any

from django import template

from batchline.accounts.roles import role_label

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


@register.filter
def plain(value: Any) -> str:
    """A number as people write it: 100000, not 1E+5; 2.5, not 2.500000."""
    from decimal import Decimal, InvalidOperation

    from batchline.execution.scaling import plain as plain_number

    try:
        return plain_number(Decimal(value))
    except (InvalidOperation, TypeError, ValueError):
        return str(value)


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
