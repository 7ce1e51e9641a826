"""A container label as ZPL II for a Zebra label printer (100 x 70 mm, 203 dpi by default).

The barcode is a GS1 DataMatrix (``^BX`` at quality 200, FNC1 written ``_1`` with ``_``
set as the escape character, as Zebra advises, since the default differs between
firmware versions). Not GS1-128 (``^BC`` with ``>;>8``): a GS1-128 symbol holds at most
48 data characters, and GTIN + expiry + a 20-character lot + a 20-character serial need
up to 76; at the GS1 healthcare minimum X dimension it would also not fit 100 mm. A
DataMatrix of the same data is about 20 mm square, survives a damaged corner (Reed-Solomon
ECC 200) and reads with the 2D imagers dispensing booths use.

Text fields go through ``^FH`` (hex escapes, ``_`` as indicator) under ``^CI28`` (UTF-8):
``^``, ``~``, ``_`` and every character outside printable ASCII are written as the hex
of their UTF-8 bytes, so no field can end early or inject a command. The printer's
resident font 0 prints Latin scripts; other scripts need a downloaded font (docs/labels.md).
"""

from __future__ import annotations

import math

from batchline.labels import layout
from batchline.labels.container import ContainerLabel
from batchline.labels.datamatrix import modules
from batchline.labels.gs1 import GS

_ADVANCE = 0.5  # a character of font 0 is about half as wide as its width parameter
_NARROWEST = 0.6  # narrow text down to this share of its height before shortening it


def zpl_escape(text: str) -> str:
    """Field data for ``^FH_^FD``: printable ASCII as is, the rest as ``_XX`` UTF-8 bytes."""
    out: list[str] = []
    for char in text:
        if char in "^~_" or not " " <= char <= "~":
            if ord(char) < 32 or ord(char) == 127:
                char = " "  # a control character has no business on a label; never send it
                out.append(char)
                continue
            out.extend(f"_{byte:02X}" for byte in char.encode("utf-8"))
        else:
            out.append(char)
    return "".join(out)


def datamatrix_field_data(data: str, *, gs1: bool) -> str:
    """``^BX`` field data with ``_`` as escape character: ``_1`` is FNC1, ``__`` an underscore."""
    if any(not " " < c <= "~" and c != GS for c in data) or "^" in data or "~" in data:
        raise ValueError(f"Barcode data {data!r} holds characters a label barcode does not carry.")
    body = data.replace("_", "__").replace(GS, "_1")
    return ("_1" if gs1 else "") + body


def render_zpl(label: ContainerLabel, *, dots_per_mm: int = 8) -> str:
    """One label, ``^XA`` to ``^XZ``. ``dots_per_mm``: 8 for 203 dpi, 12 for 300 dpi, 24 for 600 dpi."""

    def dots(mm: float) -> int:
        return round(mm * dots_per_mm)

    out = [
        "^XA",
        "^CI28",  # field data is UTF-8 (after ^FH hex processing)
        f"^PW{dots(layout.WIDTH)}",
        f"^LL{dots(layout.HEIGHT)}",
        "^LH0,0",
    ]
    for piece in layout.texts(label):
        height = max(10, dots(piece.size))
        text, width = _fit(piece.text, height, dots(piece.max_width))
        if piece.reverse:
            box_height = dots(layout.HEADER_HEIGHT)
            box_width = dots(piece.box_width)
            out.append(f"^FO{dots(piece.x)},{dots(piece.y)}^GB{box_width},{box_height},{box_height}^FS")
            top = dots(piece.y) + (box_height - height) // 2
            out.append(
                f"^FO{dots(piece.x)},{top}^FR^A0N,{height},{width}^FB{box_width},1,0,C,0"
                f"^FH_^FD{zpl_escape(text)}^FS"
            )
        else:
            out.append(f"^FO{dots(piece.x)},{dots(piece.y)}^A0N,{height},{width}^FH_^FD{zpl_escape(text)}^FS")

    barcode = label.barcode()
    side = len(modules(barcode.data, gs1=barcode.gs1))
    module = max(2, math.floor(layout.module_size(side) * dots_per_mm))
    out.append(
        f"^FO{dots(layout.BARCODE_X) + module},{dots(layout.BARCODE_Y) + module}"
        f"^BXN,{module},200,,,,_^FD{datamatrix_field_data(barcode.data, gs1=barcode.gs1)}^FS"
    )
    out += ["^PQ1", "^XZ"]
    return "\n".join(out) + "\n"


def fits(text: str, *, size: float, width: float, dots_per_mm: int = 8) -> bool:
    """Whether ``text`` prints whole (narrowed at most to 60 %) at this height in this width, in mm."""
    return _fit(text, max(10, round(size * dots_per_mm)), round(width * dots_per_mm))[0] == text


def _fit(text: str, height: int, available: int) -> tuple[str, int]:
    """The text and the font width (dots) that fit ``available`` dots: narrower first, then shortened."""
    if not text:
        return text, height
    width = min(height, math.floor(available / (len(text) * _ADVANCE)))
    narrowest = math.ceil(height * _NARROWEST)
    if width >= narrowest:
        return text, width
    keep = max(1, math.floor(available / (narrowest * _ADVANCE)) - 3)
    return text[:keep] + "...", narrowest
