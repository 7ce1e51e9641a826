"""Step ordering: a directed acyclic graph (ISA-88 sequential and parallel transitions, P11-06)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping


class CycleError(ValueError):
    def __init__(self, cycle: list[str]) -> None:
        super().__init__("the steps wait for each other in a circle: " + " → ".join(cycle))
        self.cycle = cycle


def topological_order(predecessors: Mapping[str, Iterable[str]]) -> list[str]:
    """Every step after all its predecessors, keeping the given order where free.

    Raises :class:`CycleError` naming one cycle; unknown predecessors are the
    caller's to check first.
    """
    preds = {node: list(dict.fromkeys(ps)) for node, ps in predecessors.items()}
    order: list[str] = []
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done

    def visit(node: str, path: list[str]) -> None:
        if state.get(node) == 2:
            return
        if state.get(node) == 1:
            start = path.index(node)
            raise CycleError([*path[start:], node])
        state[node] = 1
        for p in preds.get(node, []):
            visit(p, [*path, node])
        state[node] = 2
        order.append(node)

    for node in preds:
        visit(node, [])
    return order


def ancestors(node: str, predecessors: Mapping[str, Iterable[str]]) -> set[str]:
    seen: set[str] = set()
    stack = list(predecessors.get(node, []))
    while stack:
        p = stack.pop()
        if p not in seen:
            seen.add(p)
            stack.extend(predecessors.get(p, []))
    return seen
