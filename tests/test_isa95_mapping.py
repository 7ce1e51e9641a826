"""docs/isa95.md, the map of ISA-95 objects to Batchline's records, held true to the code (S95-01)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.apps import apps
from django.core.exceptions import FieldDoesNotExist

DOC = Path(__file__).resolve().parents[1] / "docs" / "isa95.md"
ROW = re.compile(r"^\| (?P<object>[^|]+?) \| `(?P<record>[a-z]+\.[A-Za-z]+)` \| (?P<fields>[^|]+?) \|")

# The ISA-95 objects S95-01 names: personnel, equipment, material definition, lot and sublot,
# process segment, operations definition, schedule and performance.
REQUIRED = (
    "Person",
    "Personnel class",
    "Equipment",
    "Equipment class",
    "Material definition",
    "Material lot",
    "Material sublot",
    "Process segment",
    "Operations definition",
    "Operations schedule / request",
    "Operations performance / response",
)


def rows() -> list[tuple[str, str, list[str]]]:
    found = []
    for line in DOC.read_text(encoding="utf-8").splitlines():
        if match := ROW.match(line):
            fields = [name.strip() for name in match["fields"].split(",")]
            found.append((match["object"], match["record"], fields))
    return found


@pytest.mark.req("S95-01")
def test_every_isa95_object_the_requirement_names_has_a_row() -> None:
    objects = {name for name, _, _ in rows()}
    assert not set(REQUIRED) - objects, f"docs/isa95.md lacks rows for {sorted(set(REQUIRED) - objects)}"


@pytest.mark.req("S95-01")
def test_every_record_and_field_the_map_names_exists() -> None:
    wrong = []
    for name, record, fields in rows():
        try:
            model = apps.get_model(record)
        except LookupError:
            wrong.append(f"{name}: no record {record}")
            continue
        for field in fields:
            try:
                model._meta.get_field(field)
            except FieldDoesNotExist:
                wrong.append(f"{name}: {record} has no field {field}")
    assert rows() and not wrong, wrong
