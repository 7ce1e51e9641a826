"""Read what a keyboard-wedge barcode scanner typed into a scan field.

A scan is one of four kinds (the conventions are in docs/labels.md):

- ``gs1``: a GS1 element string, from a GS1 DataMatrix, GS1-128 or GS1 QR symbol, or its
  printed form with parentheses ``(01)09501101530003(17)270131(10)L-0042``; also a bare
  GTIN from an EAN/UPC/ITF-14 symbol and a GS1 Digital Link URI.
- ``container``: a Batchline container id, ``C-`` and 1 to 18 digits (``C-000123``).
- ``equipment``: a Batchline equipment tag, ``EQ:`` and the equipment code (``EQ:GRAN-01``).
- ``text``: anything else, returned as it was read.

Bad input raises ScanError, whose message is written for the operator in front of the
scan field (DESIGN.md invariant 6) and whose code is stable for tests and logs. Parsing
decides nothing about the material: whether the scanned container may be used is the
dispensing gate's question (WD-05), asked of the record the scan points to.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from enum import StrEnum

from biip import BiipException, ParseConfig
from biip.gs1_application_identifiers import GS1ApplicationIdentifier
from biip.gs1_digital_link_uris import GS1DigitalLinkURI
from biip.gs1_element_strings import GS1ElementString
from biip.symbology import GS1Symbology, SymbologyIdentifier

from batchline.labels.gs1 import (
    AI_EXPIRY,
    AI_GTIN,
    AI_LOT,
    AI_SERIAL,
    AI_SSCC,
    CSET_82,
    GS,
    date_from_yymmdd,
    gtin_check_digit,
    gtin_normalize,
    is_ascii_digits,
)

MAX_SCAN_LENGTH = 512  # a Batchline label encodes under 80 characters; longer input is not a scan

CONTAINER_PREFIX = "C-"
EQUIPMENT_PREFIX = "EQ:"
_CONTAINER_ID = re.compile(r"[Cc]-([0-9]{1,18})")
_EQUIPMENT_TAG = re.compile(r"[Ee][Qq]:([A-Za-z0-9_-]{1,20})")
_GS1_START = re.compile(r"01[0-9]{14}|00[0-9]{18}")
_HRI_ELEMENT = re.compile(r"\(([0-9]{2,4})\)(.*?)(?=\([0-9]{2,4}\)|$)", re.DOTALL)

# AIs whose value starts with a YYMMDD date (GenSpecs 3.4 and 3.8)
_DATE_AIS = frozenset(
    ["11", "12", "13", "15", "16", "17", "4324", "4325", "4326", "7003", "7006", "7007", "8008"]
)
_FIXED_NUMERIC = re.compile(r"N[0-9]\+N([0-9]+)")
_FIELD_NAMES = {
    AI_SSCC: "pallet code (SSCC)",
    AI_GTIN: "product code (GTIN)",
    AI_LOT: "lot number",
    AI_EXPIRY: "expiry date",
    AI_SERIAL: "serial number",
    "11": "production date",
    "15": "best-before date",
}
# Dates are checked here, against the caller's ``today``: biip's own check reads the clock.
_BIIP = ParseConfig(gs1_element_strings_verify_date=False, separator_chars=(GS,))
_SCAN_AGAIN = "Scan it again; if it fails again, call your supervisor."


class ScanKind(StrEnum):
    GS1 = "gs1"
    CONTAINER = "container"
    EQUIPMENT = "equipment"
    TEXT = "text"


class ScanError(ValueError):
    """A scan that cannot be read, with a stable ``code`` and a ``message`` for the operator."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class ScannerProfile:
    """How one scanner transmits: set per registered scanner (P11-08).

    ``gs_substitute``: the character(s) the scanner sends instead of the ASCII group
    separator (FNC1) between GS1 fields, because a browser drops GS typed by a keyboard
    wedge. It must not occur in GS1 data, so it is chosen from ``# $ @ [ \\ ^ ` { | } ~``.
    """

    gs_substitute: str | None = None

    def __post_init__(self) -> None:
        sub = self.gs_substitute
        if sub is None:
            return
        if not sub or len(sub) > 4:
            raise ValueError("A GS substitute is 1 to 4 characters.")
        clashing = sorted({c for c in sub if c in CSET_82 or c in " \t\r\n]"})
        if clashing:
            raise ValueError(
                f"GS substitute {sub!r} contains {clashing}, which can occur in a scan itself "
                "(GS1 data, the ']' of a symbology identifier, or the scanner's line ending)."
            )


DEFAULT_PROFILE = ScannerProfile()


@dataclass(frozen=True, slots=True)
class Scan:
    """What one scan said. ``raw`` is exactly what was typed; the other fields as read from it.

    For a GS1 scan, ``elements`` holds every AI and value in the order scanned. ``lot`` is
    GS1's batch/lot (AI 10): the supplier's or Batchline's lot number, never a Batchline
    batch (process order). ``container_id`` is set for a container scan, and for a GS1 scan
    whose serial (AI 21) follows the container id convention, as on Batchline's own labels.
    """

    kind: ScanKind
    raw: str
    symbology: str | None = None  # the AIM symbology identifier the scanner sent, e.g. "]d2"
    gtin: str | None = None  # 14 digits
    lot: str | None = None
    expiry: dt.date | None = None
    serial: str | None = None
    sscc: str | None = None
    container_id: str | None = None
    equipment_code: str | None = None
    text: str | None = None
    elements: tuple[tuple[str, str], ...] = ()


def container_id_format(number: int) -> str:
    """The container id for a container number: ``C-000123`` (at least six digits)."""
    if not 0 <= number < 10**18:
        raise ValueError(f"Container number {number} is out of range.")
    return f"{CONTAINER_PREFIX}{number:06d}"


def container_id_match(value: str) -> str | None:
    """``value`` as a container id (prefix upper-cased, for a scanner typing with Caps Lock on), or None."""
    match = _CONTAINER_ID.fullmatch(value)
    return f"{CONTAINER_PREFIX}{match.group(1)}" if match else None


def equipment_tag(code: str) -> str:
    """What an equipment tag's barcode encodes: ``EQ:GRAN-01``."""
    if not _EQUIPMENT_TAG.fullmatch(EQUIPMENT_PREFIX + code):
        raise ValueError(f"Equipment code {code!r} must be 1 to 20 letters, digits, '-' or '_'.")
    return EQUIPMENT_PREFIX + code


def parse_scan(raw: str, *, profile: ScannerProfile = DEFAULT_PROFILE, today: dt.date | None = None) -> Scan:
    """Read one scan. ``today`` places two-digit years (GS1: 49 years back to 50 ahead); ScanError if unreadable."""
    today = today or dt.datetime.now(dt.UTC).date()
    if len(raw) > MAX_SCAN_LENGTH:
        raise ScanError(
            "SCAN_TOO_LONG", "That is far too long for a barcode. Clear the field and scan again."
        )
    data = raw.strip(" \t\r\n").strip(GS)  # some scanners send the leading FNC1 as GS
    if not data:
        raise ScanError("SCAN_EMPTY", "Nothing was read. Scan the label again.")

    def with_separators(body: str) -> str:
        """GS1 data with the scanner's substitute turned back into GS (plain text keeps it)."""
        sub = profile.gs_substitute
        return body.replace(sub, GS).strip(GS) if sub else body

    symbology = None
    if data.startswith("]"):
        try:
            identifier = SymbologyIdentifier.extract(data)
        except (BiipException, ValueError, IndexError):
            raise ScanError(
                "SCAN_SYMBOLOGY",
                f"The scanner sent an unknown barcode type prefix ({data[:3]!r}). Check the scanner's settings.",
            ) from None
        symbology = identifier.value
        data = data[len(identifier) :].lstrip(GS)
        if not data:
            raise ScanError("SCAN_EMPTY", "The barcode holds no data. Scan the label again.")
        kind = identifier.gs1_symbology
        if kind in GS1Symbology.with_gs1_digital_link_uri() and data.startswith(("http://", "https://")):
            return _digital_link(raw, data, symbology, today)
        if kind in GS1Symbology.with_gs1_messages():
            return _gs1(raw, _element_strings(with_separators(data)), symbology, today)
        if kind in GS1Symbology.with_gtin():
            return _bare_gtin(raw, data, symbology)
        # Any other symbology (plain Code 128, DataMatrix, QR, ...): read its content below.

    if data.startswith("("):
        return _gs1(raw, _hri_element_strings(data), symbology, today)
    container_id = container_id_match(data)
    if container_id:
        return Scan(kind=ScanKind.CONTAINER, raw=raw, symbology=symbology, container_id=container_id)
    equipment = _EQUIPMENT_TAG.fullmatch(data)
    if equipment:
        return Scan(kind=ScanKind.EQUIPMENT, raw=raw, symbology=symbology, equipment_code=equipment.group(1))
    gs1 = with_separators(data)
    if (GS in gs1 and gs1[0].isascii() and gs1[0].isdigit()) or _GS1_START.match(gs1):
        return _gs1(raw, _element_strings(gs1), symbology, today)
    if is_ascii_digits(data) and len(data) in (8, 12, 13, 14):
        return _bare_gtin(raw, data, symbology)
    if data.startswith(("http://", "https://")):
        try:
            return _digital_link(raw, data, symbology, today)
        except ScanError:
            pass  # a web address that is not a GS1 Digital Link is plain text
    if any(ord(c) < 32 or ord(c) == 127 for c in data):
        raise ScanError(
            "SCAN_UNREADABLE",
            "The scan contains control characters this system cannot read. "
            "Check the scanner's settings (its GS substitute) or call your supervisor.",
        )
    return Scan(kind=ScanKind.TEXT, raw=raw, symbology=symbology, text=data)


def _field_name(ai: str) -> str:
    return _FIELD_NAMES.get(ai, "field")


def _non_gs1_characters(data: str) -> None:
    if not data.isascii():
        raise ScanError(
            "SCAN_MALFORMED",
            "The barcode contains characters a GS1 barcode cannot hold. "
            "Check the scanner's keyboard language, then scan again.",
        )


def _unknown_ai(rest: str) -> ScanError:
    return ScanError(
        "SCAN_UNKNOWN_AI",
        f"The barcode holds a field this system does not know (it starts {rest[:4]!r}). "
        "The label may be damaged or a separator lost: " + _SCAN_AGAIN,
    )


def _field_error(ai: GS1ApplicationIdentifier, value: str) -> ScanError:
    """Why biip could not read ``value`` as the data of ``ai``, in words."""
    name = f"{_field_name(ai.ai)} ({ai.ai})"
    fixed = _FIXED_NUMERIC.fullmatch(ai.format)
    if fixed:
        length = int(fixed.group(1))
        digits = len(value) - len(value.lstrip("0123456789"))
        if digits < length and digits == len(value):
            return ScanError(
                "SCAN_TRUNCATED",
                f"The {name} in the barcode is incomplete: it needs {length} digits and has {digits}"
                f"{f' ({value!r})' if value else ''}. The scan may have been cut off. {_SCAN_AGAIN}",
            )
    if ai.ai in _DATE_AIS and is_ascii_digits(value[:6]) and len(value) >= 6:
        return ScanError(
            "SCAN_BAD_DATE", f"The {name} in the barcode, {value[:6]}, is not a real date. {_SCAN_AGAIN}"
        )
    return ScanError(
        "SCAN_MALFORMED",
        f"The {name} in the barcode ({value!r}) is not in the form GS1 requires. {_SCAN_AGAIN}",
    )


def _element_strings(data: str) -> list[GS1ElementString]:
    """Split a raw GS1 element string (fields separated by GS) into element strings."""
    _non_gs1_characters(data)
    found: list[GS1ElementString] = []
    rest = data
    while rest:
        try:
            ai = GS1ApplicationIdentifier.extract(rest)
        except BiipException:
            raise _unknown_ai(rest) from None
        try:
            element = GS1ElementString.extract(rest, config=_BIIP)
        except BiipException:
            raise _field_error(ai, rest[len(ai.ai) :].split(GS, 1)[0]) from None
        found.append(element)
        rest = rest[len(element) :]
        if rest.startswith(GS):
            rest = rest.lstrip(GS)
        elif rest and ai.separator_required:
            # A variable-length field stopped at its maximum length without a separator.
            raise ScanError(
                "SCAN_MALFORMED",
                f"The {_field_name(ai.ai)} ({ai.ai}) in the barcode is longer than GS1 allows, "
                "or a separator between fields was lost. Check the scanner's GS substitute. " + _SCAN_AGAIN,
            )
    return found


def _hri_element_strings(data: str) -> list[GS1ElementString]:
    """Split the printed form ``(01)...(10)...`` into element strings."""
    data = data.replace(" ", "")  # GS1 data holds no spaces; the printed form often does
    _non_gs1_characters(data)
    found: list[GS1ElementString] = []
    position = 0
    for match in _HRI_ELEMENT.finditer(data):
        if match.start() != position:
            break
        number, value = match.group(1), match.group(2)
        try:
            ai = GS1ApplicationIdentifier.extract(number + value)
        except BiipException:
            raise _unknown_ai(number) from None
        if ai.ai != number:
            raise _unknown_ai(number)
        try:
            found.append(GS1ElementString.parse(number + value, config=_BIIP))
        except BiipException:
            raise _field_error(ai, value) from None
        position = match.end()
    if position != len(data) or not found:
        raise ScanError(
            "SCAN_MALFORMED",
            "This looks like a GS1 code in brackets, but it is not of the form (01)…(10)…. " + _SCAN_AGAIN,
        )
    return found


def _digital_link(raw: str, data: str, symbology: str | None, today: dt.date) -> Scan:
    try:
        uri = GS1DigitalLinkURI.parse(data, config=_BIIP)
    except (BiipException, ValueError):
        raise ScanError(
            "SCAN_MALFORMED", f"This web address is not a GS1 Digital Link. {_SCAN_AGAIN}"
        ) from None
    return _gs1(raw, list(uri.element_strings), symbology, today)


def _bare_gtin(raw: str, data: str, symbology: str | None) -> Scan:
    if not (is_ascii_digits(data) and len(data) in (8, 12, 13, 14)):
        raise ScanError("SCAN_MALFORMED", f"This product barcode should hold 8 to 14 digits. {_SCAN_AGAIN}")
    try:
        gtin = gtin_normalize(data)
    except ValueError:
        raise ScanError(
            "SCAN_BAD_CHECK_DIGIT",
            f"The product code (GTIN) {data} is not valid: its last digit should be "
            f"{gtin_check_digit(data[:-1])}. The label may be damaged or misprinted. {_SCAN_AGAIN}",
        ) from None
    return Scan(kind=ScanKind.GS1, raw=raw, symbology=symbology, gtin=gtin, elements=((AI_GTIN, gtin),))


def _check(element: GS1ElementString, today: dt.date) -> None:
    ai, value = element.ai.ai, element.value
    if element.gtin_error or element.sscc_error or element.gln_error:
        raise ScanError(
            "SCAN_BAD_CHECK_DIGIT",
            f"The {_field_name(ai)} {value} in the barcode is not valid: its last digit should be "
            f"{gtin_check_digit(value[:-1])}. The label may be damaged or misprinted. {_SCAN_AGAIN}",
        )
    if ai in _DATE_AIS:
        try:
            date_from_yymmdd(value[:6], today=today)
        except ValueError:
            raise _field_error(element.ai, value) from None


def _gs1(raw: str, found: list[GS1ElementString], symbology: str | None, today: dt.date) -> Scan:
    values: dict[str, str] = {}
    elements: list[tuple[str, str]] = []
    for element in found:
        _check(element, today)
        ai, value = element.ai.ai, element.value
        if ai in values:
            if values[ai] != value:
                raise ScanError(
                    "SCAN_CONFLICT",
                    f"The barcode holds two different {_field_name(ai)}s ({values[ai]!r} and {value!r}). "
                    "Do not use this label: call your supervisor.",
                )
            continue
        values[ai] = value
        elements.append((ai, value))
    expiry = values.get(AI_EXPIRY)
    serial = values.get(AI_SERIAL)
    return Scan(
        kind=ScanKind.GS1,
        raw=raw,
        symbology=symbology,
        gtin=values.get(AI_GTIN),
        lot=values.get(AI_LOT),
        expiry=date_from_yymmdd(expiry, today=today) if expiry else None,
        serial=serial,
        sscc=values.get(AI_SSCC),
        container_id=container_id_match(serial) if serial else None,
        elements=tuple(elements),
    )
