"""Edits an author makes to a draft in the browser, as functions from one recipe document to the next.

The form editor never writes a recipe any other way than a file import does:
each edit returns a new plain document, which the service checks in full
(:func:`~.document.validate`) before it is stored. So an edit that would
leave a cycle, a dangling predecessor or a formula without its value is
refused with the same words as a file would be, and nothing is saved.

Step order is sequential by default (a step without ``after`` waits for the
one before it), so moving a step moves it in the procedure. Explicit
``after`` lists name steps by key: renaming a step renames it there too, and
deleting a step hands its own predecessors on to the steps that waited for
it, so the order the author set stays.
"""

from __future__ import annotations

import copy
import re
import unicodedata
from typing import Any

from .document import Problem, RecipeDocument, RecipeInvalid

Doc = dict[str, Any]


def _refuse(message: str) -> RecipeInvalid:
    return RecipeInvalid([Problem((), message)])


def _copy(data: Doc) -> Doc:
    return copy.deepcopy(data)


def _operation(data: Doc, key: str) -> dict[str, Any]:
    for op in data["operations"]:
        if op["key"] == key:
            return op
    raise _refuse(f"There is no operation {key!r} in this draft (it may have been changed meanwhile).")


def _find_step(data: Doc, key: str) -> tuple[int, int]:
    for o, op in enumerate(data["operations"]):
        for s, step in enumerate(op["steps"]):
            if step["key"] == key:
                return o, s
    raise _refuse(f"There is no step {key!r} in this draft (it may have been changed meanwhile).")


def _step_keys(data: Doc) -> set[str]:
    return {step["key"] for op in data["operations"] for step in op["steps"]}


def _rename_in_after(data: Doc, old: str, new: str) -> None:
    for op in data["operations"]:
        for step in op["steps"]:
            if step.get("after"):
                step["after"] = [new if k == old else k for k in step["after"]]


def _effective_predecessors(data: Doc) -> dict[str, list[str]]:
    preds: dict[str, list[str]] = {}
    previous: str | None = None
    for op in data["operations"]:
        for step in op["steps"]:
            after = step.get("after")
            preds[step["key"]] = list(after) if after is not None else ([previous] if previous else [])
            previous = step["key"]
    return preds


def _bridge(data: Doc, removed: set[str], preds: dict[str, list[str]]) -> None:
    """Steps that waited for a removed step now wait for what it waited for."""

    def inherited(key: str, seen: set[str]) -> list[str]:
        out: list[str] = []
        for p in preds.get(key, []):
            if p in removed and p not in seen:
                out += inherited(p, seen | {p})
            elif p not in removed:
                out.append(p)
        return out

    for op in data["operations"]:
        for step in op["steps"]:
            after = step.get("after")
            if after and removed.intersection(after):
                bridged = inherited(step["key"], set())
                step["after"] = list(dict.fromkeys(bridged))


# --- the header ------------------------------------------------------------------------------


def set_header(data: Doc, *, name: str, quantity: str, unit: str, description: str) -> Doc:
    """Name, nominal batch size and description; the code and product stay (they identify the recipe)."""
    out = _copy(data)
    out["recipe"].update(name=name, batch_size={"quantity": quantity, "unit": unit}, description=description)
    return out


# --- operations ------------------------------------------------------------------------------


def add_operation(data: Doc, *, key: str, name: str, first_step: dict[str, Any]) -> Doc:
    """A new operation at the end; the schema wants at least one step in it, so it comes with one."""
    out = _copy(data)
    if any(op["key"] == key for op in out["operations"]):
        raise _refuse(f"An operation {key!r} exists already.")
    if first_step["key"] in _step_keys(out):
        raise _refuse(f"A step {first_step['key']!r} exists already.")
    out["operations"].append({"key": key, "name": name, "steps": [first_step]})
    return out


def rename_operation(data: Doc, key: str, *, name: str) -> Doc:
    out = _copy(data)
    _operation(out, key)["name"] = name
    return out


def delete_operation(data: Doc, key: str) -> Doc:
    if len(data["operations"]) == 1:
        raise _refuse("A recipe keeps at least one operation.")
    out = _copy(data)
    preds = _effective_predecessors(out)
    gone = {step["key"] for step in _operation(out, key)["steps"]}
    out["operations"] = [op for op in out["operations"] if op["key"] != key]
    _bridge(out, gone, preds)
    return out


def move_operation(data: Doc, key: str, delta: int) -> Doc:
    out = _copy(data)
    ops = out["operations"]
    i = ops.index(_operation(out, key))
    j = max(0, min(len(ops) - 1, i + delta))
    ops.insert(j, ops.pop(i))
    return out


# --- steps -----------------------------------------------------------------------------------


def put_step(data: Doc, *, operation: str, step: dict[str, Any], replaces: str | None = None) -> Doc:
    """Add ``step`` at the end of ``operation``, or put it in place of step ``replaces``."""
    out = _copy(data)
    new_key = step["key"]
    if replaces is None:
        if new_key in _step_keys(out):
            raise _refuse(f"A step {new_key!r} exists already; choose another key.")
        _operation(out, operation)["steps"].append(step)
        return out
    o, s = _find_step(out, replaces)
    if new_key != replaces:
        if new_key in _step_keys(out):
            raise _refuse(f"A step {new_key!r} exists already; choose another key.")
        _rename_in_after(out, replaces, new_key)
    out["operations"][o]["steps"][s] = step
    return out


def delete_step(data: Doc, key: str) -> Doc:
    out = _copy(data)
    o, s = _find_step(out, key)
    if len(out["operations"][o]["steps"]) == 1:
        raise _refuse("An operation keeps at least one step; delete the operation instead.")
    preds = _effective_predecessors(out)
    del out["operations"][o]["steps"][s]
    _bridge(out, {key}, preds)
    return out


def move_step(data: Doc, key: str, delta: int) -> Doc:
    """One place up (-1) or down (+1); past the edge of its operation it joins the neighbouring one."""
    if delta not in (-1, 1):
        raise _refuse("A step moves one place at a time.")
    out = _copy(data)
    o, s = _find_step(out, key)
    ops = out["operations"]
    steps = ops[o]["steps"]
    if 0 <= s + delta < len(steps):
        steps.insert(s + delta, steps.pop(s))
        return out
    target = o + delta
    if not 0 <= target < len(ops):
        return out  # already first or last: nothing to do
    if len(steps) == 1:
        raise _refuse("An operation keeps at least one step; move the operation instead.")
    step = steps.pop(s)
    if delta < 0:
        ops[target]["steps"].append(step)
    else:
        ops[target]["steps"].insert(0, step)
    return out


def step_of(document: RecipeDocument, key: str) -> tuple[str, dict[str, Any]]:
    """The operation key and the plain data of one step, for the form."""
    for op, step in document.steps():
        if step.key == key:
            return op.key, step.model_dump(mode="json")
    raise _refuse(f"There is no step {key!r} in this draft (it may have been changed meanwhile).")


def suggest_key(title: str, taken: set[str]) -> str:
    """A key from a title ("Dry granules at 60 °C" → ``dry_granules_at_60_c``), unique among ``taken``."""
    base = re.sub(r"[^a-z0-9]+", "_", unicodedata.normalize("NFKD", title).lower()).strip("_")
    if not base:
        base = "step"
    base = (base if base[:1].isalpha() else f"s_{base}")[:34].rstrip("_")
    key, n = base, 2
    while key in taken:
        key, n = f"{base}_{n}", n + 1
    return key


def keys_in(data: Doc) -> set[str]:
    """Every step and operation key of a document (both must stay unique)."""
    return _step_keys(data) | {op["key"] for op in data["operations"]}
