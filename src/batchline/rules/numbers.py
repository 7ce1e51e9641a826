"""Reading a number as a person typed it, by the site's notation, one way only (ALCOA+ accurate; issue 11).

A decimal comma is common on European floors ("0,5013"), a thousands
separator on American ones ("1,500"). Read both ways, "1,500 kg" was judged
as 1.5 while the record kept the text "1,500": the judged value and the
recorded one must be the same. So the site says how it writes decimals (its
:class:`Notation`, a GMP setting), an entry in that notation is read, and
anything else is refused in words that offer the readings a person may have
meant, in the site's own notation ("1,500: did you mean 1.500 or 1500?").
A thousands separator is never read silently; nor is an exponent, a NaN or
an infinity, nor a zero with a minus sign.

:func:`shown` writes a number back in the same notation, and
:func:`recorded` decides what a recorded value shows: the typed text where
it reads as exactly the recorded number, otherwise the number itself, with
the typed text beside it (a value typed under another notation).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

# Longer than any number a record holds (28 digits, a sign, a separator): longer input is not read.
MAX_LENGTH = 40

# What people put between groups of thousands, besides the other decimal mark.
_SPACES = (" ", "\u00a0", "\u202f", "\u2009")  # space, no-break, narrow no-break, thin
_APOSTROPHES = ("'", "\u2019")  # Swiss 1'500, and its typographic form


@dataclass(frozen=True, slots=True)
class Notation:
    """How a site writes numbers: its decimal mark, and the marks a reader might mean as thousands separators."""

    name: str
    decimal: str
    grouping: tuple[str, ...]

    @property
    def decimal_words(self) -> str:
        return "a point" if self.decimal == "." else "a comma"

    def example(self) -> str:
        return f"1500{self.decimal}5"


POINT = Notation("point", ".", (",", *_APOSTROPHES, *_SPACES))
COMMA = Notation("comma", ",", (".", *_APOSTROPHES, *_SPACES))
NOTATIONS = {n.name: n for n in (POINT, COMMA)}

_EXPONENT = re.compile(r"[0-9.,]+[eE][+-]?[0-9]+")
_NOT_FINITE = re.compile(r"(?i)(s?nan|inf|infinity)")


class NotANumber(ValueError):
    """Why the text is not read as a number, in words."""


def sentence(label: str, refused: NotANumber) -> str:
    """``Planned quantity: 1,500: did you mean 1.500 or 1500?``: the field's name, then why."""
    words = str(refused)
    return f"{label}: {words}" + ("" if words.endswith(("?", ".")) else ".")


@dataclass(frozen=True, slots=True)
class _Digits:
    sign: str
    whole: str
    fraction: str | None  # None: no decimal mark was written

    def value(self) -> Decimal:
        text = f"{self.sign}{self.whole or '0'}" + (f".{self.fraction}" if self.fraction else "")
        return Decimal(text)

    def written(self, notation: Notation) -> str:
        fraction = "" if self.fraction is None else notation.decimal + self.fraction
        return f"{'-' if self.sign == '-' else ''}{self.whole or '0'}{fraction}"


def _short(text: str) -> str:
    return text if len(text) <= 24 else text[:20] + "…"


def read(text: str, notation: Notation = POINT) -> Decimal:
    """``text`` as a finite Decimal in ``notation``; raises :class:`NotANumber` saying why not."""
    t = text.strip()
    if not t:
        raise NotANumber("nothing was entered")
    if len(t) > MAX_LENGTH:
        raise NotANumber(f"{_short(t)} is too long for a number (at most {MAX_LENGTH} characters)")
    sign, body = ("", t)
    if t[0] in "+-":
        sign, body = t[0], t[1:]
    if _EXPONENT.fullmatch(body):
        raise NotANumber(f"{t}: write the number out in digits, without an exponent")
    if _NOT_FINITE.fullmatch(body):
        raise NotANumber(f"{t} is not a number")
    marks = [c for c in body if not c.isdigit()]
    if not body or not any(c.isdigit() for c in body) or any(not c.isascii() and c.isdigit() for c in body):
        raise NotANumber(f"{_short(t)} is not a number")
    allowed = {notation.decimal, *notation.grouping}
    if any(c not in allowed for c in marks):
        raise NotANumber(
            f"{_short(t)} is not a number: write digits, with {notation.decimal_words} for the decimals "
            f"({notation.example()})"
        )
    if not marks:
        return _finite(_Digits(sign, body, None), t)
    if all(c == notation.decimal for c in marks):
        if len(marks) == 1:
            whole, fraction = body.split(notation.decimal)
            return _finite(_Digits(sign, whole, fraction), t)
        # "1.500.000" on a point site: a reader may have meant the points as thousands separators.
        meant = _grouped(sign, body, notation.decimal, None)
        hint = f": did you mean {meant.written(notation)}?" if meant else ""
        raise NotANumber(f"{t} has more than one decimal {_mark_name(notation.decimal)}{hint}")
    raise NotANumber(_readings(t, sign, body, notation))


def needs_notation(text: str) -> bool:
    """Whether reading ``text`` depends on the notation: not for whole digits ("600", "-3")."""
    t = text.strip()
    return not t.lstrip("+-").isdecimal() or not t.isascii()


def _finite(digits: _Digits, text: str) -> Decimal:
    try:
        number = digits.value()
    except InvalidOperation:
        raise NotANumber(f"{_short(text)} is not a number") from None
    if number.is_zero() and digits.sign == "-":
        raise NotANumber(f"{text}: zero has no sign, write 0")
    return number


def _mark_name(mark: str) -> str:
    return {".": "point", ",": "comma"}.get(mark, f"mark {mark!r}")


def _grouped(sign: str, body: str, group: str, decimal: str | None) -> _Digits | None:
    """``body`` read with ``group`` between thousands (and ``decimal`` once, after them), if it fits."""
    fraction = None
    if decimal is not None and decimal in body:
        if body.count(decimal) > 1:
            return None
        body, fraction = body.split(decimal)
        if not fraction.isdigit():
            return None
    groups = body.split(group)
    if len(groups) < 2 or not groups[0].isdigit() or len(groups[0]) > 3 or groups[0].startswith("0"):
        return None
    if any(len(g) != 3 or not g.isdigit() for g in groups[1:]):
        return None
    return _Digits(sign, "".join(groups), fraction)


def _readings(text: str, sign: str, body: str, notation: Notation) -> str:
    """Words for an entry with a thousands-looking mark: the readings a person may have meant, never one chosen."""
    others = [c for c in body if not c.isdigit() and c != notation.decimal]
    group = others[0]
    as_grouped = None
    if all(c == group for c in others):
        as_grouped = _grouped(sign, body, group, notation.decimal)
    as_decimal = None
    # The other decimal mark, written once and alone: it may be a decimal ("0,5013") as well.
    if group in ".," and len(others) == 1 and notation.decimal not in body:
        whole, fraction = body.split(group)
        if fraction.isdigit() and (whole.isdigit() or not whole):
            as_decimal = _Digits(sign, whole, fraction)
    meant = [d.written(notation) for d in (as_decimal, as_grouped) if d is not None]
    if len(meant) == 2 and meant[0] != meant[1]:
        return f"{text}: did you mean {meant[0]} or {meant[1]}?"
    if as_decimal is not None:
        return f"{text}: this site writes decimals with {notation.decimal_words}; did you mean {meant[0]}?"
    if as_grouped is not None:
        return f"{text}: write the number without thousands separators; did you mean {meant[0]}?"
    return (
        f"{_short(text)} is not a number: write digits, with {notation.decimal_words} for the decimals "
        f"and no thousands separators ({notation.example()})"
    )


def shown(number: Decimal, notation: Notation = POINT) -> str:
    """A number as the site writes it: no exponent, no trailing zeros, no thousands separators."""
    text = f"{number.normalize():f}"
    if text in ("-0", "-0.0"):
        text = "0"
    return text.replace(".", notation.decimal)


def written(number: Decimal, notation: Notation = POINT) -> str:
    """A number as the site writes it, keeping the decimals it has (a calculation's 12.30)."""
    text = f"{number:f}"
    return ("0" if number.is_zero() and text.startswith("-") else text).replace(".", notation.decimal)


def recorded(
    number: Decimal | None, text: str, notation: Notation = POINT, *, calculated: bool = False
) -> tuple[str, str]:
    """What a recorded value shows, and the typed text beside it where that reads otherwise ('' if not).

    The typed text is shown where it reads, in this notation, as exactly the
    recorded number ("598.20" keeps its zero); otherwise the number is, and the
    text it was typed as is shown beside it, so nobody reads a different
    number than the one judged (a value typed "0,5013" before the site's
    notation changed reads "0.5013 (typed 0,5013)").
    """
    if number is None:
        return text, ""
    if calculated:  # written by the system, as a plain Decimal with the calculation's decimals
        try:
            exact = Decimal(text)
        except InvalidOperation:
            exact = None
        return (written(exact, notation) if exact == number else shown(number, notation)), ""
    try:
        if read(text, notation) == number:
            return text.strip(), ""
    except NotANumber:
        pass
    return shown(number, notation), text.strip()
