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
    caller's to check first. Iterative, so a chain of thousands of steps is fine.
    """
    preds = {node: list(dict.fromkeys(ps)) for node, ps in predecessors.items()}
    order: list[str] = []
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    for root in preds:
        if state.get(root) == 2:
            continue
        path: list[str] = [root]
        stack: list[tuple[str, int]] = [(root, 0)]
        state[root] = 1
        while stack:
            node, i = stack[-1]
            children = preds.get(node, [])
            if i < len(children):
                stack[-1] = (node, i + 1)
                child = children[i]
                if state.get(child) == 2:
                    continue
                if state.get(child) == 1:
                    raise CycleError([*path[path.index(child) :], child])
                state[child] = 1
                path.append(child)
                stack.append((child, 0))
            else:
                stack.pop()
                path.pop()
                state[node] = 2
                order.append(node)
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
