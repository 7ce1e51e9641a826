"""What makes the record PDF a PDF/A-2b document, with ReportLab's open-source edition.

ReportLab writes the file structure PDF/A asks for (binary header comment,
cross-reference table, ``/ID``, no encryption, no JavaScript) and embeds
TrueType fonts as subsets; it has a ``/Metadata`` stream class (``pdfdoc.XMP``)
but no PDF/A switch. This module adds the rest, all from packages the project
already has:

- **fonts**: DejaVu Sans Condensed (Debian's ``fonts-dejavu-core``; DejaVu 2.37
  is the family's last release, so metrics do not move under a record), every
  font embedded, none of the standard 14 (the canvas starts in DejaVu, not
  Helvetica). A character the font lacks would print the ``.notdef`` glyph,
  which PDF/A forbids: :func:`printable` writes it as ``‹U+4E2D›``, a control
  character as its name (``‹GS›``); the JSON record keeps the exact text.
- **XMP metadata** with ``pdfaid:part=2``, ``pdfaid:conformance=B`` and the
  Dublin Core, XMP and PDF entries of the information dictionary, built from
  that dictionary so the two cannot disagree;
- an **sRGB output intent** with its ICC profile (made by Pillow's ImageCms,
  i.e. Little CMS);
- the **real creation time**: the record's generation time, not ReportLab's
  invariant 2000-01-01; and a **document ID** from the record's content hash.

Both come from the record's content, so the same content gives the same bytes:
an archived ``record.json`` renders to its ``record.pdf`` again (BR-03)
without ReportLab's invariant mode.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import struct
import unicodedata
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from django.conf import settings
from reportlab.pdfbase import pdfdoc, pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont

REGULAR, BOLD, ITALIC = "BatchlineSans", "BatchlineSansBold", "BatchlineSansOblique"
FONT_FILES = {
    REGULAR: "DejaVuSansCondensed.ttf",
    BOLD: "DejaVuSansCondensed-Bold.ttf",
    ITALIC: "DejaVuSansCondensed-Oblique.ttf",
}
DEBIAN_FONTS = "/usr/share/fonts/truetype/dejavu"
SRGB = "sRGB IEC61966-2.1"


class FontsMissing(RuntimeError):
    pass


def font_dir() -> Path:
    """``BATCHLINE_RECORD_FONTS`` (setting or environment), else Debian's DejaVu directory."""
    configured = getattr(settings, "BATCHLINE_RECORD_FONTS", "") or os.environ.get(
        "BATCHLINE_RECORD_FONTS", ""
    )
    return Path(configured or DEBIAN_FONTS)


@cache
def fonts() -> frozenset[int]:
    """Register the record's fonts once; the code points all three can draw."""
    where = font_dir()
    missing = [name for name in FONT_FILES.values() if not (where / name).is_file()]
    if missing:
        raise FontsMissing(
            f"The batch record PDF embeds DejaVu Sans Condensed and {', '.join(missing)} is missing from "
            f"{where}. Install it with: apt-get install fonts-dejavu-core (or point BATCHLINE_RECORD_FONTS "
            "at a directory holding DejaVuSansCondensed.ttf, -Bold.ttf and -Oblique.ttf)."
        )
    covered: frozenset[int] | None = None
    for name, file in FONT_FILES.items():
        font = TTFont(name, str(where / file))
        pdfmetrics.registerFont(font)
        cmap = frozenset(c for c in font.face.charToGlyph if c >= 0x20)
        covered = cmap if covered is None else covered & cmap
    pdfmetrics.registerFontFamily(REGULAR, normal=REGULAR, bold=BOLD, italic=ITALIC, boldItalic=BOLD)
    return covered or frozenset()


# ASCII's names for the C0 control characters and DEL: what a GS1 reader calls the separator.
_C0 = [
    "NUL",
    "SOH",
    "STX",
    "ETX",
    "EOT",
    "ENQ",
    "ACK",
    "BEL",
    "BS",
    "HT",
    "LF",
    "VT",
    "FF",
    "CR",
    "SO",
    "SI",
    "DLE",
    "DC1",
    "DC2",
    "DC3",
    "DC4",
    "NAK",
    "SYN",
    "ETB",
    "CAN",
    "EM",
    "SUB",
    "ESC",
    "FS",
    "GS",
    "RS",
    "US",
]


def _mark(ch: str) -> str:
    code = ord(ch)
    name = _C0[code] if code < 0x20 else "DEL" if code == 0x7F else f"U+{code:04X}"
    return f"‹{name}›"


def printable(value: Any) -> str:
    """``value`` as text the embedded font can draw, every character accounted for.

    Canonically composed first (``e`` + combining acute prints as ``é``, the same
    text); a line break stays one, a tab is a space; any other control character
    prints as its ASCII name and a character the font has no glyph for as its code
    point, both between ‹ ›, so nothing is dropped and nothing prints as a blank box. Characters
    beyond the Basic Multilingual Plane (emoji) are written as code points too: ReportLab's text
    layer (ToUnicode) maps only 16-bit code points, and a copied or searched emoji would read wrong.
    Right-to-left runs print in the order they are stored (no bidirectional
    reordering): the JSON record is the exact text.
    """
    text = unicodedata.normalize("NFC", "" if value is None else str(value))
    if text.isascii() and text.isprintable():
        return text
    covered = fonts()
    out = []
    for ch in text:
        if ch == "\n":
            out.append(ch)
        elif ch in "\t\r":
            out.append(" ")
        elif (
            ord(ch) in covered
            and ord(ch) <= 0xFFFF
            and unicodedata.category(ch) not in ("Cc", "Cs", "Cn", "Co")
        ):
            out.append(ch)
        else:
            out.append(_mark(ch))
    return "".join(out)


@dataclass(frozen=True)
class Stamp:
    """ReportLab's ``TimeStamp`` for a given UTC time: what the information dictionary's dates read."""

    at: dt.datetime

    @property
    def t(self) -> float:
        return self.at.timestamp()

    @property
    def YMDhms(self) -> tuple[int, ...]:  # ReportLab's name
        return self.at.timetuple()[:6]

    dhh = 0
    dmm = 0
    tzname = "UTC"


def record_time(iso: str) -> dt.datetime:
    """The record's generation time to the second, in UTC (PDF dates have no fractions)."""
    return dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(dt.UTC).replace(microsecond=0)


@cache
def _srgb_profile() -> bytes:
    from PIL import ImageCms

    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def srgb_profile(at: dt.datetime) -> bytes:
    """Little CMS's sRGB display profile, its header's creation time set to ``at`` (it writes the
    clock's time there, which would make two renderings of one record differ)."""
    data = bytearray(_srgb_profile())
    data[24:36] = struct.pack(">6H", at.year, at.month, at.day, at.hour, at.minute, at.second)
    return bytes(data)


class _Catalog(pdfdoc.PDFCatalog):
    # ReportLab's catalog writes only the keys it lists; PDF/A needs the output intents too.
    __NoDefault__ = [*pdfdoc.PDFCatalog.__NoDefault__, "OutputIntents"]
    __Refs__ = __NoDefault__


def _xmp_date(at: dt.datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def _xmp(info: Any, at: dt.datetime, document_id: str) -> str:
    """The XMP packet: PDF/A identification and the information dictionary's entries, word for word."""

    def text(value: Any) -> str:
        return escape(printable_xml(value))

    return f"""<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about=""
    xmlns:pdfaid="http://www.aiim.org/pdfa/ns/id/"
    xmlns:dc="http://purl.org/dc/elements/1.1/"
    xmlns:xmp="http://ns.adobe.com/xap/1.0/"
    xmlns:pdf="http://ns.adobe.com/pdf/1.3/"
    xmlns:xmpMM="http://ns.adobe.com/xap/1.0/mm/">
   <pdfaid:part>2</pdfaid:part>
   <pdfaid:conformance>B</pdfaid:conformance>
   <dc:format>application/pdf</dc:format>
   <dc:title><rdf:Alt><rdf:li xml:lang="x-default">{text(info.title)}</rdf:li></rdf:Alt></dc:title>
   <dc:creator><rdf:Seq><rdf:li>{text(info.author)}</rdf:li></rdf:Seq></dc:creator>
   <dc:description><rdf:Alt><rdf:li xml:lang="x-default">{text(info.subject)}</rdf:li></rdf:Alt></dc:description>
   <pdf:Producer>{text(info.producer)}</pdf:Producer>
   <pdf:Keywords>{text(info.keywords)}</pdf:Keywords>
   <xmp:CreatorTool>{text(info.creator)}</xmp:CreatorTool>
   <xmp:CreateDate>{_xmp_date(at)}</xmp:CreateDate>
   <xmp:ModifyDate>{_xmp_date(at)}</xmp:ModifyDate>
   <xmp:MetadataDate>{_xmp_date(at)}</xmp:MetadataDate>
   <xmpMM:DocumentID>uuid:{document_id}</xmpMM:DocumentID>
   <xmpMM:InstanceID>uuid:{document_id}</xmpMM:InstanceID>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
<?xpacket end="w"?>"""


def printable_xml(value: Any) -> str:
    # The information dictionary holds the same text; XML cannot hold control characters at all.
    return "".join(ch if ch in "\t\n\r" or ord(ch) >= 0x20 else _mark(ch) for ch in str(value))


def _uuid(digest: str) -> str:
    h = digest[:32]
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def make_pdfa(canvas: Any, *, generated: str, digest: str) -> None:
    """Turn a fresh ReportLab canvas's document into PDF/A-2b: call before anything is drawn.

    ``generated``: the record's generation time (ISO 8601), its creation and
    modification time; ``digest``: the record's content SHA-256, from which the
    document ID is made.
    """
    doc = canvas._doc
    at = record_time(generated)
    doc._timeStamp = Stamp(at)
    raw = hashlib.sha256(f"batchline-record:{digest}".encode()).digest()[:16]
    ident = pdfdoc.PDFText(raw, enc="raw").format(pdfdoc.DummyDoc())
    doc._ID = b"\n[" + ident + ident + b"]\n"
    catalog = _Catalog()
    catalog.__dict__.update(doc.Catalog.__dict__)
    doc.Catalog = doc._catalog = catalog
    catalog.Metadata = pdfdoc.XMP(creator=lambda d: _xmp(d.info, at, _uuid(digest)).encode("utf-8"))
    profile = pdfdoc.PDFStream(
        dictionary=pdfdoc.PDFDictionary({"N": 3}), content=srgb_profile(at), filters=[pdfdoc.PDFZCompress]
    )
    catalog.OutputIntents = pdfdoc.PDFArray(
        [
            pdfdoc.PDFDictionary(
                {
                    "Type": pdfdoc.PDFName("OutputIntent"),
                    "S": pdfdoc.PDFName("GTS_PDFA1"),
                    "OutputConditionIdentifier": pdfdoc.PDFString(SRGB),
                    "Info": pdfdoc.PDFString(SRGB),
                    "RegistryName": pdfdoc.PDFString("http://www.color.org"),
                    "DestOutputProfile": doc.Reference(profile, "sRGBProfile"),
                }
            )
        ]
    )
