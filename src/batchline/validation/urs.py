"""The requirement catalogue (the URS a plant's validation references), read from its Markdown.

``urs.md`` in this package is the catalogue Batchline is built against
(``shared/REQUIREMENTS.md`` at the time of the release; tests/validation holds
the two equal while both exist), shipped with every validation package. Each
table row whose first cell is an ID (``P11-05``) is a requirement; its last
cell, where it is a priority (``P0``, ``P1 (EU)``), is its priority.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

URS_FILE = Path(__file__).with_name("urs.md")
ROW = re.compile(r"^\| ([A-Z][A-Z0-9]*-[0-9]+) \|(.*)\|\s*$")
PRIORITY = re.compile(r"^(P[0-2])\b")
ID = re.compile(r"^[A-Z][A-Z0-9]*-[0-9]+$")


@dataclass(frozen=True)
class Requirement:
    id: str
    section: str  # the heading it stands under, e.g. "1. 21 CFR Part 11 → software requirements"
    cells: tuple[str, ...]  # the row's other cells, as written
    priority: str | None  # P0, P1, P2, or None where the table has no priority column
    line: int

    @property
    def family(self) -> str:
        """The ID's prefix: ``P11``, ``A11``, ``DI``, ``WD``…"""
        return self.id.rsplit("-", 1)[0]

    @property
    def text(self) -> str:
        """What the system shall do: the longest cell of the row (tables differ in their columns)."""
        body = self.cells[:-1] if self.priority else self.cells
        return max(body, key=len) if body else ""


def requirements(text: str | None = None) -> list[Requirement]:
    """Every requirement of the catalogue, in its order; ``text`` defaults to the shipped ``urs.md``."""
    if text is None:
        text = URS_FILE.read_text(encoding="utf-8")
    out, section, seen = [], "", set()
    for number, line in enumerate(text.splitlines(), start=1):
        if line.startswith("#"):
            section = line.lstrip("#").strip()
            continue
        match = ROW.match(line)
        if match is None:
            continue
        rid = match.group(1)
        if rid in seen:
            raise ValueError(f"urs.md line {number}: {rid} is listed twice")
        seen.add(rid)
        cells = tuple(c.strip() for c in match.group(2).split("|"))
        priority = PRIORITY.match(cells[-1]) if cells else None
        out.append(Requirement(rid, section, cells, priority.group(1) if priority else None, number))
    return out
