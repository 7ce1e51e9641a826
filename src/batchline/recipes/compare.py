"""What changed between two recipe versions, in words and by importance (MBR-02).

Lists of steps, operations, inputs and calculations are matched by their key
or name, not by position, so inserting a step shows as one added step and not
as every later step changed.

:func:`compare` keeps the path-level list (every changed leaf of the document,
each now with its tier and its sentence); :func:`describe` reads the same two
documents as a reviewer does: one sentence per change, limits first, and the
order of steps folded into one last line, where a step only renumbered by an
insertion is counted, not listed. Plain Python over the canonical dicts: no
database.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from batchline.rules.changes import Described, FieldWords, Tier, describe_fields, sentence, show

L, R, T = Tier.LIMIT, Tier.RESOURCE, Tier.TEXT


@dataclass(frozen=True)
class Change:
    path: str
    kind: str  # added, removed, changed
    old: Any = None
    new: Any = None
    tier: int = int(Tier.LIMIT)
    words: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "kind": self.kind,
            "old": self.old,
            "new": self.new,
            "tier": self.tier,
            "words": self.words,
        }


@dataclass(frozen=True)
class Comparison:
    lines: list[Described]  # by tier; the order of steps last, in one line
    changes: list[Change]  # every changed path, by tier, each with the sentence that covers it
    materials: frozenset[str] = field(default_factory=frozenset)  # codes whose charge or sample changed


def _identity(item: Any) -> str | None:
    if isinstance(item, dict):
        ident = item.get("key") or item.get("name")
        return str(ident) if ident is not None else None
    return None


def flatten(document: Any, prefix: str = "") -> dict[str, Any]:
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

    walk(document, prefix)
    return out


def _raw(a: dict[str, Any], b: dict[str, Any]) -> list[Change]:
    changes = []
    for path in sorted(a.keys() | b.keys()):
        if path not in b:
            changes.append(Change(path, "removed", old=a[path]))
        elif path not in a:
            changes.append(Change(path, "added", new=b[path]))
        elif a[path] != b[path]:
            changes.append(Change(path, "changed", old=a[path], new=b[path]))
    return changes


# --- what each field is called and how much it matters ------------------------------------


def header_fields(old: dict[str, Any], new: dict[str, Any]) -> dict[str, FieldWords]:
    size_unit = (old.get("batch_size") or {}).get("unit", ""), (new.get("batch_size") or {}).get("unit", "")
    return {
        "batch_size.quantity": FieldWords("nominal batch size", L, size_unit[0], size_unit[1]),
        "batch_size": FieldWords("batch size", L),
        "batch_size.unit": FieldWords("unit of the batch size", L),
        "code": FieldWords("recipe code", R),
        "product_code": FieldWords("product code", R),
        "name": FieldWords("recipe name", T),
        "product_name": FieldWords("product name", T),
        "description": FieldWords("description", T),
    }


def value_fields(label: str, old_unit: str, new_unit: str) -> dict[str, FieldWords]:
    """An input, a calculation, a timer's recorded duration or an output total."""

    def limit(words: str) -> FieldWords:
        return FieldWords(f"{label} {words}", L, old_unit, new_unit)

    return {
        "target": limit("target"),
        "specification": limit("specification"),
        "specification.low": limit("lower specification limit"),
        "specification.high": limit("upper specification limit"),
        "action": limit("action limits"),
        "action.low": limit("lower action limit"),
        "action.high": limit("upper action limit"),
        "plausible": limit("plausible range"),
        "plausible.low": limit("lower plausible limit"),
        "plausible.high": limit("upper plausible limit"),
        "critical": FieldWords(f"{label} is a critical parameter", L),
        "formula": FieldWords(f"{label} formula", L),
        "unit": FieldWords(f"{label} unit", L),
        "decimals": FieldWords(f"{label} decimals", L),
        "scales": FieldWords(f"{label} scales with the batch size", L),
        "type": FieldWords(f"{label} type", R),
        "choices": FieldWords(f"{label} choices", R),
        "required": FieldWords(f"{label} is required", R),
        # Read from a machine instead of typed (issue 15): where it comes from is part of the control.
        "device": FieldWords(f"{label} read from the machine", L),
        "device.equipment": FieldWords(f"{label} read from the unit of", L),
        "device.parameter": FieldWords(f"{label} machine parameter", L),
        "device.max_age_seconds": FieldWords(f"{label} oldest reading taken", L, "s"),
        "device.at_completion": FieldWords(f"{label} read when the step completes", L),
        "name": FieldWords(f"{label} value name", R),
        "label": FieldWords("label", T),
    }


def _unit(block: dict[str, Any] | None, *keys: str) -> str:
    for key in keys:
        block = block.get(key) if isinstance(block, dict) else None
    return str(block or "")


def step_fields(old: dict[str, Any], new: dict[str, Any]) -> dict[str, FieldWords]:
    """A step's own fields, its material, timer, sampling, output and labelling blocks."""

    def units(*keys: str) -> tuple[str, str]:
        return _unit(old, *keys), _unit(new, *keys)

    code = _unit(new, "material", "code") or _unit(old, "material", "code") or "material"
    m_unit, s_unit, l_unit = (
        units("material", "unit"),
        units("sampling", "unit"),
        units("labelling", "per_container", "unit"),
    )
    record_label = _unit(new, "timer", "record", "label") or _unit(old, "timer", "record", "label")
    result_label = _unit(new, "sampling", "result", "label") or _unit(old, "sampling", "result", "label")
    produce_label = _unit(new, "produce", "label") or _unit(old, "produce", "label")
    out = {
        "material": FieldWords("material charge", R),
        "material.code": FieldWords("material", R),
        "material.quantity": FieldWords(f"{code} quantity", L, *m_unit),
        "material.unit": FieldWords(f"{code} unit", L),
        "material.scales": FieldWords(f"{code} quantity scales with the batch size", L),
        "material.tolerance_percent": FieldWords(f"{code} tolerance", L, "%"),
        "material.tolerance_absolute": FieldWords(f"{code} tolerance", L, *m_unit),
        "material.potency_adjust": FieldWords(f"{code} target follows the lot's potency", L),
        "material.compensates": FieldWords(f"{code} target compensates for step", L),
        "material.dispensed": FieldWords(f"{code} charged as dispensed by step", R),
        "timer": FieldWords("timer", L),
        "timer.min_minutes": FieldWords("shortest duration", L, "min"),
        "timer.max_minutes": FieldWords("longest duration", L, "min"),
        "timer.record": FieldWords("recorded duration", L),
        "sampling": FieldWords("sampling", R),
        "sampling.material": FieldWords("sampled material", R),
        "sampling.quantity": FieldWords("sample size", L, *s_unit),
        "sampling.unit": FieldWords("unit of the sample size", L),
        "sampling.scales": FieldWords("sample size scales with the batch size", L),
        "sampling.samples": FieldWords("number of samples", L),
        "sampling.source": FieldWords("sampled from", R),
        "sampling.positions": FieldWords("sampling positions", R),
        "sampling.test": FieldWords("test", R),
        "sampling.method": FieldWords("test method", R),
        "sampling.result": FieldWords("laboratory result", L),
        "sampling.result.waits": FieldWords("step waits for the laboratory's result", L),
        "produce": FieldWords("output", R),
        "labelling": FieldWords("labelling", R),
        "labelling.per_container": FieldWords("quantity per labelled container", L),
        "labelling.per_container.quantity": FieldWords("quantity per labelled container", L, *l_unit),
        "labelling.per_container.unit": FieldWords("unit per labelled container", L),
        "labelling.reconciliation": FieldWords("label reconciliation limit", L),
        "labelling.reconciliation.absolute": FieldWords("label reconciliation limit", L, "labels"),
        "labelling.reconciliation.percent": FieldWords("label reconciliation limit", L, "%"),
        "labelling.examine_units": FieldWords("labelled units examined", L),
        "labelling.examination": FieldWords("label examination checks", R),
        "monitors": FieldWords("process values read from the machine", L),
        "kind": FieldWords("kind", R),
        "role": FieldWords("role that performs it", R),
        "signs": FieldWords("performer signs", R),
        "verify": FieldWords("second person verifies", R),
        "equipment_class": FieldWords("equipment class", R),
        "qualification": FieldWords("qualification required", R),
        "sop": FieldWords("SOP", R),
        "checklist": FieldWords("checklist", R),
        "after": FieldWords("waits for", R),
        "title": FieldWords("title", T),
        "instruction": FieldWords("instruction", T),
    }
    for prefix, label, unit in (
        ("timer.record", record_label or "recorded duration", units("timer", "record", "unit")),
        ("produce", produce_label or "output", units("produce", "unit")),
        ("sampling.result", result_label or "laboratory result", units("sampling", "result", "unit")),
    ):
        for name, words in value_fields(label, *unit).items():
            out[f"{prefix}.{name}"] = words
    return out


def operation_fields(old: dict[str, Any], new: dict[str, Any]) -> dict[str, FieldWords]:
    unit = _unit(old, "yield", "unit"), _unit(new, "yield", "unit")
    return {
        "yield": FieldWords("yield limits", L),
        "yield.low_percent": FieldWords("lowest yield", L, "%"),
        "yield.high_percent": FieldWords("highest yield", L, "%"),
        "yield.theoretical": FieldWords("theoretical yield", L, *unit),
        "yield.unit": FieldWords("unit of the theoretical yield", L),
        "yield.actual": FieldWords("yield measured by the value", L),
        "yield.scales": FieldWords("theoretical yield scales with the batch size", L),
        "name": FieldWords("name", T),
    }


# --- reading two documents -----------------------------------------------------------------


def _step_name(step: dict[str, Any]) -> str:
    return f"Step '{step.get('title', step.get('key'))}' ({step.get('key')})"


def _kind(step: dict[str, Any]) -> str:
    return f"{str(step.get('kind', '')).replace('_', ' ')} step"


def _op_name(op: dict[str, Any]) -> str:
    return f"'{op.get('name', op.get('key'))}'"


def _value_name(value: dict[str, Any]) -> str:
    return f"'{value.get('label', value.get('name'))}' ({value.get('name')})"


def _keyed(items: Any) -> dict[str, dict[str, Any]]:
    return {str(_identity(x)): x for x in items or [] if _identity(x)}


def _leaves(item: dict[str, Any], without: tuple[str, ...] = ()) -> dict[str, Any]:
    return flatten({k: v for k, v in item.items() if k not in without})


def _summary(leaves: dict[str, Any], fields: dict[str, FieldWords]) -> str:
    parts = []
    for key, value in leaves.items():
        # A unit is said with its number; what is empty or off is not worth a word.
        if value in (None, "", [], False) or key.endswith("unit"):
            continue
        words = fields.get(key, FieldWords(key.rsplit(".", 1)[-1].replace("_", " "), L))
        parts.append(f"{words.label} {show(value, words.new_unit or words.unit)}")
    return "; ".join(parts) or "no values"


class _Reader:
    def __init__(self) -> None:
        self.found: list[Described] = []
        self.moved: dict[str, list[str]] = {}
        self.moved_paths: list[str] = []
        self.renumbered: dict[str, int] = {}
        self.renumbered_paths: list[str] = []
        self.materials: set[str] = set()

    def add(self, tier: Tier, words: str, paths: list[str] | tuple[str, ...]) -> None:
        self.found.append(Described(tier, words, paths=tuple(paths)))

    def fields(
        self,
        old: dict[str, Any],
        new: dict[str, Any],
        fields: dict[str, FieldWords],
        *,
        subject: str,
        old_prefix: str,
        new_prefix: str,
        special: dict[str, Callable[[Any, Any], str]] | None = None,
    ) -> None:
        """Describe the changed leaves of one matched item; a block that appears or goes is one sentence."""
        a, b = flatten(old), flatten(new)

        def paths(key: str) -> list[str]:
            return sorted({f"{old_prefix}.{key}", f"{new_prefix}.{key}"})

        def under(leaves: dict[str, Any], block: str) -> dict[str, Any]:
            return {k: v for k, v in leaves.items() if k.startswith(f"{block}.")}

        done: set[str] = set()
        # Blocks that appear or go (a specification where there was none, a material charge taken
        # away): named once, with what they hold, not leaf by leaf.
        for block in sorted(fields):
            for present, absent, verb in ((b, a, "added"), (a, b, "removed")):
                inner = under(present, block)
                if inner and absent.get(block, "missing") is None and not under(absent, block):
                    words = fields[block]
                    summary = _summary(inner, fields)
                    self.add(
                        words.tier,
                        f"{subject}: {words.label} {verb}: {summary}",
                        [p for k in (block, *inner) for p in paths(k)],
                    )
                    done |= {block, *inner}
        changed = {k: (a.get(k), b.get(k)) for k in sorted(a.keys() | b.keys()) if a.get(k) != b.get(k)}
        for key in [k for k in changed if k not in done and k in (special or {})]:
            assert special is not None
            self.add(fields[key].tier, f"{subject}: {special[key](*changed[key])}", paths(key))
            done.add(key)
        rest = {k: v for k, v in changed.items() if k not in done}
        for d in describe_fields(rest, fields, subject=subject):
            self.found.append(replace(d, paths=tuple(paths(d.field))))

    def order(self, noun: str, old: list[str], new: list[str], names: dict[str, str]) -> None:
        """Items that kept their place relative to each other only renumbered; the others moved."""
        common_old = [k for k in old if k in new]
        common_new = [k for k in new if k in old]
        kept = set(_longest_common(common_old, common_new))
        for key in common_new:
            if old.index(key) == new.index(key):
                continue
            if key in kept:
                self.renumbered[noun] = self.renumbered.get(noun, 0) + 1
            else:
                self.moved.setdefault(noun, []).append(
                    f"{names[key]} from {old.index(key) + 1} to {new.index(key) + 1}"
                )


def _longest_common(a: list[str], b: list[str]) -> list[str]:
    """The longest subsequence common to both (the items that did not move relative to each other)."""
    n, m = len(a), len(b)
    table = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        for j in range(m - 1, -1, -1):
            table[i][j] = table[i + 1][j + 1] + 1 if a[i] == b[j] else max(table[i + 1][j], table[i][j + 1])
    out, i, j = [], 0, 0
    while i < n and j < m:
        if a[i] == b[j]:
            out.append(a[i])
            i, j = i + 1, j + 1
        elif table[i + 1][j] >= table[i][j + 1]:
            i += 1
        else:
            j += 1
    return out


def _waits(old: Any, new: Any) -> str:
    def listed(v: Any) -> str:
        return "the step before it" if v is None else ", ".join(f"'{k}'" for k in v) or "nothing"

    return f"now waits for {listed(new)} (before: {listed(old)})"


def _material_codes(step: dict[str, Any]) -> set[str]:
    return {
        str(block["code" if name == "material" else "material"])
        for name in ("material", "sampling")
        if isinstance(block := step.get(name), dict)
        and block.get("code" if name == "material" else "material")
    }


def _steps(document: dict[str, Any]) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    return {
        str(s.get("key")): (op, s) for op in document.get("operations") or [] for s in op.get("steps") or []
    }


def _values(step: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    return {
        **{n: ("inputs", v) for n, v in _keyed(step.get("inputs")).items()},
        **{n: ("calculations", v) for n, v in _keyed(step.get("calculations")).items()},
    }


def _read_values(
    r: _Reader, old: dict[str, Any], new: dict[str, Any], *, subject: str, old_at: str, new_at: str
) -> None:
    before, after = _values(old), _values(new)
    for name, (kind, value) in after.items():
        here = f"{new_at}.{kind}[{name}]"
        noun = "input" if kind == "inputs" else "calculation"
        if name not in before:
            spec = value.get("specification")
            limits = f", specification {_range(spec, value.get('unit', ''))}" if spec else ""
            r.add(
                R,
                f"{subject}: {noun} {_value_name(value)} added{limits}",
                [*flatten(value, here), f"{here}.position", f"{new_at}.{kind}"],
            )
            continue
        old_kind, old_value = before[name]
        label = str(value.get("label") or name)
        r.fields(
            {k: v for k, v in old_value.items() if k != "name"},
            {k: v for k, v in value.items() if k != "name"},
            value_fields(label, str(old_value.get("unit", "")), str(value.get("unit", ""))),
            subject=subject,
            old_prefix=f"{old_at}.{old_kind}[{name}]",
            new_prefix=here,
        )
    for name, (kind, value) in before.items():
        if name not in after:
            here = f"{old_at}.{kind}[{name}]"
            noun = "input" if kind == "inputs" else "calculation"
            r.add(
                R,
                f"{subject}: {noun} {_value_name(value)} removed",
                [*flatten(value, here), f"{here}.position", f"{old_at}.{kind}"],
            )
    for kind in ("inputs", "calculations"):
        r.order(
            "values",
            list(_keyed(old.get(kind))),
            list(_keyed(new.get(kind))),
            {n: f"{subject}, {kind[:-1]} '{n}'" for n in _keyed(new.get(kind))},
        )


def _range(spec: dict[str, Any], unit: str) -> str:
    low, high = spec.get("low"), spec.get("high")
    if low is not None and high is not None:
        return f"{low}–{high} {unit}".rstrip()
    return f"at least {show(low, unit)}" if low is not None else f"at most {show(high, unit)}"


def describe(old: dict[str, Any], new: dict[str, Any]) -> Comparison:
    """Two canonical recipe documents as a reviewer reads the change: by tier, then in recipe order."""
    r = _Reader()
    r.fields(
        old.get("recipe") or {},
        new.get("recipe") or {},
        header_fields(old.get("recipe") or {}, new.get("recipe") or {}),
        subject="Recipe",
        old_prefix="recipe",
        new_prefix="recipe",
    )
    old_ops, new_ops = _keyed(old.get("operations")), _keyed(new.get("operations"))
    for key, op in new_ops.items():
        here = f"operations[{key}]"
        if key not in old_ops:
            r.add(
                R,
                f"Operation {_op_name(op)} ({key}) added with {len(op.get('steps') or [])} steps",
                [f"{here}.position", *flatten({k: v for k, v in op.items() if k != "steps"}, here)],
            )
            continue
        without = {k: v for k, v in old_ops[key].items() if k != "steps"}
        r.fields(
            without,
            {k: v for k, v in op.items() if k != "steps"},
            operation_fields(without, op),
            subject=f"Operation {_op_name(op)} ({key})",
            old_prefix=here,
            new_prefix=here,
        )
    for key, op in old_ops.items():
        if key not in new_ops:
            here = f"operations[{key}]"
            r.add(
                R,
                f"Operation {_op_name(op)} ({key}) removed",
                [f"{here}.position", *flatten({k: v for k, v in op.items() if k != "steps"}, here)],
            )
    r.order(
        "operations",
        list(old_ops),
        list(new_ops),
        {k: f"operation {_op_name(o)}" for k, o in new_ops.items()},
    )

    old_steps, new_steps = _steps(old), _steps(new)
    for key, (op, step) in new_steps.items():
        here = f"operations[{op['key']}].steps[{key}]"
        if key not in old_steps:
            where = f"to operation {_op_name(op)} as step {op['steps'].index(step) + 1}"
            what = (
                f", charging {step['material']['quantity']} {step['material']['unit']} of {step['material']['code']}"
                if step.get("material")
                else ""
            )
            r.add(
                R,
                f"{_step_name(step)} added {where} ({_kind(step)}{what})",
                [f"{here}.position", *flatten(step, here), f"operations[{op['key']}].steps"],
            )
            r.materials |= _material_codes(step)
            continue
        old_op, old_step = old_steps[key]
        there = f"operations[{old_op['key']}].steps[{key}]"
        before = len(r.found)
        r.fields(
            {k: v for k, v in old_step.items() if k not in ("inputs", "calculations", "key")},
            {k: v for k, v in step.items() if k not in ("inputs", "calculations", "key")},
            step_fields(old_step, step),
            subject=_step_name(step),
            old_prefix=there,
            new_prefix=here,
            special={"after": _waits},
        )
        _read_values(r, old_step, step, subject=_step_name(step), old_at=there, new_at=here)
        if any(
            p.startswith((f"{there}.material", f"{here}.material", f"{there}.sampling", f"{here}.sampling"))
            for d in r.found[before:]
            for p in d.paths
        ):
            r.materials |= _material_codes(old_step) | _material_codes(step)
        if old_op["key"] != op["key"]:
            r.moved.setdefault("steps", []).append(
                f"'{step.get('title')}' ({key}) from operation {_op_name(old_op)} to {_op_name(op)}"
            )
            r.moved_paths += [
                *flatten(old_step, there),
                *flatten(step, here),
                f"{there}.position",
                f"{here}.position",
            ]
    for key, (op, step) in old_steps.items():
        if key not in new_steps:
            here = f"operations[{op['key']}].steps[{key}]"
            r.add(
                R,
                f"{_step_name(step)} removed from operation {_op_name(op)} ({_kind(step)})",
                [f"{here}.position", *flatten(step, here)],
            )
            r.materials |= _material_codes(step)
    for key, op in new_ops.items():
        old_keys = [str(s["key"]) for s in (old_ops.get(key) or {}).get("steps") or []]
        new_keys = [str(s["key"]) for s in op.get("steps") or []]
        r.order(
            "steps",
            old_keys,
            new_keys,
            {k: f"'{new_steps[k][1].get('title')}' ({k}) in {_op_name(op)}" for k in new_keys},
        )
    return _assemble(r, flatten(old), flatten(new))


def _counted(n: int, noun: str) -> str:
    return f"{n} {noun if n != 1 else noun[:-1]}"


def _order_line(r: _Reader, position_paths: list[str]) -> Described | None:
    if not r.moved and not r.renumbered:
        return None
    parts = [f"{_counted(len(moves), noun)} moved: " + "; ".join(moves) for noun, moves in r.moved.items()]
    if r.renumbered:
        counted = ", ".join(_counted(n, noun) for noun, n in r.renumbered.items())
        parts.append(f"{counted} renumbered only because others were added, removed or moved")
    return Described(Tier.ORDER, "Order: " + ". ".join(parts), paths=tuple(position_paths))


def _assemble(r: _Reader, a: dict[str, Any], b: dict[str, Any]) -> Comparison:
    raw = _raw(a, b)
    lines = sorted(r.found, key=lambda d: d.tier)  # stable: recipe order within a tier
    order = _order_line(r, [c.path for c in raw if c.path.endswith(".position")] + r.moved_paths)
    if order is not None:
        lines.append(order)
    cover: dict[str, tuple[int, Described]] = {}
    for i, d in enumerate(lines):
        for p in d.paths:
            cover.setdefault(p, (i, d))
    rows = []
    for c in raw:
        i, d = cover.get(c.path) or (len(lines), _unknown(c))
        rows.append((d.tier, i, replace(c, tier=int(d.tier), words=d.words)))
    return Comparison(
        lines=lines,
        changes=[c for _, _, c in sorted(rows, key=lambda row: (row[0], row[1], row[2].path))],
        materials=frozenset(r.materials),
    )


def _unknown(c: Change) -> Described:
    """A path no reading above claims (a field of a newer format): shown as it is, as a tier 1 change."""
    return Described(Tier.LIMIT, sentence(c.path, c.old, c.new, FieldWords(c.path, Tier.LIMIT)))


def compare(old: Any, new: Any) -> list[Change]:
    """Every changed path of the document, most important first, each with the sentence that covers it."""
    return describe(old, new).changes
