"""Each monitored value's course over its step, frozen into the batch record when the step completes and
drawn on the record page (SVG) and in the PDF/A record (issue 15)."""

from __future__ import annotations

import datetime as dt
import io
import re
from decimal import Decimal
from pathlib import Path

import pytest
from pypdf import PdfReader

from batchline.audit.services import Actor
from batchline.execution.models import ProcessTrend
from batchline.gateway import services, store
from batchline.gateway.live import LiveJudging
from batchline.gateway.readings import Protocol, Quality, Reading, Source
from batchline.gateway.runner import Writer
from batchline.gateway.selectors import connections
from batchline.gateway.spool import Spool
from batchline.reports.content import record_content
from batchline.reports.pdf import render_pdf
from tests.execution.test_engine import age, complete
from tests.execution.test_monitoring import plant  # noqa: F401 (the fixture)
from tests.reports.test_record_pdfa import qpdf_check
from tests.reports.test_records import pdf_text

from .conftest import tag_configured

pytestmark = pytest.mark.django_db
OPC = "opc.tcp://dryer-plc:4840"


def configure(engineer, approver) -> None:  # type: ignore[no-untyped-def]
    from batchline.equipment.models import Equipment

    actor = Actor.of(engineer, via="web")
    services.endpoint_create(
        actor=actor, code="fbd-plc", name="Dryer PLC", protocol="opcua", address=OPC, reason="go-live"
    )
    for tag, name, uom in (("ns=2;s=Inlet", "inlet_temp", "K"), ("ns=2;s=Air", "airflow", "m**3/h")):
        tag_configured(
            engineer,
            approver,
            endpoint="fbd-plc",
            equipment=Equipment.objects.get(code="FBD-01"),
            tag=tag,
            name=name,
            unit_of_measure=uom,
            reason="go-live",
        )


def readings(tag: str, values: list[float | None], start: dt.datetime) -> list[Reading]:
    return [
        Reading(
            Source("FBD-01", Protocol.OPCUA, OPC, tag),
            v,
            Quality.GOOD if v is not None else Quality.BAD,
            start + dt.timedelta(seconds=2 + 10 * i),
            start + dt.timedelta(seconds=2 + 10 * i, milliseconds=30),
            status="" if v is not None else "BadSensorFailure",
        )
        for i, v in enumerate(values)
    ]


@pytest.mark.req("S95-06", "BR-01", "BR-02", "DI-04")
def test_a_steps_process_values_are_frozen_into_the_record_and_drawn_with_their_limits(
    plant,  # noqa: F811
    login,
    tmp_path: Path,
) -> None:
    people, batch = plant
    configure(people["engineer"], people["approver"])
    step = batch.steps.get(key="drying")
    age(step, 5)  # the step has run five minutes
    step.refresh_from_db()
    started = step.started_at
    writer = Writer(
        spool=Spool(tmp_path / "s.sqlite3", max_rows=100),
        name="gw",
        stored_hook=LiveJudging(connections()).stored,
    )
    # Inlet air in kelvin from the PLC (333.15 K = 60 °C); air flow in range.
    inlet = readings("ns=2;s=Inlet", [333.15, 334.15, 332.65, 335.15], started)
    air = readings("ns=2;s=Air", [1000.0, 1010.0, 990.0], started)
    writer.handle(store.rows_of(inlet + air), inlet + air)
    assert complete(people, batch, "drying").state == "done"

    frozen = {t.name: t for t in ProcessTrend.objects.filter(step=step)}
    assert set(frozen) == {"inlet_temp", "airflow"}
    t = frozen["inlet_temp"]
    assert (t.readings, t.usable, t.unit, t.equipment) == (4, 4, "°C", "FBD-01")
    assert (float(t.minimum), float(t.maximum)) == (59.5, 62.0)  # converted into the recipe's °C
    assert t.start == started and len(t.buckets) == 4

    content = record_content(batch)
    (section,) = content["process_values"]
    trend = next(x for x in section["trends"] if x["name"] == "inlet_temp")
    assert (trend["minimum"], trend["maximum"], trend["usable"], trend["readings"]) == ("59.5", "62", 4, 4)
    assert {a["record_type"] for a in content["audit_trail"]} >= {"execution.processtrend"}

    page = login(people["operator"]).get(f"/batches/{batch.number}/record/").content.decode()
    figure = page[page.index('data-testid="record-trend"') :]
    assert "Inlet air temperature (°C) on FBD-01" in figure and "4 usable of 4 readings" in figure
    assert re.search(r'<polygon points="[0-9., ]+" class="trend-band">', figure)
    assert figure.count('class="limit-specification"') >= 2 and 'class="limit-action"' in figure

    pdf = render_pdf(content, time_zone="UTC")
    assert "No syntax or stream encoding errors found" in qpdf_check(pdf, tmp_path)
    flat = re.sub(r"\s+", " ", pdf_text(pdf, tmp_path))
    assert "4 usable of 4 readings, lowest 59.5, highest 62 °C" in flat and "specification 70" in flat
    fonts = {
        f.get_object()["/BaseFont"]
        for p in PdfReader(io.BytesIO(pdf)).pages
        for f in p["/Resources"]["/Font"].values()
    }
    assert all(str(name).endswith(("DejaVuSansCondensed", "-Bold", "-Oblique")) for name in fonts), fonts

    # The machine-readable record (BR-02) carries the course too, valid against BatchML.
    from batchline.reports import batchml

    xml = batchml.render_batchml(content)
    assert batchml.validate(xml) == []
    text = xml.decode()
    assert "<EventSubType>Process Data</EventSubType>" in text
    assert "Inlet air temperature on FBD-01 from" in text and "<ValueString>59.5..62</ValueString>" in text


@pytest.mark.req("S95-06", "DI-06")
def test_a_step_whose_values_never_reached_the_store_says_so_in_its_record(plant) -> None:  # noqa: F811
    from batchline.execution import monitoring
    from batchline.rules.alarms import AlarmJudge

    people, batch = plant
    inlet = {w.name: w for w in monitoring.watched()}["inlet_temp"]
    judge = AlarmJudge(inlet.limits, since=inlet.started_at)
    for event in judge.value(inlet.started_at + dt.timedelta(seconds=1), Decimal(60)):
        monitoring.event_record(
            actor=Actor(None, "gateway", "Gateway", "system"), watched=inlet, judged=event
        )
    assert complete(people, batch, "drying").state == "done"
    (section,) = record_content(batch)["process_values"]
    trend = next(x for x in section["trends"] if x["name"] == "inlet_temp")
    assert (trend["readings"], trend["usable"], trend["minimum"], trend["buckets"]) == (0, 0, None, [])


@pytest.mark.req("S95-06", "BR-01", "P11-03")
def test_a_step_that_ran_past_the_downsampling_age_freezes_its_trend_from_the_summaries(
    plant,  # noqa: F811
    tmp_path: Path,
) -> None:
    from batchline.gateway import downsample
    from batchline.gateway.models import ProcessSummary, StoredReading

    people, batch = plant
    configure(people["engineer"], people["approver"])
    step = batch.steps.get(key="drying")
    age(step, 8 * 24 * 60)  # a step that has run eight days: its first day's readings are summarised
    step.refresh_from_db()
    writer = Writer(
        spool=Spool(tmp_path / "s.sqlite3", max_rows=100),
        name="gw",
        stored_hook=LiveJudging(connections()).stored,
    )
    inlet = readings("ns=2;s=Inlet", [333.15, 334.15, 332.65, 335.15], step.started_at)
    air = readings("ns=2;s=Air", [1000.0, 1010.0, 990.0], step.started_at)
    writer.handle(store.rows_of(inlet + air), inlet + air)
    plan = downsample.Plan(after_days=7, seconds=60, retention_days=0, summary_retention_days=0)
    assert downsample.downsample_apply(plan=plan)
    assert not StoredReading.objects.exists() and ProcessSummary.objects.count() >= 2
    assert complete(people, batch, "drying").state == "done"

    t = ProcessTrend.objects.get(step=step, name="inlet_temp")
    # Each bucket's lowest and highest value is what the frozen trend keeps: the same as from the raw rows.
    assert (float(t.minimum), float(t.maximum), t.unit) == (59.5, 62.0, "°C")
    assert t.usable == t.readings and t.buckets
