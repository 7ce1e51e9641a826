"""Where things go on a 100 x 70 mm container label, in millimetres from the top-left corner.

ZPL (zpl.py) and PDF (pdf.py) share this geometry and the text of every field, so the
two renderings of one label say the same things in the same places.
"""

from __future__ import annotations

from dataclasses import dataclass

from batchline.labels.container import Barcode, ContainerLabel, label_lines, statement_lines

WIDTH = 100.0
HEIGHT = 70.0
MARGIN = 3.0

HEADER_Y = 2.5  # the title, the REPRINT marker and the status box
HEADER_HEIGHT = 6.5
HEADER_FONT = 4.2
REPRINT_X, REPRINT_WIDTH = 38.0, 24.0
STATUS_X, STATUS_WIDTH = 64.0, 33.0

NAME_Y = 10.5
NAME_FONT = 4.8

LINES_Y = 17.5
LINE_STEP = 3.8
LINE_FONT = 2.8
CAPTION_X = MARGIN
VALUE_X = 21.0
VALUE_RIGHT = 70.0  # values stop here: the barcode column starts at 72 mm

BARCODE_X = 73.0
BARCODE_Y = 18.0
BARCODE_AREA = 24.0  # the largest symbol side, quiet zone inside the column's margins
MODULE_MAX = 0.75  # mm; GS1 healthcare symbols want 0.254 mm or more
PRINTED_Y = 44.0
SMALL_FONT = 2.2
SMALL_STEP = SMALL_FONT * 1.5
TEMPLATE_Y = PRINTED_Y + 2 * SMALL_STEP  # the template's reference, then its statement (two lines)
TITLE_WIDTH = REPRINT_X - MARGIN - 1

HRI_Y = 61.5
HRI_STEP = 3.3
HRI_FONT = 2.4
HRI_ONE_LINE_MAX = 60  # characters; longer element strings print on two lines


@dataclass(frozen=True, slots=True)
class Text:
    x: float
    y: float  # top of the text
    size: float  # cap height in mm
    text: str
    max_width: float  # mm available; a renderer narrows or shortens text to fit
    bold: bool = False
    reverse: bool = False  # white on a black box (status and REPRINT markers)
    box_width: float = 0.0


def title(label: ContainerLabel) -> str:
    if label.template is not None:
        return label.template.title
    if label.dispense is not None:
        return "DISPENSED MATERIAL"
    return "RETURNED MATERIAL" if label.returned is not None else "MATERIAL CONTAINER"


def hri_lines(barcode: Barcode) -> list[str]:
    """The printed form of the barcode, on one line, or split between elements on two."""
    if len(barcode.hri) <= HRI_ONE_LINE_MAX or ")" not in barcode.hri:
        return [barcode.hri]
    parts = ["(" + part for part in barcode.hri.split("(") if part]
    half = (len(parts) + 1) // 2
    return ["".join(parts[:half]), "".join(parts[half:])]


def texts(label: ContainerLabel) -> list[Text]:
    """Every piece of text on the label, positioned."""
    placed = [Text(MARGIN, HEADER_Y + 1.2, HEADER_FONT, title(label), TITLE_WIDTH, bold=True)]
    if label.reprint:
        placed.append(
            Text(
                REPRINT_X,
                HEADER_Y,
                HEADER_FONT,
                f"REPRINT {label.print_count}",
                REPRINT_WIDTH,
                bold=True,
                reverse=True,
                box_width=REPRINT_WIDTH,
            )
        )
    placed.append(
        Text(
            STATUS_X,
            HEADER_Y,
            HEADER_FONT,
            label.status.value.upper(),
            STATUS_WIDTH,
            bold=True,
            reverse=True,
            box_width=STATUS_WIDTH,
        )
    )
    placed.append(Text(MARGIN, NAME_Y, NAME_FONT, label.material_name, WIDTH - 2 * MARGIN, bold=True))
    for index, (caption, value) in enumerate(label_lines(label)):
        y = LINES_Y + index * LINE_STEP
        placed.append(Text(CAPTION_X, y, LINE_FONT, caption, VALUE_X - CAPTION_X - 1))
        placed.append(Text(VALUE_X, y, LINE_FONT, value, VALUE_RIGHT - VALUE_X, bold=True))
    if label.printed_at is not None:
        placed.append(Text(BARCODE_X, PRINTED_Y, SMALL_FONT, f"Print no. {label.print_count}", BARCODE_AREA))
        placed.append(
            Text(
                BARCODE_X,
                PRINTED_Y + SMALL_STEP,
                SMALL_FONT,
                label.local(label.printed_at),
                BARCODE_AREA,
            )
        )
    if label.template is not None:
        placed.append(
            Text(BARCODE_X, TEMPLATE_Y, SMALL_FONT, f"Template {label.template.reference}", BARCODE_AREA)
        )
        for index, line in enumerate(statement_lines(label.template.statement)):
            y = TEMPLATE_Y + (index + 1) * SMALL_STEP
            placed.append(Text(BARCODE_X, y, SMALL_FONT, line, BARCODE_AREA, bold=True))
    for index, line in enumerate(hri_lines(label.barcode())):
        placed.append(Text(MARGIN, HRI_Y + index * HRI_STEP, HRI_FONT, line, WIDTH - 2 * MARGIN))
    return placed


def module_size(symbol_modules: int) -> float:
    """The module (cell) size in mm for a symbol of this many modules a side, quiet zone included."""
    return min(MODULE_MAX, BARCODE_AREA / (symbol_modules + 2))
