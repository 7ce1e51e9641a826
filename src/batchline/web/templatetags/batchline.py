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
