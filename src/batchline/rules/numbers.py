"""Reading a number as a person typed it, one way only (ALCOA+ accurate; issue 11).

A decimal comma is common on European floors ("0,5013"), a thousands
separator on American ones ("1,500"). Read both ways, "1,500 kg" was judged
as 1.5 while the record kept the text "1,500": the judged value and the
recorded one must be the same. So a comma is a decimal comma, and anything a
reader could take either way is refused in words rather than guessed:
"1,500" (three digits after one comma), several commas, or a comma and a
point together.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_THOUSANDS_LOOKING = re.compile(r"^[+-]?\d{1,3},\d{3}$")


class NotANumber(ValueError):
    """Why the text is not read as a number, in words."""


def parse_decimal(text: str) -> Decimal:
    """``text`` as a finite Decimal; a single comma is the decimal separator. Raises :class:`NotANumber`."""
    t = text.strip()
    if "," in t:
        if "." in t or t.count(",") > 1:
            raise NotANumber(
                f"{t!r} uses thousands separators: write the number without them, with a point or a comma "
                "for the decimals (1500 or 1500.5)"
            )
        if _THOUSANDS_LOOKING.match(t):
            whole, frac = t.lstrip("+-").split(",")
            raise NotANumber(
                f"{t!r} could be {whole}.{frac} or {whole}{frac}: write it without the comma, "
                f"or with a point ({whole}.{frac})"
            )
        t = t.replace(",", ".")
    try:
        number = Decimal(t)
    except InvalidOperation:
        raise NotANumber(f"{text.strip()!r} is not a number") from None
    if not number.is_finite():
        raise NotANumber(f"{text.strip()!r} is not a number")
    return number
