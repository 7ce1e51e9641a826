"""A label that is a title, a name, captioned lines and a Data Matrix: a sample's, a product's.

The container label (container.py, layout.py) has its own fixed geometry; the labels of the step
kinds with records of their own (a sample, the finished product's label) share this simpler one,
on the same 100 x 70 mm stock. One :class:`Card` is rendered two ways from the same pieces, so
the two say the same things in the same places: as PDF (ReportLab, to print) and as PNG (Pillow,
the specimen kept in the batch record, 21 CFR 211.188(b)(8)).
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from functools import cache

from PIL import Image, ImageDraw, ImageFont
from reportlab import __file__ as _reportlab_file
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas

from batchline.labels.container import Barcode, Template, statement_lines
from batchline.labels.datamatrix import modules

WIDTH, HEIGHT, MARGIN = 100.0, 70.0, 3.0
TITLE_Y, TITLE_SIZE = 3.0, 3.0
NAME_Y, NAME_SIZE = 9.5, 3.4
LINES_Y, LINE_STEP, LINE_SIZE = 16.5, 4.0, 2.4
VALUE_X, VALUE_RIGHT = 20.0, 70.0
BARCODE_X, BARCODE_Y, BARCODE_AREA = 72.0, 17.0, 25.0
HRI_Y, HRI_SIZE = 62.5, 2.4
# Under the lines and the barcode, full width: the template's reference, then its statement.
TEMPLATE_Y, TEMPLATE_SIZE = 46.0, 2.0
STATEMENT_Y, STATEMENT_STEP = 50.0, 3.6
TITLE_WIDTH = 60.0
PNG_DOTS_PER_MM = 8  # 203 dpi, a thermal printer's resolution

_FONTS = os.path.join(os.path.dirname(_reportlab_file), "fonts")
REGULAR, BOLD = "BatchlineVera", "BatchlineVeraBold"


@dataclass(frozen=True, slots=True)
class Text:
    x: float
    y: float  # top, mm from the label's top edge
    size: float  # cap height, mm
    text: str
    max_width: float
    bold: bool = False


@dataclass(frozen=True, slots=True)
class Card:
    title: str
    name: str
    lines: tuple[tuple[str, str], ...]
    barcode: Barcode
    marker: str = ""  # printed beside the title in capitals, e.g. "REPRINT 2" or "SPECIMEN"
    template: Template | None = None  # the approved template (LBL-01): its heading replaces ``title``

    def texts(self) -> list[Text]:
        title = self.template.title if self.template else self.title
        placed = [Text(MARGIN, TITLE_Y, TITLE_SIZE, title, TITLE_WIDTH, bold=True)]
        if self.marker:
            placed.append(Text(66.0, TITLE_Y, TITLE_SIZE, self.marker, WIDTH - 66.0 - MARGIN, bold=True))
        placed.append(Text(MARGIN, NAME_Y, NAME_SIZE, self.name, WIDTH - 2 * MARGIN, bold=True))
        for i, (caption, value) in enumerate(self.lines):
            y = LINES_Y + i * LINE_STEP
            placed.append(Text(MARGIN, y, LINE_SIZE, caption, VALUE_X - MARGIN - 1))
            placed.append(Text(VALUE_X, y, LINE_SIZE, value, VALUE_RIGHT - VALUE_X, bold=True))
        if self.template is not None:
            full = WIDTH - 2 * MARGIN
            placed.append(
                Text(MARGIN, TEMPLATE_Y, TEMPLATE_SIZE, f"Template {self.template.reference}", full)
            )
            for i, line in enumerate(statement_lines(self.template.statement)):
                y = STATEMENT_Y + i * STATEMENT_STEP
                placed.append(Text(MARGIN, y, LINE_SIZE, line, full, bold=True))
        placed.append(Text(MARGIN, HRI_Y, HRI_SIZE, self.barcode.hri, WIDTH - 2 * MARGIN))
        return placed

    def grid(self) -> list[list[bool]]:
        return modules(self.barcode.data, gs1=self.barcode.gs1)

    def module_size(self) -> float:
        return min(0.75, BARCODE_AREA / (len(self.grid()) + 2))


@cache
def _pdf_fonts() -> None:
    pdfmetrics.registerFont(TTFont(REGULAR, "Vera.ttf"))
    pdfmetrics.registerFont(TTFont(BOLD, "VeraBd.ttf"))


def render_pdf(card: Card, *, title: str) -> bytes:
    """The card as a one-page PDF; the same card gives the same bytes (ReportLab's invariant mode)."""
    _pdf_fonts()
    buffer = io.BytesIO()
    page = Canvas(buffer, pagesize=(WIDTH * mm, HEIGHT * mm), invariant=True, pageCompression=1)
    page.setTitle(title)
    page.setAuthor("Batchline")
    page.setCreator("Batchline")
    for piece in card.texts():
        font = BOLD if piece.bold else REGULAR
        size = piece.size / 0.72 * mm  # cap height to font size
        text = _fit(
            piece.text, lambda t, f=font, s=size: pdfmetrics.stringWidth(t, f, s), piece.max_width * mm
        )
        page.setFont(font, size)
        page.drawString(piece.x * mm, (HEIGHT - piece.y - piece.size) * mm, text)
    grid, module = card.grid(), card.module_size()
    left, top = BARCODE_X + module, HEIGHT - BARCODE_Y - module
    for r, row in enumerate(grid):
        for c, dark in enumerate(row):
            if dark:
                page.rect(
                    (left + c * module) * mm, (top - (r + 1) * module) * mm, module * mm, module * mm, 0, 1
                )
    page.showPage()
    page.save()
    return buffer.getvalue()


@cache
def _png_font(bold: bool, pixels: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(os.path.join(_FONTS, "VeraBd.ttf" if bold else "Vera.ttf"), pixels)


def render_png(card: Card, *, dots_per_mm: int = PNG_DOTS_PER_MM) -> bytes:
    """The card as a black-and-white PNG at ``dots_per_mm`` (8: 203 dpi); deterministic bytes."""

    def px(value: float) -> int:
        return round(value * dots_per_mm)

    image = Image.new("1", (px(WIDTH), px(HEIGHT)), 1)
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, px(WIDTH) - 1, px(HEIGHT) - 1), outline=0, width=2)
    for piece in card.texts():
        font = _png_font(piece.bold, max(8, px(piece.size / 0.72)))
        text = _fit(piece.text, lambda t, f=font: f.getlength(t), px(piece.max_width))
        draw.text((px(piece.x), px(piece.y)), text, font=font, fill=0)
    grid, module = card.grid(), card.module_size()
    cell = max(2, px(module))
    left, top = px(BARCODE_X) + cell, px(BARCODE_Y) + cell
    for r, row in enumerate(grid):
        for c, dark in enumerate(row):
            if dark:
                draw.rectangle(
                    (left + c * cell, top + r * cell, left + (c + 1) * cell - 1, top + (r + 1) * cell - 1),
                    fill=0,
                )
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def fits(text: str, *, size: float, width: float, bold: bool) -> bool:
    """Whether ``text`` prints whole at this cap height in this width (mm), as PDF and as PNG."""
    _pdf_fonts()
    pdf = pdfmetrics.stringWidth(text, BOLD if bold else REGULAR, size / 0.72 * mm) <= width * mm
    font = _png_font(bold, max(8, round(size / 0.72 * PNG_DOTS_PER_MM)))
    return pdf and font.getlength(text) <= round(width * PNG_DOTS_PER_MM)


def _fit(text: str, width_of: object, available: float) -> str:
    """The text, shortened with an ellipsis if it is wider than ``available`` (the record keeps it whole)."""
    measure = width_of  # a callable: text -> width in the renderer's units
    assert callable(measure)
    if measure(text) <= available:
        return text
    while text and measure(text + "...") > available:
        text = text[:-1]
    return text + "..."
