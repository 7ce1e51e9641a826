"""The few GS1 rules Batchline's labels rely on, in plain Python.

References are to the GS1 General Specifications (GenSpecs): the check digit (7.9.1),
the character set for alphanumeric AIs (figure 7.11-1, "CSET 82"), the AIs with a
predefined length that need no separator (figure 7.8.5-2), and the century of a
two-digit year (7.12). Parsing a scan uses the biip library (see scan.py); building
what a label prints needs only this module.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Sequence

GS = "\x1d"  # ASCII group separator: how a scanner transmits FNC1 between fields

AI_SSCC = "00"
AI_GTIN = "01"
AI_LOT = "10"
AI_EXPIRY = "17"
AI_SERIAL = "21"

# GS1 AI encodable character set 82: what AI 10 (batch/lot) and AI 21 (serial) may hold.
CSET_82 = frozenset("!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz")
ALPHANUMERIC_MAX = 20  # AI 10 and AI 21 are X..20

# AIs whose first two digits are here have a predefined length, so no FNC1 follows them
# (GenSpecs figure 7.8.5-2). Every other AI is ended by FNC1 unless it is the last one.
_PREDEFINED_LENGTH_PREFIXES = frozenset(
    f"{n:02d}" for n in (0, 1, 2, 3, 4, *range(11, 21), *range(31, 37), 41)
)
_ASCII_DIGITS = frozenset("0123456789")


def is_ascii_digits(value: str) -> bool:
    """True for a non-empty string of 0-9 only (``str.isdigit`` also accepts other scripts' digits)."""
    return bool(value) and set(value) <= _ASCII_DIGITS


def gtin_check_digit(body: str) -> int:
    """The GS1 check digit (GenSpecs 7.9.1) of ``body``, the digits before the check digit.

    From the right, digits are weighted 3, 1, 3, ...; the check digit brings the sum up
    to the next multiple of ten. Works for GTIN-8/12/13/14, GLN and SSCC bodies alike.
    """
    if not is_ascii_digits(body):
        raise ValueError(f"A check digit needs digits only, not {body!r}.")
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return (10 - total % 10) % 10


def gtin_is_valid(gtin: str) -> bool:
    """8, 12, 13 or 14 digits whose last digit is the right check digit."""
    return (
        len(gtin) in (8, 12, 13, 14)
        and is_ascii_digits(gtin)
        and gtin_check_digit(gtin[:-1]) == int(gtin[-1])
    )


def gtin_normalize(gtin: str) -> str:
    """The GTIN as the 14 digits AI (01) carries (GTIN-8/12/13 padded with zeros); ValueError if invalid."""
    if not (len(gtin) in (8, 12, 13, 14) and is_ascii_digits(gtin)):
        raise ValueError(f"GTIN {gtin!r} must be 8, 12, 13 or 14 digits.")
    if not gtin_is_valid(gtin):
        raise ValueError(
            f"GTIN {gtin} has a wrong check digit: the last digit should be {gtin_check_digit(gtin[:-1])}."
        )
    return gtin.zfill(14)


def alphanumeric_problem(value: str, *, what: str) -> str | None:
    """Why ``value`` cannot be carried in AI 10 or AI 21 (1 to 20 characters of CSET 82), or None."""
    if not value:
        return f"The {what} is empty."
    if len(value) > ALPHANUMERIC_MAX:
        return f"The {what} {value!r} is {len(value)} characters long; a GS1 barcode carries at most 20."
    bad = sorted({c for c in value if c not in CSET_82})
    if bad:
        shown = ", ".join(repr(c) for c in bad)
        return f"The {what} {value!r} contains {shown}, which a GS1 barcode cannot carry."
    return None


def needs_separator(ai: str) -> bool:
    """Whether an element string with this AI must be ended by FNC1 when another one follows."""
    return ai[:2] not in _PREDEFINED_LENGTH_PREFIXES


def element_string(elements: Sequence[tuple[str, str]]) -> str:
    """The data a GS1 symbol encodes after its leading FNC1: AIs and values, GS after variable ones.

    The caller orders the elements; putting predefined-length AIs first and one variable
    AI last (as container.py does) saves separators.
    """
    parts: list[str] = []
    for index, (ai, value) in enumerate(elements):
        parts.append(ai + value)
        if index < len(elements) - 1 and needs_separator(ai):
            parts.append(GS)
    return "".join(parts)


def hri(elements: Sequence[tuple[str, str]]) -> str:
    """The human readable interpretation printed by the symbol: ``(01)09501101530003(10)L-0042``."""
    return "".join(f"({ai}){value}" for ai, value in elements)


def yymmdd(day: dt.date) -> str:
    """A date as a GS1 date field (AI 17 and friends)."""
    return f"{day.year % 100:02d}{day.month:02d}{day.day:02d}"


def century_year(two_digits: int, *, today: dt.date) -> int:
    """The full year of a two-digit GS1 year, within 49 years back and 50 ahead of ``today`` (GenSpecs 7.12)."""
    current_century = today.year - today.year % 100
    difference = two_digits - today.year % 100
    if 51 <= difference <= 99:
        return current_century - 100 + two_digits
    if -99 <= difference <= -50:
        return current_century + 100 + two_digits
    return current_century + two_digits


def date_from_yymmdd(value: str, *, today: dt.date) -> dt.date:
    """A GS1 YYMMDD field as a date; day 00 means the last day of that month. ValueError if not a date."""
    if len(value) != 6 or not is_ascii_digits(value):
        raise ValueError(f"{value!r} is not six digits YYMMDD.")
    year = century_year(int(value[:2]), today=today)
    month, day = int(value[2:4]), int(value[4:6])
    if not 1 <= month <= 12:
        raise ValueError(f"{value!r} has no month {month:02d}.")
    if day == 0:
        day = calendar.monthrange(year, month)[1]
    return dt.date(year, month, day)  # ValueError for 31 April, 29 February of a common year, ...
