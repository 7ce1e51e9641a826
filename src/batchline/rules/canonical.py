"""Canonical values and serialisation for hashing and diffing.

A value is hashed exactly as it is normalised here, so the same logical value
always gives the same bytes whatever database or driver produced it: Decimals
keep their stored scale as text, date-times become ISO 8601 in UTC with
microseconds and a ``Z``, sets and tuples become sorted or plain lists.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from decimal import Decimal
from typing import Any

JSONValue = None | bool | int | str | list["JSONValue"] | dict[str, "JSONValue"]


def normalise(value: Any) -> JSONValue:
    """Return the canonical JSON-compatible form of a stored value."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        # Floats are not exact; GMP values are stored as Decimal. Keep repr so
        # the round trip is lossless if one slips through.
        return repr(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise ValueError("naive date-time cannot be audited: the server stores UTC")
        return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return f"PT{value.total_seconds()}S"
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, set | frozenset):
        return sorted(normalise(v) for v in value)  # type: ignore[type-var]
    if isinstance(value, list | tuple):
        return [normalise(v) for v in value]
    if isinstance(value, dict):
        return {str(k): normalise(v) for k, v in value.items()}
    raise TypeError(f"no canonical form for {type(value).__name__}")


_encode = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode


def dumps(value: Any) -> str:
    """Canonical JSON text: sorted keys, no whitespace, UTF-8 kept as is."""
    return _encode(normalise(value))


def dumps_normalised(value: JSONValue) -> str:
    """:func:`dumps` for a value that is already canonical (skips a second walk)."""
    return _encode(value)


def diff(old: dict[str, JSONValue], new: dict[str, JSONValue]) -> dict[str, list[JSONValue]]:
    """Fields whose canonical value differs, as ``{field: [old, new]}``."""
    changes: dict[str, list[JSONValue]] = {}
    for field in sorted(old.keys() | new.keys()):
        before, after = old.get(field), new.get(field)
        if before != after:
            changes[field] = [before, after]
    return changes
