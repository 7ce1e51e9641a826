"""MT-SICS, Mettler-Toledo's scale protocol: lines in, readings or refusals out (WD-01, DI-04).

Pure functions over text; no sockets, no clock. The clients (``scale.py``) and
the simulator (``scale_sim.py``) both speak through them, so what one writes
the other reads by the same rules.

Batchline takes a weight only from an answer it understands completely. A
status other than the one expected, an error line, a malformed line or a line
that answers a different command is a refusal with a reason: never a number.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

TERMINATOR = b"\r\n"
# Real answers are under 40 characters; a longer "line" is not MT-SICS, and a
# limit keeps a babbling peer from growing a buffer without end.
MAX_LINE = 256
VALUE_WIDTH = 10

# Status letters of an answer.
STABLE, DYNAMIC, NOT_READY, OVERLOAD, UNDERLOAD = "S", "D", "I", "+", "-"
DONE, LOGICAL = "A", "L"
ERRORS = {
    "ES": ("SCALE_SYNTAX_ERROR", "the scale did not understand the command"),
    "ET": ("SCALE_TRANSMISSION_ERROR", "the scale received a corrupted command"),
    "EL": ("SCALE_LOGICAL_ERROR", "the scale cannot carry out the command now"),
}

# Commands whose answers begin with another word: weight commands answer "S ...",
# the reset answers with the serial number.
ECHO = {"SI": "S", "SIR": "S", "@": "I4"}

# ASCII digits only: Decimal() would also take other scripts' digits.
_VALUE = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?")
_UNIT = re.compile(r"[A-Za-z%/][A-Za-z0-9%/]{0,7}")
_WORD = re.compile(r"[A-Z0-9@]{1,8}")
_LINE = re.compile(
    r"(?P<echo>[A-Z0-9@]{1,8})"
    r"(?: (?P<status>[A-Z+-]))?"
    r'(?: +"(?P<text>[^"]*)"| +(?P<value>\S+) +(?P<unit>\S+))?'
)


class ScaleRefusal(Exception):
    """No weight: the scale refused, failed or could not be understood.

    ``code`` is stable and machine-readable, the message is for the person at
    the scale, ``raw`` is the line as the scale sent it (None when nothing
    came), ``command`` what Batchline asked, ``serial`` which scale answered.
    A dispense records a refusal as it would a weight (DI-06), never as one.
    """

    code = "SCALE_REFUSED"

    def __init__(
        self,
        message: str,
        *,
        raw: str | None = None,
        command: str | None = None,
        serial: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.raw = raw
        self.command = command
        self.serial = serial


class ScaleNotReady(ScaleRefusal):
    """``I``: busy, or the load did not settle before the scale gave up."""

    code = "SCALE_NOT_READY"


class ScaleOverload(ScaleRefusal):
    """``+``: above the weighing (or taring, or zero-setting) range."""

    code = "SCALE_OVERLOAD"


class ScaleUnderload(ScaleRefusal):
    """``-``: below the range, typically the pan is off or the scale needs zeroing."""

    code = "SCALE_UNDERLOAD"


class ScaleError(ScaleRefusal):
    """``ES``, ``ET`` or ``EL`` (and a command's own ``L``); ``error`` holds the two letters."""

    def __init__(self, error: str, message: str, **where: str | None) -> None:
        super().__init__(message, **where)
        self.error = error
        self.code = ERRORS[error][0]


class ScaleProtocolError(ScaleRefusal):
    """An answer that is not MT-SICS, or not the answer to the command sent."""

    code = "SCALE_PROTOCOL_ERROR"


class ScaleWrongDevice(ScaleRefusal):
    """The scale at the address is not the one Batchline was told to expect (P11-08)."""

    code = "SCALE_WRONG_DEVICE"


class ScaleNoAnswer(ScaleRefusal):
    """Nothing usable came back: see the two kinds below."""

    code = "SCALE_NO_ANSWER"


class ScaleTimeout(ScaleNoAnswer):
    """No connection or no complete answer within the time allowed."""

    code = "SCALE_TIMEOUT"


class ScaleDisconnected(ScaleNoAnswer):
    """The connection was refused, or closed before the answer was complete."""

    code = "SCALE_DISCONNECTED"


@dataclass(frozen=True, slots=True)
class Reading:
    """A weight as the scale gave it, with the line it came in and the scale it came from.

    ``raw`` is the original record (DI-04) and ``serial`` the device identity
    (DI-01), read from ``I4`` on the same connection. ``value`` keeps the
    scale's decimal places: ``100.00`` stays ``Decimal("100.00")``.
    ``command`` is what was asked (``S``, ``SI``, ``SIR``, ``T``, ``TA``).
    """

    value: Decimal
    unit: str
    stable: bool
    raw: str
    serial: str
    command: str


@dataclass(frozen=True, slots=True)
class Answer:
    """One line split into its parts, before any judgement of what it means."""

    raw: str
    echo: str  # the first word: the command answered, or ES / ET / EL
    status: str = ""
    value: Decimal | None = None
    unit: str = ""
    text: str | None = None


@dataclass(frozen=True, slots=True)
class Identity:
    serial: str  # I4
    model: str  # I2: type, capacity and unit, worded by the scale


# -- bytes and lines ------------------------------------------------------------


def encode_line(line: str) -> bytes:
    return line.encode("ascii") + TERMINATOR


def command_line(command: str, *params: str) -> str:
    if not _WORD.fullmatch(command):
        raise ValueError(f"not an MT-SICS command: {command!r}")
    return " ".join((command, *params))


def decode_line(data: bytes) -> str:
    """One line without its terminator, as text; anything but printable ASCII is garbage."""
    if not all(0x20 <= b < 0x7F for b in data):
        raise ScaleProtocolError(
            f"The scale sent characters that are not MT-SICS: {data[:60]!r}.", raw=repr(data[:MAX_LINE])
        )
    return data.decode("ascii")


class LineSplitter:
    """Cuts a byte stream into lines, however the network happens to chop it.

    A line ends in CR LF; a bare LF is taken too (some converters drop the CR),
    a CR anywhere else stays in the line and makes it garbage.
    """

    def __init__(self, max_line: int = MAX_LINE) -> None:
        self._buffer = bytearray()
        self._max_line = max_line

    def feed(self, data: bytes) -> list[bytes]:
        self._buffer += data
        lines = []
        while (end := self._buffer.find(b"\n")) >= 0:
            line = bytes(self._buffer[:end])
            del self._buffer[: end + 1]
            lines.append(line.removesuffix(b"\r"))
        if len(self._buffer) > self._max_line or any(len(line) > self._max_line for line in lines):
            self._buffer.clear()
            raise ScaleProtocolError(f"The scale sent a line longer than {self._max_line} characters.")
        return lines

    @property
    def pending(self) -> bool:
        return bool(self._buffer)


# -- formatting (what a scale sends) --------------------------------------------


def format_value(value: Decimal, width: int = VALUE_WIDTH) -> str:
    """Right-aligned in a fixed field; a value wider than the field widens it, never loses digits."""
    if not value.is_finite():
        raise ValueError(f"a scale sends finite numbers, not {value}")
    return f"{value:f}".rjust(width)


def format_weight(echo: str, status: str, value: Decimal, unit: str) -> str:
    if not _UNIT.fullmatch(unit):
        raise ValueError(f"not a unit a scale sends: {unit!r}")
    return f"{echo} {status} {format_value(value)} {unit}"


def format_status(echo: str, status: str) -> str:
    return f"{echo} {status}"


def format_text(echo: str, text: str) -> str:
    if '"' in text or not text.isascii() or not text.isprintable():
        raise ValueError(f"MT-SICS text is printable ASCII without quotes: {text!r}")
    return f'{echo} {DONE} "{text}"'


# -- parsing (what Batchline reads) ---------------------------------------------


def parse_line(raw: str) -> Answer:
    """Split a line into its parts; a line that fits no MT-SICS shape is a protocol error."""
    match = _LINE.fullmatch(raw.strip(" ")) if raw.isascii() and raw.isprintable() else None
    if not match:
        raise _garbage(raw)
    echo, status, value, unit, text = match.group("echo", "status", "value", "unit", "text")
    if echo in ERRORS:
        if status or value or text is not None:
            raise _garbage(raw)
        return Answer(raw=raw, echo=echo)
    if not status:
        raise _garbage(raw)
    if value is None:
        return Answer(raw=raw, echo=echo, status=status, text=text)
    if not _VALUE.fullmatch(value) or not _UNIT.fullmatch(unit):
        raise _garbage(raw)
    return Answer(raw=raw, echo=echo, status=status, value=Decimal(value), unit=unit)


def weight_reading(raw: str, *, command: str, serial: str) -> Reading:
    """The reading in an answer to ``S``, ``SI``, ``SIR``, ``T`` or ``TA``, or the refusal it means.

    ``S`` and ``T`` promise a stable value, so only ``S`` counts from them; a
    dynamic ``D`` is accepted only from the immediate commands.
    """
    expected = {STABLE, DYNAMIC} if command in ("SI", "SIR") else {DONE if command == "TA" else STABLE}
    answer = _expect(raw, command=command, serial=serial, statuses=expected)
    if answer.value is None:
        raise _garbage(raw, command=command, serial=serial)
    return Reading(
        value=answer.value,
        unit=answer.unit,
        stable=answer.status != DYNAMIC,
        raw=raw,
        serial=serial,
        command=command,
    )


def text_answer(raw: str, *, command: str, serial: str | None = None) -> str:
    """The quoted text of an ``I2``, ``I4`` or ``@`` answer."""
    answer = _expect(raw, command=command, serial=serial, statuses={DONE})
    if answer.text is None:
        raise _garbage(raw, command=command, serial=serial)
    return answer.text


def acknowledgement(raw: str, *, command: str, serial: str | None = None) -> None:
    """An ``A`` without a value (``TAC A``, ``Z A``), or the refusal it means."""
    answer = _expect(raw, command=command, serial=serial, statuses={DONE})
    if answer.value is not None or answer.text is not None:
        raise _garbage(raw, command=command, serial=serial)


def _expect(raw: str, *, command: str, serial: str | None, statuses: set[str]) -> Answer:
    where: dict[str, str | None] = {"raw": raw, "command": command, "serial": serial}
    answer = parse_line(raw)
    if answer.echo in ERRORS:
        _, words = ERRORS[answer.echo]
        raise ScaleError(answer.echo, f"No result: {words} ({answer.echo}).", **where)
    if answer.echo != ECHO.get(command, command):
        # An answer to something else: the conversation is out of step, and a
        # weight in it belongs to another question.
        raise ScaleProtocolError(f'The scale answered "{raw}" to the command {command}.', **where)
    if answer.status in statuses:
        return answer
    refusal = _REFUSALS.get(answer.status)
    if refusal is None:
        raise ScaleProtocolError(f'The scale answered "{raw}" to the command {command}.', **where)
    kind, words = refusal
    if kind is ScaleError:
        raise ScaleError("EL", f'No result: {words} (it answered "{raw}").', **where)
    raise kind(f'No weight was taken: {words} (it answered "{raw}").', **where)


_REFUSALS: dict[str, tuple[type[ScaleRefusal], str]] = {
    NOT_READY: (
        ScaleNotReady,
        "the scale is busy or the load did not settle in time. Keep the load still and try again",
    ),
    OVERLOAD: (ScaleOverload, "the load is above the scale's range. Remove load or use a larger scale"),
    UNDERLOAD: (
        ScaleUnderload,
        "the scale reads below its range. Check that the pan is in place, then zero the scale",
    ),
    LOGICAL: (ScaleError, "the scale cannot carry out the command with these values"),
}


def _garbage(raw: str, **where: str | None) -> ScaleProtocolError:
    return ScaleProtocolError(f'The scale sent an answer Batchline cannot read: "{raw}".', raw=raw, **where)
