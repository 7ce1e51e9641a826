"""Inputs read from a machine (issue 15, item 4): "take reading" records the gateway's latest value of
the tag with where it came from; a value typed instead needs a reason and a second person and is
marked manual; the step's signatures bind the reading's provenance."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from batchline.equipment.models import Equipment
from batchline.execution import instruments
from batchline.execution import services as ex
from batchline.execution.models import BatchException, InstrumentReading, StepValue
from batchline.gateway import services, store
from batchline.gateway.models import ConnectionStatus
from batchline.gateway.readings import Protocol, Quality, Reading, Source
from batchline.recipes.document import RecipeInvalid, parse
from batchline.reports.content import record_content
from batchline.signatures.models import Signature
from batchline.signatures.services import signer_authenticate
from batchline.signatures.status import batch_statuses, broken_signatures
from tests.conftest import PASSWORD
from tests.execution.test_engine import (
    A,
    complete,
    sign,
)
from tests.execution.test_monitoring import make_dryer_plant
from tests.signatures.test_signing import station

from .conftest import tag_configured

pytestmark = pytest.mark.django_db
OPC = "opc.tcp://dryer-plc:4840"

RECIPE = """\
format: batchline.recipe/1
recipe: {code: LOD-1, name: Drying end, product_code: DRYT, product_name: Dried granules, batch_size: {quantity: 10, unit: kg}}
operations:
  - key: dry
    name: Drying
    steps:
      - {key: dryer, kind: equipment_id, title: Identify the dryer, equipment_class: FBD}
      - key: lod
        kind: data_entry
        title: Read the end of drying
        signs: true
        inputs:
          - {name: moisture, label: Product moisture, unit: "%", specification: {low: 1, high: 3}, plausible: {low: 0, high: 20}, critical: true, device: {equipment: dryer, parameter: product_moisture, max_age_seconds: 60}}
          - {name: inlet_final, label: Final inlet air temperature, unit: "°C", device: {equipment: dryer, parameter: inlet_temp, at_completion: true}}
          - {name: remark, label: Remark, type: text, required: false}
      - {key: discharge, kind: instruction, title: Discharge the dryer}
"""


@pytest.fixture
def lod():
    return make_lod_plant()


def make_lod_plant():
    """The recipe made effective, the dryer's PLC and its two tags configured (request and approval), a
    batch with the dryer identified and the reading step running."""
    people, batch = make_dryer_plant(RECIPE, "lod")
    engineer = A(people["engineer"])
    services.endpoint_create(
        actor=engineer, code="fbd-plc", name="Dryer PLC", protocol="opcua", address=OPC, reason="go-live"
    )
    unit = Equipment.objects.get(code="FBD-01")
    for tag, name, uom in (("ns=2;s=LOD", "product_moisture", "%"), ("ns=2;s=Inlet", "inlet_temp", "K")):
        tag_configured(
            people["engineer"],
            people["approver"],
            endpoint="fbd-plc",
            equipment=unit,
            tag=tag,
            name=name,
            unit_of_measure=uom,
            reason="go-live",
        )
    return people, batch


def stored(
    tag: str, value: float | None, *, ago: float = 1, quality: Quality = Quality.GOOD, status: str = ""
) -> None:
    """A reading as the gateway stores it (gateway.store, its own write path)."""
    at = timezone.now() - dt.timedelta(seconds=ago)
    r = Reading(
        Source("FBD-01", Protocol.OPCUA, OPC, tag),
        value,
        quality,
        at,
        at + dt.timedelta(milliseconds=40),
        status=status,
    )
    store.rows_store(store.rows_of([r]))


def take(people, batch, name: str = "moisture", who: str = "operator") -> StepValue:
    return instruments.step_take_reading(
        actor=A(people[who]), user=people[who], batch=batch, step_key="lod", name=name
    )


def witness(people, who: str = "supervisor"):  # type: ignore[no-untyped-def]
    """A second person confirms a typed value at the operator's station."""
    return signer_authenticate(
        request=station(people["operator"]), username=who, password=PASSWORD, meaning="verified", witness=True
    )


def refused_codes(call) -> list[str]:  # type: ignore[no-untyped-def]
    with pytest.raises(ex.ExecutionRefused) as refused:
        call()
    return refused.value.verdict.codes


@pytest.mark.req("IPC-04", "S95-06", "DI-01", "DI-04")
def test_a_reading_taken_from_the_machine_is_recorded_with_its_device_tag_times_and_quality(lod) -> None:
    people, batch = lod
    stored("ns=2;s=LOD", 2.4, ago=5)
    stored("ns=2;s=LOD", 2.2, ago=2)  # the latest is taken
    value = take(people, batch)
    assert (value.source, value.text, value.number, value.unit) == ("device", "2.2", Decimal("2.2"), "%")
    assert value.in_specification is True and value.critical
    r = value.reading
    assert (r.equipment, r.protocol, r.endpoint, r.tag, r.raw, r.raw_unit, r.quality) == (
        "FBD-01",
        "opcua",
        OPC,
        "ns=2;s=LOD",
        "2.2",
        "%",
        "good",
    )
    assert r.source_time is not None and r.gateway_time - r.source_time == dt.timedelta(milliseconds=40)
    assert len(r.key) == 32
    # Taken once: another value is a correction with a second person.
    assert refused_codes(lambda: take(people, batch)) == ["READING_TAKEN"]
    # Nothing half-written by the refusal; the refusal itself recorded for QA.
    assert StepValue.objects.filter(step__batch=batch, name="moisture").count() == 1
    assert BatchException.objects.filter(batch=batch, code="REFUSED_READING_TAKEN").exists()


@pytest.mark.req("IPC-04", "DI-05", "S95-06")
def test_a_reading_is_converted_into_the_recipes_unit_and_judged_against_its_specification(lod) -> None:
    people, batch = lod
    stored("ns=2;s=Inlet", 333.15)  # K from the PLC; °C in the recipe
    stored("ns=2;s=LOD", 3.6)
    inlet = take(people, batch, "inlet_final")
    assert (inlet.text, inlet.unit, inlet.reading.raw, inlet.reading.raw_unit) == ("60", "°C", "333.15", "K")
    moisture = take(people, batch)
    assert moisture.in_specification is False
    (oos,) = BatchException.objects.filter(batch=batch, code="CRITICAL_OUT_OF_SPECIFICATION")
    assert oos.value == moisture and oos.blocks


@pytest.mark.req("IPC-04", "DI-06", "S95-06")
def test_a_bad_stale_old_or_missing_reading_is_not_taken_and_an_uncertain_one_is_flagged(lod) -> None:
    people, batch = lod
    assert refused_codes(lambda: take(people, batch)) == ["READING_NOT_USABLE"]  # nothing read yet
    stored("ns=2;s=LOD", 2.0, ago=310)  # older than the 60 s asked, and the connection not reported alive
    with pytest.raises(ex.ExecutionRefused) as refused:
        take(people, batch)
    assert refused.value.verdict.codes == ["READING_NOT_CURRENT"]
    assert "the last reading came 5 min ago" in str(refused.value)
    # A report-by-exception source whose connection is alive: its last value still holds, unless Bad.
    ConnectionStatus.objects.create(
        gateway="gw", protocol="opcua", endpoint=OPC, connected=True, updated_at=timezone.now()
    )
    stored("ns=2;s=LOD", None, ago=200, quality=Quality.BAD, status="BadSensorFailure")
    assert refused_codes(lambda: take(people, batch)) == ["READING_NOT_USABLE"]
    stored("ns=2;s=LOD", 2.1, ago=100, quality=Quality.UNCERTAIN, status="UncertainLastUsableValue")
    value = take(people, batch)
    assert (value.text, value.reading.quality, value.reading.status) == (
        "2.1",
        "uncertain",
        "UncertainLastUsableValue",
    )
    (flag,) = BatchException.objects.filter(batch=batch, code="READING_UNCERTAIN")
    assert "Uncertain quality" in flag.message and flag.equipment == "FBD-01"
    assert BatchException.objects.filter(batch=batch, code="REFUSED_READING_NOT_CURRENT").exists()


@pytest.mark.req("IPC-04", "P11-06", "S95-06")
def test_a_device_input_is_never_typed_at_completion_and_the_step_takes_its_own_at_completion(lod) -> None:
    people, batch = lod
    stored("ns=2;s=Inlet", 334.15)
    codes = refused_codes(
        lambda: complete(people, batch, "lod", entries={"moisture": "2.0"}, signer=sign(people["operator"]))
    )
    assert codes == ["READ_FROM_DEVICE"]
    codes = refused_codes(lambda: complete(people, batch, "lod", signer=sign(people["operator"])))
    assert codes == ["READING_NOT_TAKEN"]
    assert not StepValue.objects.filter(step__batch=batch, step__key="lod").exists()
    stored("ns=2;s=LOD", 2.5)
    take(people, batch)
    step = complete(people, batch, "lod", signer=sign(people["operator"]))
    assert step.state == "done"
    inlet = StepValue.objects.get(step=step, name="inlet_final")
    assert (inlet.source, inlet.text, inlet.reading.tag) == ("device", "61", "ns=2;s=Inlet")


@pytest.mark.req("IPC-04", "A11-08", "DEV-02", "P11-06")
def test_a_value_typed_instead_needs_a_reason_and_a_second_persons_signature_and_is_marked_manual(
    lod,
) -> None:
    people, batch = lod
    op = people["operator"]

    def enter(**kw):  # type: ignore[no-untyped-def]
        args = {
            "name": "moisture",
            "text": "2.3",
            "reason": "NIR probe fouled",
            "witness": witness(people),
        }
        args.update(kw)
        return instruments.step_enter_reading(actor=A(op), user=op, batch=batch, step_key="lod", **args)

    assert refused_codes(lambda: enter(reason=" ", witness=None)) == ["REASON_REQUIRED", "WITNESS_REQUIRED"]
    assert refused_codes(lambda: enter(witness=sign(op))) == ["WITNESS_REQUIRED"]  # not oneself
    assert refused_codes(lambda: enter(text="25")) == ["VALUE_IMPLAUSIBLE"]
    assert not StepValue.objects.filter(step__batch=batch, name="moisture").exists()
    value = enter()
    assert (value.source, value.text, value.reason) == ("manual", "2.3", "NIR probe fouled")
    assert not InstrumentReading.objects.filter(value=value).exists()
    (witnessed,) = Signature.objects.filter(record_type="execution.stepvalue", record_id=str(value.pk))
    assert (witnessed.meaning, witnessed.signer.username) == ("verified", "supervisor")
    (flag,) = BatchException.objects.filter(batch=batch, code="MANUAL_READING_ENTRY")
    assert "typed by hand instead of read from FBD-01: 2.3 %" in flag.message


@pytest.mark.req("IPC-04", "DI-05", "P11-05", "A11-08")
def test_the_steps_signature_binds_where_a_reading_came_from_and_a_correction_needs_the_second_person(
    lod,
) -> None:
    people, batch = lod
    stored("ns=2;s=Inlet", 334.15)
    stored("ns=2;s=LOD", 2.5)
    value = take(people, batch)
    complete(people, batch, "lod", signer=sign(people["operator"]))
    content = record_content(batch)
    step = next(s for s in content["steps"] if s["key"] == "lod")
    shown = next(v for v in step["values"] if v["name"] == "moisture")
    assert (shown["source"], shown["reading"]["tag"], shown["reading"]["quality"]) == (
        "device",
        "ns=2;s=LOD",
        "good",
    )
    assert not any(s.broken for s in batch_statuses(batch)[1].values()) and broken_signatures() == []
    from batchline.reports import batchml

    xml = batchml.render_batchml(content)
    assert batchml.validate(xml) == []
    assert "(read from FBD-01 (opcua opc.tcp://dryer-plc:4840 ns=2;s=LOD): 2.5 %, good" in xml.decode()

    # Someone who can write to the database changes where the value came from: the signature says so.
    with connection.cursor() as c, pytest.raises(DatabaseError), transaction.atomic():
        c.execute(
            "UPDATE execution_instrumentreading SET tag = 'ns=2;s=Other' WHERE id = %s",
            [value.reading.pk],
        )
    from batchline.audit.db import triggers_drop, triggers_install

    triggers_drop(connection, ("execution_instrumentreading",))
    try:
        with connection.cursor() as c:
            c.execute(
                "UPDATE execution_instrumentreading SET tag = 'ns=2;s=Other' WHERE id = %s",
                [value.reading.pk],
            )
        broken = [s.text for s in batch_statuses(batch)[1].values() if s.broken]
        assert len(broken) == 1 and len(broken_signatures()) == 1
        with connection.cursor() as c:
            c.execute(
                "UPDATE execution_instrumentreading SET tag = 'ns=2;s=LOD' WHERE id = %s", [value.reading.pk]
            )
    finally:
        triggers_install(connection, ("execution_instrumentreading",))

    op = people["operator"]
    correct = dict(
        actor=A(op),
        user=op,
        batch=batch,
        step_key="lod",
        name="moisture",
        text="2.6",
        reason="probe recalibrated",
        signer=sign(op),
        confirm_out_of_specification=True,
    )
    assert refused_codes(lambda: ex.value_correct(**correct)) == ["WITNESS_REQUIRED"]
    corrected = ex.value_correct(**correct, witness=witness(people))
    assert (corrected.source, corrected.corrects_id, corrected.text) == ("manual", value.pk, "2.6")
    assert (
        Signature.objects.filter(record_type="execution.stepvalue", record_id=str(corrected.pk)).count() == 2
    )


@pytest.mark.req("IPC-04", "MBR-01")
def test_a_device_input_names_an_earlier_equipment_step_and_is_a_number() -> None:
    bad = RECIPE.replace(
        "device: {equipment: dryer, parameter: inlet_temp", "device: {equipment: lod, parameter: inlet_temp"
    )
    with pytest.raises(RecipeInvalid) as invalid:
        parse(bad)
    assert "which must be an equipment identification step that comes before it" in str(invalid.value)
    typed = RECIPE.replace(
        "{name: remark, label: Remark, type: text, required: false}",
        "{name: remark, label: Remark, type: text, device: {equipment: dryer}}",
    )
    with pytest.raises(RecipeInvalid) as invalid:
        parse(typed)
    assert "'remark' is read from a machine: its type is number" in str(invalid.value)
    # A recipe without device inputs serialises as it did before they existed (its hash unchanged).
    plain = parse(
        RECIPE.replace(", device: {equipment: dryer, parameter: product_moisture, max_age_seconds: 60}", "")
    )
    assert "device" not in plain.model_dump()["operations"][0]["steps"][1]["inputs"][0]


@pytest.mark.req("IPC-04")
def test_the_gateway_offers_its_readings_to_execution() -> None:
    from batchline.gateway.selectors import device_value

    assert instruments.reading_source is device_value
