"""A container label as a one-page PDF, 100 x 70 mm, with ReportLab (STACK.md).

Same fields and places as the ZPL (layout.py). The DataMatrix is drawn module by module
from datamatrix.py (GS1 with FNC1 when the label has a GTIN), so it prints sharp at any
resolution. Fonts are the Bitstream Vera fonts that ship inside ReportLab, embedded in
the file, so the label looks the same wherever it is opened; they cover Latin scripts.
"""

from __future__ import annotations

import io
from functools import cache

from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas

from batchline.labels import layout
from batchline.labels.container import ContainerLabel
from batchline.labels.datamatrix import modules

REGULAR, BOLD = "BatchlineVera", "BatchlineVeraBold"
_NARROWEST = 60  # per cent: narrow text down to this before shortening it
_BASELINE = 0.8  # of the font size, below the top of the text


@cache
def _fonts() -> None:
    pdfmetrics.registerFont(TTFont(REGULAR, "Vera.ttf"))
    pdfmetrics.registerFont(TTFont(BOLD, "VeraBd.ttf"))


def render_pdf(label: ContainerLabel) -> bytes:
    """The label as PDF bytes; the same label gives the same bytes (ReportLab's invariant mode)."""
    _fonts()
    buffer = io.BytesIO()
    page = Canvas(buffer, pagesize=(layout.WIDTH * mm, layout.HEIGHT * mm), invariant=True, pageCompression=1)
    page.setTitle(f"Container label {label.container_id}")
    page.setAuthor("Batchline")
    page.setCreator("Batchline")
    page.setSubject(("Reprint " if label.reprint else "") + f"print {label.print_count}")

    for piece in layout.texts(label):
        font = BOLD if piece.bold else REGULAR
        size = piece.size * mm
        if piece.reverse:
            page.setFillGray(0)
            top = layout.HEIGHT - piece.y
            page.rect(
                piece.x * mm,
                (top - layout.HEADER_HEIGHT) * mm,
                piece.box_width * mm,
                layout.HEADER_HEIGHT * mm,
                0,
                1,
            )
            page.setFillGray(1)
            text, scale = _fit(piece.text, font, size, (piece.box_width - 2) * mm)
            width = pdfmetrics.stringWidth(text, font, size) * scale / 100
            x = piece.x * mm + (piece.box_width * mm - width) / 2
            baseline = (top - (layout.HEADER_HEIGHT + piece.size * 0.72) / 2) * mm
            _draw(page, x, baseline, text, font, size, scale)
            page.setFillGray(0)
        else:
            text, scale = _fit(piece.text, font, size, piece.max_width * mm)
            baseline = (layout.HEIGHT - piece.y - piece.size * _BASELINE) * mm
            _draw(page, piece.x * mm, baseline, text, font, size, scale)

    barcode = label.barcode()
    grid = modules(barcode.data, gs1=barcode.gs1)
    module = layout.module_size(len(grid)) * mm
    left = layout.BARCODE_X * mm + module  # one module of quiet zone inside the area
    top = (layout.HEIGHT - layout.BARCODE_Y) * mm - module
    page.setFillGray(0)
    for row_index, row in enumerate(grid):
        y = top - (row_index + 1) * module
        column = 0
        while column < len(row):  # one rectangle per run of dark modules
            if not row[column]:
                column += 1
                continue
            start = column
            while column < len(row) and row[column]:
                column += 1
            page.rect(left + start * module, y, (column - start) * module, module, 0, 1)
    page.showPage()
    page.save()
    return buffer.getvalue()


def fits(text: str, *, size: float, width: float, bold: bool) -> bool:
    """Whether ``text`` prints whole (narrowed at most to 60 %) at this height in this width, in mm."""
    _fonts()
    return _fit(text, BOLD if bold else REGULAR, size * mm, width * mm)[0] == text


def _fit(text: str, font: str, size: float, available: float) -> tuple[str, float]:
    """The text and horizontal scale (per cent) that fit ``available`` points: narrower, then shortened."""
    width = pdfmetrics.stringWidth(text, font, size)
    if width <= available:
        return text, 100.0
    scale = 100 * available / width
    if scale >= _NARROWEST:
        return text, scale
    while text and pdfmetrics.stringWidth(text + "...", font, size) * _NARROWEST / 100 > available:
        text = text[:-1]
    return text + "...", float(_NARROWEST)


def _draw(page: Canvas, x: float, baseline: float, text: str, font: str, size: float, scale: float) -> None:
    line = page.beginText(x, baseline)
    line.setFont(font, size)
    line.setHorizScale(scale)
    line.textOut(text)
    page.drawText(line)
