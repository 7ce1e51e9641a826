"""A small, safe formula language for calculation steps (IPC-02, DI-05).

Formulas are arithmetic over earlier recorded values: numbers, names
(``mean_weight`` or dotted ``compression.weight_1``), ``+ - * /``, unary
minus, parentheses and the functions in ``FUNCTIONS``. They are parsed with
Python's ``ast`` module into a tree that is walked here node by node; nothing
is ever passed to ``eval``, and any other syntax (attributes of objects,
subscripts, comparisons, lambdas, calls of anything else) is refused when the
recipe is imported, with the column where it starts.

Arithmetic is Decimal, so 0.1 + 0.2 is 0.3 and results are reproducible.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, DivisionByZero, InvalidOperation, localcontext

MAX_LENGTH = 500


class FormulaError(ValueError):
    """The formula cannot be parsed or evaluated; the message says why."""


def _mean(*xs: Decimal) -> Decimal:
    if not xs:
        raise FormulaError("mean() needs at least one value")
    return sum(xs, Decimal(0)) / len(xs)


def _sd(*xs: Decimal) -> Decimal:
    """Sample standard deviation (n - 1), as pharmacopoeial uniformity tests use."""
    if len(xs) < 2:
        raise FormulaError("sd() needs at least two values")
    m = _mean(*xs)
    return (sum(((x - m) ** 2 for x in xs), Decimal(0)) / (len(xs) - 1)).sqrt()


def _round(x: Decimal, places: Decimal = Decimal(0)) -> Decimal:
    if places != places.to_integral_value():
        raise FormulaError("round() takes a whole number of places")
    return x.quantize(Decimal(1).scaleb(-int(places)))


def _sqrt(x: Decimal) -> Decimal:
    if x < 0:
        raise FormulaError("sqrt() of a negative number")
    return x.sqrt()


FUNCTIONS: dict[str, Callable[..., Decimal]] = {
    "min": lambda *xs: min(xs),
    "max": lambda *xs: max(xs),
    "abs": abs,
    "sum": lambda *xs: sum(xs, Decimal(0)),
    "mean": _mean,
    "sd": _sd,
    "round": _round,
    "sqrt": _sqrt,
}

# (fewest, most) arguments of each function
ARITY = {
    "min": (1, 99),
    "max": (1, 99),
    "abs": (1, 1),
    "sum": (1, 99),
    "mean": (1, 99),
    "sd": (2, 99),
    "round": (1, 2),
    "sqrt": (1, 1),
}

_BINARY: dict[type[ast.operator], Callable[[Decimal, Decimal], Decimal]] = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
}


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        head = _dotted(node.value)
        return f"{head}.{node.attr}" if head else None
    return None


@dataclass(frozen=True)
class Formula:
    source: str
    tree: ast.Expression
    names: frozenset[str]

    def evaluate(self, values: Mapping[str, Decimal]) -> Decimal:
        missing = sorted(self.names - values.keys())
        if missing:
            raise FormulaError(f"no value recorded yet for {', '.join(missing)}")
        with localcontext() as ctx:
            ctx.prec = 28
            ctx.traps[DivisionByZero] = True
            ctx.traps[InvalidOperation] = True
            try:
                return _eval(self.tree.body, values)
            except FormulaError:
                raise
            except DivisionByZero as exc:
                raise FormulaError("division by zero") from exc
            except (InvalidOperation, ArithmeticError, ValueError, TypeError) as exc:
                raise FormulaError("the result is not a number") from exc


def _eval(node: ast.expr, values: Mapping[str, Decimal]) -> Decimal:
    name = _dotted(node)
    if name is not None:
        return values[name]
    if isinstance(node, ast.Constant):
        return Decimal(str(node.value))
    if isinstance(node, ast.UnaryOp):
        operand = _eval(node.operand, values)
        return -operand if isinstance(node.op, ast.USub) else operand
    if isinstance(node, ast.BinOp):
        return _BINARY[type(node.op)](_eval(node.left, values), _eval(node.right, values))
    if isinstance(node, ast.Call):
        assert isinstance(node.func, ast.Name)
        return FUNCTIONS[node.func.id](*(_eval(a, values) for a in node.args))
    raise FormulaError(f"unexpected {type(node).__name__}")  # parse() lets none through


def _check(node: ast.AST, names: set[str]) -> None:
    where = f" (column {getattr(node, 'col_offset', 0) + 1})"
    name = _dotted(node) if isinstance(node, ast.expr) else None
    if name is not None:
        if name in FUNCTIONS:
            raise FormulaError(f"{name} is a function: call it as {name}(...){where}")
        names.add(name)
        return
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, int | float):
            raise FormulaError(f"only numbers may be written in a formula{where}")
        if not Decimal(str(node.value)).is_finite() or abs(Decimal(str(node.value))) >= Decimal("1e19"):
            raise FormulaError(f"the number is too large{where}")
        return
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        _check(node.operand, names)
        return
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        _check(node.left, names)
        _check(node.right, names)
        return
    if isinstance(node, ast.Call):
        if not (isinstance(node.func, ast.Name) and node.func.id in FUNCTIONS):
            raise FormulaError(f"unknown function{where}; available: {', '.join(sorted(FUNCTIONS))}")
        if node.keywords:
            raise FormulaError(f"functions take plain arguments{where}")
        low, high = ARITY[node.func.id]
        if not low <= len(node.args) <= high:
            wanted = f"{low}" if low == high else f"{low} to {high}" if high < 99 else f"at least {low}"
            raise FormulaError(f"{node.func.id}() takes {wanted} argument(s){where}")
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                raise FormulaError(f"* is not allowed{where}")
            _check(arg, names)
        return
    raise FormulaError(f"{type(node).__name__.lower()} is not allowed in a formula{where}")


def parse(source: str) -> Formula:
    """Parse and check a formula; raises :class:`FormulaError` saying what and where."""
    source = source.strip()
    if not source:
        raise FormulaError("the formula is empty")
    if len(source) > MAX_LENGTH:
        raise FormulaError(f"the formula is longer than {MAX_LENGTH} characters")
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as exc:
        raise FormulaError(f"not a formula: {exc.msg} (column {exc.offset})") from exc
    names: set[str] = set()
    _check(tree.body, names)
    return Formula(source=source, tree=tree, names=frozenset(names))
