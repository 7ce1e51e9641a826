"""The kinds of master data a plant maintains, their fields, and which changes need approval.

Plain Python: what each field means, how a typed value is read and checked,
and whether changing it changes how batches are made or judged (``gmp``).
A GMP field changes only through a second person's signed approval
(masterdata/services.py); a descriptive one (a name, a location) changes at
once, audited with its reason. Pages, API and import read the same table.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from batchline.accounts.roles import ROLES
from batchline.labels.template import LABELS


class Invalid(ValueError):
    """A value that cannot be taken, in words for the person who typed it."""


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    # text, code, int, decimal, bool, choice, list, ref (another item's code), refs, address, roles
    type: str = "text"
    gmp: bool = True
    required: bool = False
    unit: str = ""
    help: str = ""
    choices: tuple[tuple[str, str], ...] = ()
    ref: str = ""  # the kind a ref or refs field names
    max_length: int = 200
    # Fixed once created: the key, and what existing records would read differently (a unit).
    fixed: bool = False
    # Codes scanned from a tag, matched as the scanner's capitals (equipment.selectors.normalise_code).
    upper: bool = False


@dataclass(frozen=True)
class MasterKind:
    name: str
    label: str
    plural: str
    model: str  # app_label.ModelName
    fields: tuple[Field, ...]
    view_permission: str
    help: str = ""
    # Each approved change raises the item's ``version`` (a label template: prints name the version).
    versioned: bool = False

    @property
    def key(self) -> Field:
        return self.fields[0]

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise Invalid(f"{self.label} has no field {name!r}.")

    @property
    def subject_type(self) -> str:
        return self.model.lower()


CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")

MATERIAL_KINDS = (
    ("api", "Active ingredient"),
    ("excipient", "Excipient"),
    ("packaging", "Packaging"),
    ("intermediate", "Intermediate"),
    ("finished", "Finished product"),
)
QUALIFICATION_KINDS = (("sop", "SOP"), ("skill", "Skill"))
# A finished product is a material too (its batches' output lots): counted in tablets or capsules.
UNITS = ("kg", "g", "mg", "L", "mL", "piece", "tablet", "capsule")

KINDS: dict[str, MasterKind] = {
    k.name: k
    for k in (
        MasterKind(
            name="material",
            label="Material",
            plural="Materials",
            model="materials.Material",
            view_permission="materials.view_lot",
            help="What is received, dispensed and made: its unit, shelf life and retest interval.",
            fields=(
                Field("code", "Item code", "code", required=True, fixed=True, max_length=40),
                Field("name", "Name", required=True, help="printed on every container label"),
                Field("kind", "Type", "choice", required=True, choices=MATERIAL_KINDS),
                Field(
                    "unit",
                    "Unit",
                    "choice",
                    required=True,
                    fixed=True,
                    choices=tuple((u, u) for u in UNITS),
                    help="the base unit its lots and containers are counted in",
                ),
                Field("storage", "Storage conditions", help="printed on every container label"),
                Field(
                    "shelf_life_days",
                    "Shelf life",
                    "int",
                    unit="days",
                    help="expiry = receipt or manufacture + this",
                ),
                Field("retest_days", "Retest interval", "int", unit="days"),
                Field(
                    "potency_required",
                    "Lots carry an assay",
                    "bool",
                    help="a receipt without the lot's potency (% of label claim) is refused",
                ),
                Field("gtin", "GTIN", "code", max_length=14, help="the GS1 item number on suppliers' labels"),
            ),
        ),
        MasterKind(
            name="product",
            label="Product",
            plural="Products",
            model="recipes.Product",
            view_permission="recipes.view_masterrecipe",
            help="What master recipes make; a retired product makes no new batch.",
            fields=(
                Field("code", "Product code", "code", required=True, fixed=True, max_length=40),
                Field("name", "Name", required=True, help="printed on the product's and dispensed labels"),
            ),
        ),
        MasterKind(
            name="equipment_class",
            label="Equipment class",
            plural="Equipment classes",
            model="equipment.EquipmentClass",
            view_permission="equipment.view_equipment",
            help="A kind of equipment: the hold times its cleaning validation set, its calibration and "
            "maintenance intervals.",
            fields=(
                Field("code", "Class code", "code", required=True, fixed=True, max_length=40),
                Field("name", "Name", gmp=False, required=True),
                Field("is_scale", "Weighs (a scale)", "bool"),
                Field("capabilities", "Capabilities", "list", help="comma-separated, e.g. granulate, dry"),
                Field(
                    "dirty_hold_hours",
                    "Dirty hold time",
                    "int",
                    unit="hours",
                    help="end of use → cleaning start",
                ),
                Field(
                    "clean_hold_hours", "Clean hold time", "int", unit="hours", help="cleaning end → next use"
                ),
                Field("calibration_interval_days", "Calibration interval", "int", unit="days"),
                Field("maintenance_interval_days", "Maintenance interval", "int", unit="days"),
            ),
        ),
        MasterKind(
            name="equipment",
            label="Equipment unit",
            plural="Equipment units",
            model="equipment.Equipment",
            view_permission="equipment.view_equipment",
            help="One unit, found by the barcode on it; a scale also has its capacity, readability, "
            "minimum weight and where it answers (MT-SICS).",
            fields=(
                Field(
                    "code",
                    "Unit code (its barcode)",
                    "code",
                    required=True,
                    fixed=True,
                    max_length=40,
                    upper=True,
                ),
                Field("name", "Name", gmp=False, required=True),
                Field("site", "Site", "ref", required=True, ref="site"),
                Field("equipment_class", "Class", "ref", required=True, ref="equipment_class"),
                Field(
                    "capacity", "Capacity", "decimal", unit="(its unit)", help="scales: the most it weighs"
                ),
                Field(
                    "readability",
                    "Readability (d)",
                    "decimal",
                    unit="(its unit)",
                    help="scales: its smallest step",
                ),
                Field(
                    "minimum_weight", "Minimum weight", "decimal", unit="(its unit)", help="scales: USP <41>"
                ),
                Field("unit", "Unit", "choice", choices=(("", "—"), ("kg", "kg"), ("g", "g"), ("mg", "mg"))),
                Field("host", "Address (host)", help="scales: where its MT-SICS interface answers"),
                Field("port", "Port", "int"),
            ),
        ),
        MasterKind(
            name="station",
            label="Station",
            plural="Stations",
            model="equipment.Station",
            view_permission="equipment.view_equipment",
            help="A registered terminal of the floor (21 CFR 11.10(h)): entries are taken only from a "
            "registered station, and readings only from the instruments registered to it.",
            fields=(
                Field("code", "Station code", "code", required=True, fixed=True, max_length=40, upper=True),
                Field("name", "Name", gmp=False, required=True),
                Field("site", "Site", "ref", required=True, ref="site"),
                Field("location", "Location", gmp=False, help="room or line"),
                Field(
                    "address",
                    "Network address",
                    "address",
                    required=True,
                    max_length=64,
                    help="the terminal's IP address, or its network (e.g. 10.20.1.0/28)",
                ),
                Field(
                    "devices",
                    "Instruments it may use",
                    "refs",
                    ref="equipment",
                    upper=True,
                    help="unit codes, comma-separated",
                ),
            ),
        ),
        MasterKind(
            name="qualification",
            label="Qualification",
            plural="Qualifications",
            model="training.Qualification",
            view_permission="training.view_trainingrecord",
            help="An SOP at a version or a skill: recipes require it at steps, curricula for roles.",
            fields=(
                Field("code", "Code", "code", required=True, fixed=True, max_length=60),
                Field("title", "Title", gmp=False, required=True),
                Field("kind", "Kind", "choice", required=True, choices=QUALIFICATION_KINDS),
                Field(
                    "version",
                    "Version",
                    "int",
                    required=True,
                    help="training on an older version does not count",
                ),
                Field("retrain_interval_days", "Retraining interval", "int", unit="days"),
                Field(
                    "roles", "In the curriculum of", "roles", help="roles whose holders must be trained on it"
                ),
            ),
        ),
        MasterKind(
            name="label_template",
            label="Label template",
            plural="Label templates",
            model="materials.LabelTemplate",
            view_permission="materials.view_lot",
            versioned=True,
            help="The heading and statement one kind of label prints (LBL-01); every print names the "
            "template and version it was printed to. One in force per label; without one the built-in "
            "heading prints. The fields 21 CFR 211 asks for are printed whatever the template says.",
            fields=(
                Field("code", "Template code", "code", required=True, fixed=True, max_length=40, upper=True),
                Field("name", "Name", gmp=False, required=True),
                Field(
                    "label",
                    "Label",
                    "choice",
                    required=True,
                    fixed=True,
                    choices=tuple(LABELS.items()),
                    help="which label it lays out",
                ),
                Field(
                    "title", "Heading", required=True, max_length=40, help="printed at the top, in capitals"
                ),
                Field(
                    "statement",
                    "Statement",
                    max_length=60,
                    help="a handling or caution text, printed on two short lines at most",
                ),
            ),
        ),
    )
}

# Sites are the frame the rest hangs on; they are read by code here, not maintained as master data.
REF_MODELS = {k.name: k.model for k in KINDS.values()} | {"site": "equipment.Site"}


def kind_of(name: str) -> MasterKind:
    try:
        return KINDS[name]
    except KeyError:
        known = ", ".join(KINDS)
        raise Invalid(f"{name!r} is not a kind of master data Batchline keeps (it keeps {known}).") from None


def _text(raw: Any) -> str:
    if raw is None:
        return ""
    if not isinstance(raw, str):
        raw = str(raw)
    return raw.strip()


def parse(field: Field, raw: Any) -> Any:
    """The stored (JSON-ready) form of a typed or sent value; raises :class:`Invalid` in words."""
    label = field.label
    if field.type == "bool":
        if isinstance(raw, bool):
            return raw
        word = _text(raw).lower()
        if word in ("yes", "true", "1", "on", "y"):
            return True
        if word in ("no", "false", "0", "off", "n", ""):
            return False
        raise Invalid(f"{label}: {raw!r} is neither yes nor no.")
    if field.type in ("list", "refs", "roles"):
        items = raw if isinstance(raw, list | tuple) else _text(raw).replace(";", ",").split(",")
        values = sorted({_text(i).upper() if field.upper else _text(i) for i in items if _text(i)})
        if field.type == "roles":
            unknown = [v for v in values if v not in ROLES]
            if unknown:
                raise Invalid(f"{label}: {', '.join(unknown)} is not a role (roles: {', '.join(ROLES)}).")
        for v in values:
            if len(v) > 60:
                raise Invalid(f"{label}: {v[:20]}… is longer than 60 characters.")
        return values
    text = _text(raw).upper() if field.upper else _text(raw)
    if not text:
        if field.required:
            raise Invalid(f"{label} is required.")
        return None if field.type in ("int", "decimal", "ref") or field.name == "gtin" else ""
    if len(text) > field.max_length:
        raise Invalid(f"{label} is {len(text)} characters long; it holds at most {field.max_length}.")
    if field.type == "code" and not CODE.match(text):
        raise Invalid(f"{label}: {text!r} may hold only letters, digits and . _ / - (no spaces).")
    if field.type == "int":
        if not (text.isascii() and text.isdigit()):  # "²" is a digit to Python, not a number of days
            raise Invalid(f"{label}: {text!r} is not a whole number of {field.unit or 'units'}.")
        value = int(text)
        if value > 100_000:
            raise Invalid(f"{label}: {value} {field.unit} is not plausible.")
        return value
    if field.type == "decimal":
        try:
            number = Decimal(text)
        except InvalidOperation:
            raise Invalid(
                f"{label}: {text!r} is not a number (write a point for decimals, e.g. 0.01)."
            ) from None
        if not number.is_finite() or number <= 0 or number >= Decimal("1e12"):
            raise Invalid(f"{label}: {text} must be a positive number.")
        if -number.as_tuple().exponent > 6:  # type: ignore[operator]
            raise Invalid(f"{label}: {text} has more than 6 decimal places.")
        return format(number.normalize(), "f")
    if field.type == "choice":
        allowed = [c for c, _ in field.choices]
        if text not in allowed:
            raise Invalid(f"{label}: {text!r} is not one of {', '.join(a for a in allowed if a)}.")
        return text
    if field.type == "address":
        try:
            network = ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise Invalid(
                f"{label}: {text!r} is not an IP address or a network such as 10.20.1.0/28."
            ) from None
        if network.num_addresses > 256:
            raise Invalid(
                f"{label}: {text} covers {network.num_addresses} addresses; a station's is at most a /24."
            )
        return str(network) if "/" in text else str(network.network_address)
    return text


def parse_values(kind: MasterKind, raw: Mapping[str, Any], *, creating: bool) -> dict[str, Any]:
    """Every sent field read and checked; unknown fields refused; on creation, required ones present."""
    names = {f.name for f in kind.fields}
    unknown = sorted(set(raw) - names)
    if unknown:
        raise Invalid(
            f"{kind.label} has no field {', '.join(unknown)} (its fields: {', '.join(sorted(names))})."
        )
    out = {name: parse(kind.field(name), value) for name, value in raw.items()}
    if creating:
        missing = [f.label for f in kind.fields if f.required and f.name not in raw]
        if missing:
            raise Invalid(f"A new {kind.label.lower()} needs: {', '.join(missing)}.")
    return out


def shown(field: Field, value: Any, unit: str = "") -> str:
    """A stored value as a person reads it: with its unit, yes/no, a list joined.

    ``unit`` is the item's own unit, for a field counted in it (a scale's capacity in g or kg).
    """
    if value is None or value == "" or value == []:
        return "—"
    if field.unit.startswith("(") and unit:
        return f"{value} {unit}"
    if field.type == "bool":
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if field.type == "choice":
        return dict(field.choices).get(value, str(value))
    if field.unit and not field.unit.startswith("("):
        return f"{value} {field.unit}"
    return str(value)


def describe(kind: MasterKind, before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """What a change does, in words and in order of importance: GMP fields first, in table order."""
    rows = []
    was, now = before.get("unit") or "", after.get("unit", before.get("unit")) or ""
    for f in sorted(kind.fields, key=lambda f: not f.gmp):
        if f.name in after and before.get(f.name) != after[f.name]:
            rows.append(f"{f.label} {shown(f, before.get(f.name), was)} → {shown(f, after[f.name], now)}")
    return rows
