"""What changed between two recipe versions, down to each limit and text (MBR-02).

Lists of steps, operations, inputs and calculations are matched by their key
or name, not by position, so inserting a step shows as one added step and not
as every later step changed; a step that moved shows its new position.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Change:
    path: str
    kind: str  # added, removed, changed
    old: Any = None
    new: Any = None

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "kind": self.kind, "old": self.old, "new": self.new}


def _identity(item: Any) -> str | None:
    if isinstance(item, dict):
        ident = item.get("key") or item.get("name")
        return str(ident) if ident is not None else None
    return None


def flatten(document: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}

    def walk(value: Any, path: str) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, f"{path}.{k}" if path else str(k))
        elif isinstance(value, list) and value and all(_identity(x) for x in value):
            for position, item in enumerate(value):
                here = f"{path}[{_identity(item)}]"
                out[f"{here}.position"] = position + 1
                walk(item, here)
        else:
            out[path] = value

    walk(document, "")
    return out


def compare(old: Any, new: Any) -> list[Change]:
    a, b = flatten(old), flatten(new)
    changes = []
    for path in sorted(a.keys() | b.keys()):
        if path not in b:
            changes.append(Change(path, "removed", old=a[path]))
        elif path not in a:
            changes.append(Change(path, "added", new=b[path]))
        elif a[path] != b[path]:
            changes.append(Change(path, "changed", old=a[path], new=b[path]))
    return changes
