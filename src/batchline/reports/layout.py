"""The record PDF's building blocks: text, quantities and times as printed, and a story of sections
and tables whose cells always fit their columns.

:class:`Story` is what each section of ``pdf.py`` writes into; a new section
needs only these:

- ``story.section(title)`` a numbered heading (level 1), ``story.heading(text)`` a sub-heading;
- ``story.say(text, style)`` plain text (escaped, every character printable), ``story.para(markup)``
  ReportLab paragraph markup;
- ``story.table(head, rows, widths, marks=())`` a grid: ``widths`` are shares of the frame's
  width, every cell is wrapped to its column (at spaces, after ``_ - / . :`` inside a long code,
  inside a word only when nothing else fits), a cell longer than a page goes on in the rows below,
  ``marks`` are the rows shaded as out of specification; no rows prints "None recorded.";
- ``story.fields([(label, value), ...])`` a two-column table of labelled values (the header);
- the formatters below: :func:`text` (never "None"), :func:`amount` (a quantity with its unit at
  the recipe's precision), :func:`who` (a person as they were named when they acted),
  :class:`Times` (a time in the site's zone, with the zone), :func:`changes` (an audit entry's
  changes as ``field: old → new``).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

from reportlab.lib import colors
from reportlab.lib.styles import ParagraphStyle
from reportlab.pdfbase import pdfmetrics
from reportlab.platypus import Paragraph, Table, TableStyle

from .pdfa import BOLD, ITALIC, REGULAR, printable

NONE = "None recorded."
CELL_FONT_SIZE = 7
ROW_LINES = 40  # lines of 7-point text in one table row: well inside a landscape page's frame
SHORT = 160  # characters of one changed field shown in the audit appendix before it is shortened


def styles() -> dict[str, ParagraphStyle]:
    base = ParagraphStyle("body", fontName=REGULAR, fontSize=8, leading=10)
    return {
        "body": base,
        "small": ParagraphStyle("small", parent=base, fontSize=7, leading=8.5),
        "title": ParagraphStyle("title", parent=base, fontName=BOLD, fontSize=15, leading=19, spaceAfter=6),
        "h1": ParagraphStyle(
            "h1", parent=base, fontName=BOLD, fontSize=11, leading=14, spaceBefore=8, spaceAfter=4
        ),
        "h2": ParagraphStyle(
            "h2", parent=base, fontName=BOLD, fontSize=9, leading=11, spaceBefore=6, spaceAfter=2
        ),
        "sig": ParagraphStyle("sig", parent=base, fontName=ITALIC),
        "alert": ParagraphStyle("alert", parent=base, textColor=colors.HexColor("#a00000")),
    }


# --- what a value prints as --------------------------------------------------------------------


def text(value: Any) -> str:
    """A value as printed: nothing for a missing one, never the word "None"."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def decimals(written: Any) -> int | None:
    """The decimals a number was written with in the recipe (``"0.50"`` has 2); None if it is none."""
    try:
        return max(-int(Decimal(str(written)).as_tuple().exponent), 0)
    except (InvalidOperation, ValueError, TypeError):
        return None


def amount(value: Any, unit: str = "", *, places: int | None = None) -> str:
    """A stored quantity (the ledger keeps six decimals) as a person writes it: its own significant
    decimals, at least ``places`` (the recipe's precision for it): ``0.5013 kg``, ``10.1 kg``, ``12.000 kg``
    for a recipe quantity written ``12.000``. Text that is not a number prints as it is; nothing
    prints for a missing value (not "None kg")."""
    if value is None or value == "":
        return ""
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return f"{value} {unit}".strip()
    if not number.is_finite():
        return f"{value} {unit}".strip()
    own = max(-int(number.normalize().as_tuple().exponent), 0)
    shown = f"{number:.{max(own, places or 0)}f}"
    return f"{shown} {unit}".strip()


def who(person: Any) -> str:
    """The name as it stood when the person acted; a later change of name shows beside it."""
    if not person:
        return ""
    if isinstance(person, dict):
        now = f", now {person['name_now']}" if person.get("name_now") else ""
        return f"{person.get('name', '')} ({person.get('username', '')}{now})"
    return str(person)


class Times:
    """A time as printed: in one zone for the whole document, with the zone's name."""

    def __init__(self, zone: ZoneInfo) -> None:
        self.zone = zone

    def __call__(self, iso: str | None) -> str:
        if not iso:
            return ""
        at = dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(self.zone)
        return at.strftime("%Y-%m-%d %H:%M:%S %Z")


def shorten(value: str, limit: int = SHORT) -> str:
    if len(value) <= limit:
        return value
    return f"{value[:limit]}… [{len(value) - limit:,} more characters: the full value is in the JSON record]"


def _json_text(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def changes(raw: Any) -> str:
    """An audit entry's changes, one line per field: ``field: old → new`` (``field: new`` when the
    entry creates the record), each side shortened past :data:`SHORT` characters; fields an entry
    leaves as they were, or a creation leaves empty, are left out."""
    try:
        fields = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return shorten(str(raw))
    if not isinstance(fields, dict):
        return shorten(_json_text(fields))
    lines = []
    for name in sorted(fields):
        change = fields[name]
        if isinstance(change, list) and len(change) == 2:
            old, new = change
            if old == new or (old is None and new == ""):
                continue
            new_text = shorten(_json_text(new))
            lines.append(
                f"{name}: {new_text}" if old is None else f"{name}: {shorten(_json_text(old))} → {new_text}"
            )
        else:
            lines.append(f"{name}: {shorten(_json_text(change))}")
    return "\n".join(lines)


# --- fitting text into a column -------------------------------------------------------------------

_BREAK_AFTER = "_-/.:,;"


def wrap(value: Any, width: float, font: str = REGULAR, size: float = CELL_FONT_SIZE) -> list[str]:
    """``value`` as printable lines no wider than ``width`` points: broken at spaces; a word too wide
    alone (a code, a hash, JSON) breaks after its last ``_ - / . : , ;`` that fits, else between
    characters, so nothing runs into the next column."""
    width = max(width, size)
    measure = pdfmetrics.stringWidth
    lines: list[str] = []
    for paragraph in printable(text(value)).split("\n"):
        if measure(paragraph, font, size) <= width:
            lines.append(paragraph)
            continue
        line = ""
        for word in paragraph.split(" "):
            candidate = f"{line} {word}" if line else word
            if measure(candidate, font, size) <= width:
                line = candidate
                continue
            if line:
                lines.append(line)
            line = ""
            while measure(word, font, size) > width:
                cut = 1
                while cut < len(word) and measure(word[: cut + 1], font, size) <= width:
                    cut += 1
                soft = max((i + 1 for i in range(cut) if word[i] in _BREAK_AFTER), default=0)
                cut = soft if soft > cut // 3 else cut
                lines.append(word[:cut])
                word = word[cut:]
            line = word
        lines.append(line)
    return lines


_GRID = [
    ("FONT", (0, 0), (-1, -1), REGULAR, CELL_FONT_SIZE),
    ("FONT", (0, 0), (-1, 0), BOLD, CELL_FONT_SIZE),
    ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8e8e8")),
    ("GRID", (0, 0), (-1, -1), 0.25, colors.HexColor("#999999")),
    ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ("LEFTPADDING", (0, 0), (-1, -1), 2),
    ("RIGHTPADDING", (0, 0), (-1, -1), 2),
    ("TOPPADDING", (0, 0), (-1, -1), 1),
    ("BOTTOMPADDING", (0, 0), (-1, -1), 1),
]
_PADDING = 4  # a cell's left and right padding together


class Story:
    """The flowables of one document, written section by section."""

    def __init__(self, width: float) -> None:
        self.width = width
        self.s = styles()
        self.flowables: list[Any] = []

    def p(self, markup: str, style: str = "body") -> Paragraph:
        return Paragraph(printable(markup), self.s[style])

    def para(self, markup: str, style: str = "body") -> None:
        """ReportLab paragraph markup (escape what comes from the record)."""
        self.flowables.append(self.p(markup, style))

    def say(self, value: Any, style: str = "body") -> None:
        """Plain text from the record: escaped, every character printable."""
        self.flowables.append(self.p(escape(text(value)), style))

    def section(self, title: str) -> None:
        self.say(title, "h1")

    def heading(self, title: str) -> None:
        self.say(title, "h2")

    def table(
        self,
        head: Sequence[str],
        rows: Iterable[Sequence[Any]],
        widths: Sequence[float],
        marks: Sequence[int] = (),
        *,
        empty: str = NONE,
    ) -> None:
        """A grid whose every cell fits its column; ``widths`` are shares of the frame's width."""
        inner = [w * self.width - _PADDING for w in widths]
        head_row = ["\n".join(wrap(h, inner[i], BOLD)) for i, h in enumerate(head)]
        data, shaded = _rows(rows, inner, marks, first=1)
        if not data:
            self.say(empty)
            return
        style = TableStyle(_GRID)
        for row in shaded:
            style.add("BACKGROUND", (0, row), (-1, row), colors.HexColor("#fde8e8"))
        self._grid([head_row, *data], widths, style, repeat=1)

    def fields(self, rows: Sequence[tuple[str, Any]], label_share: float = 0.22) -> None:
        """Labelled values, the label in bold (the header, a deviation's texts); a value longer than
        a page goes on in the rows below, like any cell."""
        widths = [label_share, 1 - label_share]
        inner = [w * self.width - _PADDING for w in widths]
        data, _ = _rows(rows, inner, (), first=0, fonts=(BOLD, REGULAR))
        style = TableStyle([*_GRID[:1], ("FONT", (0, 0), (0, -1), BOLD, CELL_FONT_SIZE), *_GRID[3:]])
        self._grid(data, widths, style, repeat=0)

    def _grid(self, data: list[list[str]], widths: Sequence[float], style: TableStyle, repeat: int) -> None:
        grid = Table(data, colWidths=[w * self.width for w in widths], repeatRows=repeat)
        grid.setStyle(style)
        self.flowables.append(grid)


def _rows(
    rows: Iterable[Sequence[Any]],
    inner: Sequence[float],
    marks: Sequence[int],
    *,
    first: int,
    fonts: Sequence[str] = (),
) -> tuple[list[list[str]], list[int]]:
    """Table rows of wrapped cells, and the indexes (counting from ``first``) of those to shade.

    A table row cannot break across pages: a cell longer than a page's worth of lines goes on in
    the rows below it (the other cells of those rows are empty)."""
    data: list[list[str]] = []
    shaded: list[int] = []
    marked = set(marks)
    for n, row in enumerate(rows):
        cells = [wrap(x, inner[i], fonts[i] if i < len(fonts) else REGULAR) for i, x in enumerate(row)]
        for start in range(0, max(len(c) for c in cells), ROW_LINES):
            if n in marked:
                shaded.append(first + len(data))
            data.append(["\n".join(c[start : start + ROW_LINES]) for c in cells])
    return data, shaded
