"""Every code a gate can refuse with has its own line in the exception taxonomy (RBE-01).

A refused attempt is recorded as ``REFUSED_<code>`` and classified by
rules/exceptions.py; a code the table lacks falls to "process / refused attempt"
with no material or equipment named, which is how a quarantined lot once read as
an operator slip. The codes are read from the sources of the gates (every module
of ``batchline.rules``) and of the step actions whose refusals are recorded
(``batchline.execution``), so a new gate or a new reason cannot slip past the
table: the test finds it, nobody has to remember to copy it here.
"""

from __future__ import annotations

import ast
import datetime as dt
import importlib
import inspect
import pathlib
import re
from collections.abc import Iterator

import pytest

import batchline
from batchline.rules import exceptions, materials

SRC = pathlib.Path(batchline.__file__).parent
# A code is SHOUTED_WITH_UNDERSCORES or one long word (QUANTITY); short capitals are protocol
# words (the scale's "ES", "SIR"), not codes.
CODE = re.compile(r"^[A-Z][A-Z0-9]*(_[A-Z0-9]+)+$|^[A-Z]{5,}$")
# Calls that carry a refusal code as their first argument.
EMITTERS = {"Reason", "because", "_refuse"}
# rules/review.py judges QA's own sign-off: its refusals answer the signer and are never recorded
# on the batch as exceptions (quality services do not record refusals).
NOT_RECORDED = {"rules/review.py"}
# A return to stock or a waste of what is left of a dispensed container is refused to the person
# at once and writes nothing (nothing happened to the product): never recorded as an exception.
NOT_RECORDED |= {"rules/returns.py", "execution/returns.py"}
# execution/prompts.py asks the operator to confirm a value outside its specification before it is
# recorded: a question, never recorded (the value, once confirmed, raises its own exception).
NOT_RECORDED |= {"execution/prompts.py"}
# An alarm's acknowledgement is refused to the person acknowledging and writes nothing; the step's
# completion refusal there (ALARM_UNACKNOWLEDGED) is listed in the table all the same.
NOT_RECORDED |= {"execution/monitoring.py"}


def _modules() -> list[pathlib.Path]:
    found = [*sorted((SRC / "rules").glob("*.py")), *sorted((SRC / "execution").glob("*.py"))]
    return [p for p in found if str(p.relative_to(SRC)) not in NOT_RECORDED]


def _module_name(path: pathlib.Path) -> str:
    return "batchline." + ".".join(path.relative_to(SRC).with_suffix("").parts)


class _Source:
    """One module's tree, with what a name in it was assigned and which names are parameters."""

    def __init__(self, path: pathlib.Path) -> None:
        self.path = path
        self.tree = ast.parse(path.read_text())
        self.parents: dict[ast.AST, ast.AST] = {
            child: node for node in ast.walk(self.tree) for child in ast.iter_child_nodes(node)
        }
        self.assigned: dict[str, list[ast.expr]] = {}
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        self.assigned.setdefault(target.id, []).append(node.value)

    def enclosing(self, node: ast.AST, kind: type | tuple[type, ...]) -> ast.AST | None:
        while node in self.parents:
            node = self.parents[node]
            if isinstance(node, kind):
                return node
        return None

    def is_parameter(self, node: ast.Name) -> bool:
        function = self.enclosing(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            return False
        a = function.args
        return node.id in {x.arg for x in [*a.posonlyargs, *a.args, *a.kwonlyargs]}


def _constants(expr: ast.AST) -> set[str]:
    return {
        n.value
        for n in ast.walk(expr)
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and CODE.match(n.value)
    }


def _error_codes(error: type) -> set[str]:
    """The codes an error class carries: its and its subclasses' ``code``, and what they are built with."""
    classes, todo = set(), [error]
    while todo:
        c = todo.pop()
        if c not in classes:
            classes.add(c)
            todo.extend(c.__subclasses__())
    codes = {c.code for c in classes if isinstance(getattr(c, "code", None), str)}  # type: ignore[attr-defined]
    names = {c.__name__ for c in classes}
    for path in {pathlib.Path(inspect.getsourcefile(c) or "") for c in classes}:
        source = _Source(path)
        for node in ast.walk(source.tree):
            if (  # ScanError("SCAN_EMPTY", ...)
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in names
                and node.args
            ):
                codes |= _codes_of(node.args[0], source)
            target = node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else None
            if isinstance(target, ast.Attribute) and target.attr == "code":  # self.code = ERRORS[e][0]
                assert isinstance(node, ast.Assign)
                codes |= _codes_of(node.value, source)
    return codes


def _codes_of(expr: ast.expr, source: _Source) -> set[str]:
    """Every code ``expr`` can be, following names to what they were assigned and ``exc.code`` to its error."""
    codes = _constants(expr)
    for n in ast.walk(expr):
        if isinstance(n, ast.Name) and not source.is_parameter(n):
            for value in source.assigned.get(n.id, []):
                codes |= _codes_of(value, source)
        if isinstance(n, ast.Attribute) and n.attr == "code" and isinstance(n.value, ast.Name):
            handler = source.enclosing(n, ast.ExceptHandler)
            assert isinstance(handler, ast.ExceptHandler) and handler.name == n.value.id and handler.type, (
                f"{source.path}:{n.lineno}: a code read from {n.value.id!r} that is not a caught error"
            )
            module = importlib.import_module(_module_name(source.path))
            error = eval(ast.unparse(handler.type), vars(module))  # the class the handler names
            codes |= _error_codes(error)
    return codes


def gate_codes() -> Iterator[tuple[str, str]]:
    """(code, where) for every refusal a gate or a recorded step action can give."""
    for path in _modules():
        source = _Source(path)
        for node in ast.walk(source.tree):
            if not (isinstance(node, ast.Call) and node.args):
                continue
            f = node.func
            name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""
            if name not in EMITTERS:
                continue
            first = node.args[0]
            where = f"{path.relative_to(SRC)}:{node.lineno}"
            if isinstance(first, ast.Name) and source.is_parameter(first):
                continue  # passed through (Refused.because): its callers are walked themselves
            codes = _codes_of(first, source)
            assert codes, f"{where}: the refusal code {ast.unparse(first)!r} cannot be read from the source"
            for code in codes:
                yield code, where


@pytest.mark.req("RBE-01")
def test_the_walk_finds_the_gates_codes_including_those_behind_a_mapping_or_a_caught_error() -> None:
    found = {code for code, _ in gate_codes()}
    # a lot status mapping (rules/materials.py), a plain gate (rules/gates.py), a scanner's error
    # (labels/scan.py via execution/charging.py), a scale's answer (devices/mtsics.py via dispensing)
    assert {"LOT_IN_QUARANTINE", "LOT_REJECTED", "LOT_BLOCKED", "LOT_NOT_RELEASED"} <= found
    assert {"PREDECESSOR_OPEN", "QUALIFICATION_EXPIRED", "VALUE_IMPLAUSIBLE", "EQUIPMENT_DIRTY"} <= found
    assert {"SCAN_BAD_CHECK_DIGIT", "SCALE_OVERLOAD", "SCALE_SYNTAX_ERROR", "SCALE_NOT_READY"} <= found


@pytest.mark.req("RBE-01", "DEV-01")
def test_every_code_a_gate_can_refuse_with_has_its_own_taxonomy_entry() -> None:
    missing = sorted(
        {f"{code} ({where})" for code, where in gate_codes() if not exceptions.refusal_known(code)}
    )
    assert not missing, "codes without a line in rules/exceptions.py _REFUSAL: " + ", ".join(missing)


@pytest.mark.req("RBE-01", "MAT-01")
@pytest.mark.parametrize("status", [*materials.LOT_STATUS_LABELS, "on hold"])
def test_every_lot_status_the_gate_refuses_is_a_material_condition_naming_the_material(status: str) -> None:
    now = dt.datetime(2026, 12, 6, 12, tzinfo=dt.UTC)
    lot = materials.LotView("L-1", "PCM", "Paracetamol", status, now + dt.timedelta(days=30))
    verdict = materials.lot_usable(lot, now)
    if status == materials.RELEASED:
        assert verdict.allowed
        return
    (code,) = verdict.codes
    kind = exceptions.classify(exceptions.REFUSED_PREFIX + code)
    assert (kind.category, kind.kind, kind.subject) == ("resource", "material condition failed", "material")


@pytest.mark.req("RBE-01")
def test_a_code_nobody_wrote_down_still_records_as_a_refused_attempt() -> None:
    kind = exceptions.classify("REFUSED_SOMETHING_NEW")
    assert (kind.category, kind.kind, kind.subject) == ("process", "refused attempt", "")
    assert not exceptions.refusal_known("SOMETHING_NEW")
