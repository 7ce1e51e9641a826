"""What a message handler is given and what it answers: applied, parked (waiting for keys) or refused.

A handler (``orders.py``, ``material.py``) judges the whole message before it
writes anything and either applies it, or returns that it waits for something
Batchline does not know yet, or raises :class:`MessageRefused` in words. The
runner (``inbound.py``) rolls back whatever a handler wrote unless it applied.

What a parked message waits for is named by a key: ``material:CODE`` (a
material's master data in force), ``recipe:PRODUCT`` (an effective recipe of
the product), ``order:ID`` (an order from the ERP made into a batch).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from batchline.audit.services import Actor

from .b2mml import Envelope
from .models import InboundMessage


@dataclass(frozen=True)
class Context:
    actor: Actor
    message: InboundMessage
    env: Envelope
    body: bytes


@dataclass(frozen=True)
class Outcome:
    state: str  # "applied" or "parked"
    code: str
    lines: tuple[str, ...]
    waits_for: tuple[str, ...] = ()
    # Keys that became known by applying it (an order made into a batch), told once it commits.
    announce: tuple[str, ...] = ()


class MessageRefused(Exception):
    """The message cannot be applied; ``lines`` say why, each a sentence."""

    def __init__(self, code: str, *lines: str) -> None:
        super().__init__(" ".join(lines))
        self.code = code
        self.lines = lines


def applied(code: str, lines: Sequence[str], *, announce: Sequence[str] = ()) -> Outcome:
    return Outcome("applied", code, tuple(lines), announce=tuple(announce))


def parked(lines: Sequence[str], waits_for: Sequence[str]) -> Outcome:
    return Outcome("parked", "WAITING", tuple(lines), waits_for=tuple(sorted(set(waits_for))))


def key_words(key: str) -> str:
    """What a key waits for, in words."""
    kind, _, code = key.partition(":")
    return {
        "material": f"material {code} in the master data (its definition approved by QA)",
        "recipe": f"an effective master recipe of product {code}",
        "order": f"order {code} (its ProcessOperationsSchedule applied)",
    }.get(kind, key)


@dataclass
class Missing:
    """Keys a message waits for, gathered while it is judged, with the sentence for each."""

    keys: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)

    def add(self, key: str, line: str) -> None:
        if key not in self.keys:
            self.keys.append(key)
            self.lines.append(line)

    def __bool__(self) -> bool:
        return bool(self.keys)

    def outcome(self) -> Outcome:
        return parked(self.lines, self.keys)


def first(items: Sequence[Any]) -> Any:
    return items[0] if items else None
