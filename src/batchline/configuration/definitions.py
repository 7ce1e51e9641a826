"""The settings that change GMP behaviour, what each means, and how a proposed value is checked.

Plain Python: the definitions, the seed from the environment and the checks
of a proposed change are tested without a database. A value outside its
range is refused in words before any request is written.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from decimal import Decimal
from typing import Any

from batchline.rules import trail
from batchline.rules.numbers import NOTATIONS, POINT, NotANumber, Notation, read

# Roles that carry GMP signing authority: an administrator holds none of them by default
# (DESIGN invariant 8), and granting one takes a QA approver's approval.
GMP_SIGNING_ROLES = (
    "operator",
    "supervisor",
    "warehouse",
    "engineer",
    "recipe_author",
    "qa_reviewer",
    "qa_approver",
    "qualified_person",
    # Signs nothing, yet makes GMP records (batches, lot receipts, lot status where allowed): granted
    # with a QA approver's approval like the signing roles, and never to an administrator.
    "erp_interface",
    # Not a signer, but its results enter the batch record and can block a lot (lims/services.py).
    "lims_interface",
)
DEFAULT_INCOMPATIBLE_ROLES = tuple(("administrator", role) for role in GMP_SIGNING_ROLES)


@dataclass(frozen=True)
class GmpConfig:
    """One version of the GMP configuration; every process reads the newest at once."""

    version: int
    self_approval: bool
    lockout_failures: int
    idle_timeout_minutes: int
    password_min_length: int
    password_max_age_days: int
    password_history: int
    qp_certification: bool
    reconciliation_tolerance_percent: Decimal
    late_entry_minutes: int
    incompatible_roles: tuple[tuple[str, str], ...]
    checkpoint_interval_minutes: int
    verify_interval_minutes: int
    clock_tolerance_seconds: int
    decimal_separator: str
    registered_stations_only: bool
    working_hours: str
    working_days: str
    trail_review_days: int
    access_review_interval_days: int
    periodic_evaluation_interval_days: int
    erp_lot_status: bool

    @property
    def hours(self) -> trail.WorkingHours:
        """The site's working hours, outside which a person's audit entry needs a reviewer's attention."""
        return trail.working_hours(self.working_hours, self.working_days)

    @property
    def idle_timeout_seconds(self) -> int:
        return self.idle_timeout_minutes * 60

    @property
    def notation(self) -> Notation:
        """How this site's typed numbers are read and its numbers shown (rules/numbers.py)."""
        return NOTATIONS[self.decimal_separator]

    def values(self) -> dict[str, Any]:
        """The stored form: JSON-ready, the version left out."""
        out: dict[str, Any] = {}
        for f in fields(self):
            if f.name == "version":
                continue
            value = getattr(self, f.name)
            if isinstance(value, Decimal):
                value = str(value)
            elif f.name == "incompatible_roles":
                value = [list(pair) for pair in value]
            out[f.name] = value
        return out


@dataclass(frozen=True)
class Setting:
    label: str
    help: str
    parse: Callable[[Any], Any]
    env: str  # the environment variable that seeds a new installation
    choices: tuple[str, ...] = ()  # the values there are, where there are few
    decimal: bool = False  # a number with decimals: a page reads it in the site's notation first


class Invalid(ValueError):
    pass


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off", ""}:
        return False
    raise Invalid(f"{value!r} is not yes or no")


def _int(low: int, high: int) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        if isinstance(value, bool):
            raise Invalid(f"{value!r} is not a whole number")
        try:
            number = int(str(value).strip())
        except ValueError:
            raise Invalid(f"{value!r} is not a whole number") from None
        if not low <= number <= high:
            raise Invalid(f"{number} is outside {low} to {high}")
        return number

    return parse


def _percent(value: Any) -> Decimal:
    # Stored and sent (environment, API) with a point; the page reads what is typed in the site's notation.
    try:
        number = value if isinstance(value, Decimal) else read(str(value), POINT)
    except NotANumber as exc:
        raise Invalid(str(exc)) from None
    if not (number.is_finite() and Decimal(0) <= number <= Decimal(100)):
        raise Invalid(f"{value} is outside 0 to 100 %")
    return number


def _one_of(*names: str) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        text = str(value).strip().lower()
        if text not in names:
            raise Invalid(f"{value!r} is not one of: {', '.join(names)}")
        return text

    return parse


def _hours(value: Any) -> str:
    try:
        start, end = trail.parse_hours(str(value))
    except ValueError as exc:
        raise Invalid(str(exc)) from None
    return f"{start.strftime('%H:%M')}-{'24:00' if end == dt.time.max else end.strftime('%H:%M')}"


def _days(value: Any) -> str:
    try:
        days = trail.parse_days(str(value))
    except ValueError as exc:
        raise Invalid(str(exc)) from None
    return ",".join(trail.DAY_NAMES[d] for d in sorted(days))


def _pairs(value: Any) -> tuple[tuple[str, str], ...]:
    if isinstance(value, str):  # "administrator:operator, administrator:qa_approver"
        value = [part.split(":") for part in value.split(",") if part.strip()]
    pairs = []
    for pair in value:
        items = [str(p).strip() for p in pair]
        if len(items) != 2 or not all(items) or items[0] == items[1]:
            raise Invalid(f"{pair!r} is not a pair of two different roles")
        pairs.append(tuple(sorted(items)))
    return tuple(sorted(set(pairs)))  # type: ignore[arg-type]


SETTINGS: dict[str, Setting] = {
    "self_approval": Setting(
        "Self-approval of exceptions",
        "Whether a person may disposition an exception they raised themselves (DEV-04: off).",
        _bool,
        "BATCHLINE_SELF_APPROVAL",
    ),
    "lockout_failures": Setting(
        "Lockout threshold",
        "Failed logins or signatures in a row before the account locks (21 CFR 11.300(d)).",
        _int(3, 10),
        "BATCHLINE_LOCKOUT_FAILURES",
    ),
    "idle_timeout_minutes": Setting(
        "Idle timeout (minutes)",
        "A session without the person's own input ends after this (21 CFR 11.10(d)).",
        _int(1, 60),
        "BATCHLINE_IDLE_TIMEOUT_MINUTES",
    ),
    "password_min_length": Setting(
        "Minimum password length",
        "Characters a password needs at least.",
        _int(8, 64),
        "BATCHLINE_PASSWORD_MIN_LENGTH",
    ),
    "password_max_age_days": Setting(
        "Password age (days)",
        "Days after which a password must be changed; 0 switches expiry off.",
        _int(0, 365),
        "BATCHLINE_PASSWORD_MAX_AGE_DAYS",
    ),
    "password_history": Setting(
        "Password history",
        "Earlier passwords that cannot be used again.",
        _int(0, 24),
        "BATCHLINE_PASSWORD_HISTORY",
    ),
    "qp_certification": Setting(
        "QP certification",
        "The EU qualified person certifies a batch before QA releases it (EU GMP Annex 16).",
        _bool,
        "BATCHLINE_QP_CERTIFICATION",
    ),
    "reconciliation_tolerance_percent": Setting(
        "Reconciliation tolerance (%)",
        "Material issued to a batch and not accounted for, as % of what was issued, before it is an exception.",
        _percent,
        "BATCHLINE_RECONCILIATION_TOLERANCE_PERCENT",
        decimal=True,
    ),
    "late_entry_minutes": Setting(
        "Late entry (minutes)",
        "A value entered this long after its step started is flagged as a late entry (DI-03).",
        _int(1, 1440),
        "BATCHLINE_LATE_ENTRY_MINUTES",
    ),
    "incompatible_roles": Setting(
        "Roles one person may not hold together",
        "Pairs of roles that no account holds at once; by default an administrator holds no GMP signing role.",
        _pairs,
        "BATCHLINE_INCOMPATIBLE_ROLES",
    ),
    "checkpoint_interval_minutes": Setting(
        "Checkpoint interval (minutes)",
        "How often the worker signs a checkpoint of the audit trail and anchors it outside the database.",
        _int(1, 1440),
        "BATCHLINE_CHECKPOINT_INTERVAL_MINUTES",
    ),
    "verify_interval_minutes": Setting(
        "Verification interval (minutes)",
        "How often the worker runs the full audit verification; a failure raises a security alert.",
        _int(5, 10080),
        "BATCHLINE_VERIFY_INTERVAL_MINUTES",
    ),
    "clock_tolerance_seconds": Setting(
        "Clock tolerance (seconds)",
        "How far an audit entry's time may run behind the one before it in its chain before it is a finding.",
        _int(0, 3600),
        "BATCHLINE_CLOCK_TOLERANCE_SECONDS",
    ),
    "decimal_separator": Setting(
        "Decimal separator",
        "How every typed number is read and every number shown. 'point': 0.5, where a comma, an apostrophe "
        "or a space between digits is a thousands separator someone may have meant, so '1,500' is refused "
        "with both readings; 'comma': 0,5, and a point is the separator refused likewise (DI-05).",
        _one_of(*NOTATIONS),
        "BATCHLINE_DECIMAL_SEPARATOR",
        choices=tuple(NOTATIONS),
    ),
    "registered_stations_only": Setting(
        "Entries from registered stations only",
        "Entries on the floor and at the warehouse are taken only from a registered station's network "
        "address, and weighings only on the scales registered to that station; each entry names its "
        "station (21 CFR 11.10(h)). Switch off only while a site registers its stations.",
        _bool,
        "BATCHLINE_REGISTERED_STATIONS_ONLY",
    ),
    "working_hours": Setting(
        "Working hours",
        "The span of the site's day (HH:MM-HH:MM, across midnight for a night shift) in which people make "
        "entries; a person's audit entry outside it needs the audit-trail reviewer's attention (A11-13).",
        _hours,
        "BATCHLINE_WORKING_HOURS",
    ),
    "working_days": Setting(
        "Working days",
        "The weekdays with working hours (mon,tue,…); an entry on another day needs the reviewer's attention.",
        _days,
        "BATCHLINE_WORKING_DAYS",
    ),
    "trail_review_days": Setting(
        "Periodic audit-trail review (days)",
        "The whole trail is reviewed for a period at least this often; a periodic review is overdue when the "
        "last signed one is older (Annex 11 §9).",
        _int(1, 366),
        "BATCHLINE_TRAIL_REVIEW_DAYS",
    ),
    "access_review_interval_days": Setting(
        "Access review interval (days)",
        "Days after the last signed access review before the next is overdue, and an alert is raised "
        "(21 CFR 11.300(b); Annex 11 §12).",
        _int(7, 730),
        "BATCHLINE_ACCESS_REVIEW_INTERVAL_DAYS",
    ),
    "periodic_evaluation_interval_days": Setting(
        "Periodic evaluation interval (days)",
        "Days after the last signed periodic evaluation of the system before the next is overdue, and an "
        "alert is raised (Annex 11 §11).",
        _int(30, 1095),
        "BATCHLINE_PERIODIC_EVALUATION_INTERVAL_DAYS",
    ),
    "erp_lot_status": Setting(
        "Lot status from the ERP",
        "A lot's status (released, rejected, blocked, quarantine) sent by the ERP's quality management "
        "(B2MML SyncMaterialLot) is applied, audited under the ERP interface's account (S95-04). Off: only "
        "QA changes a lot's status, in Batchline, with an e-signature, and such a message is refused in words.",
        _bool,
        "BATCHLINE_ERP_LOT_STATUS",
    ),
}

SEED_DEFAULTS: dict[str, Any] = {
    "self_approval": False,
    "lockout_failures": 5,
    "idle_timeout_minutes": 15,
    "password_min_length": 10,
    "password_max_age_days": 90,
    "password_history": 5,
    "qp_certification": False,
    "reconciliation_tolerance_percent": "0.5",
    "late_entry_minutes": 60,
    "incompatible_roles": [list(pair) for pair in DEFAULT_INCOMPATIBLE_ROLES],
    "checkpoint_interval_minutes": 15,
    "verify_interval_minutes": 60,
    "clock_tolerance_seconds": 120,
    "decimal_separator": "point",
    "registered_stations_only": True,
    "working_hours": "06:00-22:00",
    "working_days": "mon,tue,wed,thu,fri",
    "trail_review_days": 30,
    "access_review_interval_days": 180,
    "periodic_evaluation_interval_days": 365,
    "erp_lot_status": False,
}

# What a setting added by a later release is in the versions written before it existed, where that
# differs from a new installation's seed: an installation upgraded with no station registered yet
# would otherwise refuse every entry on its floor the moment it starts. It registers its stations
# first, then switches the control on by a signed change like any other.
BEFORE_IT_EXISTED: dict[str, Any] = {
    "registered_stations_only": False,
}


def parse_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """Check every proposed value; raise :class:`Invalid` naming each problem, else the parsed values."""
    problems = []
    parsed: dict[str, Any] = {}
    for name, raw in values.items():
        setting = SETTINGS.get(name)
        if setting is None:
            problems.append(f"{name}: not a GMP setting")
            continue
        try:
            parsed[name] = setting.parse(raw)
        except Invalid as exc:
            problems.append(f"{setting.label}: {exc}")
    if problems:
        raise Invalid("; ".join(problems))
    return parsed


def config_from(version: int, values: Mapping[str, Any]) -> GmpConfig:
    """A version's stored values as a :class:`GmpConfig`; a setting added by a later release takes its default
    (or what it was before it existed, :data:`BEFORE_IT_EXISTED`)."""
    merged = {**SEED_DEFAULTS, **BEFORE_IT_EXISTED, **values}
    return GmpConfig(version=version, **parse_values(merged))


def seed_values(environ: Mapping[str, str]) -> dict[str, Any]:
    """The first version's values: the environment where it names a setting, else the defaults."""
    values = dict(SEED_DEFAULTS)
    for name, setting in SETTINGS.items():
        raw = environ.get(setting.env, "").strip()
        if raw:
            values[name] = raw
    return config_from(1, values).values()


def describe_change(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """Each changed setting in words: "Idle timeout (minutes): 15 → 10"."""
    lines = []
    for name, setting in SETTINGS.items():
        if name in after and before.get(name) != after[name]:
            lines.append(f"{setting.label}: {show(before.get(name))} → {show(after[name])}")
    return lines


def show(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(":".join(p) if isinstance(p, list | tuple) else str(p) for p in value) or "none"
    return str(value)
