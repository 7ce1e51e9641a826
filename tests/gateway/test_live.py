"""Readings judged as the gateway stores them: a breach while the step runs is an exception on the batch;
readings forwarded from the spool are stored, not judged."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from batchline.execution.models import BatchException, ProcessAlarm
from batchline.gateway import store
from batchline.gateway.live import LiveJudging
from batchline.gateway.models import StoredReading
from batchline.gateway.readings import Connection, Protocol, Quality, Reading, Source, TagSpec
from batchline.gateway.runner import Writer
from batchline.gateway.spool import Spool
from tests.execution.test_engine import complete
from tests.execution.test_monitoring import plant  # noqa: F401 (the fixture)

pytestmark = pytest.mark.django_db
OPC = "opc.tcp://127.0.0.1:4840"
CONFIGURATION = [
    Connection(
        protocol=Protocol.OPCUA,
        endpoint=OPC,
        tags=(TagSpec(unit="FBD-01", tag="ns=2;s=Inlet", name="inlet_temp", unit_of_measure="K"),),
    )
]


def kelvin(values: list[float], start: dt.datetime) -> list[Reading]:
    return [
        Reading(
            Source("FBD-01", Protocol.OPCUA, OPC, "ns=2;s=Inlet"),
            v,
            Quality.GOOD,
            start + dt.timedelta(seconds=1 + 5 * i),
            start + dt.timedelta(seconds=1 + 5 * i, milliseconds=20),
        )
        for i, v in enumerate(values)
    ]


@pytest.mark.req("S95-06", "IPC-01", "DEV-01")
def test_a_breach_stored_while_its_step_runs_raises_the_exception_on_the_batch(plant, tmp_path: Path) -> None:  # noqa: F811
    _people, batch = plant
    started = batch.steps.get(key="drying").started_at
    writer = Writer(
        spool=Spool(tmp_path / "s.sqlite3", max_rows=100),
        name="gw",
        stored_hook=LiveJudging(CONFIGURATION).stored,
    )
    # 345.15 K is 72 °C, beyond the step's 70 °C for the 10 s it asks.
    readings = kelvin([333.15, 345.15, 345.15, 345.15], started)
    writer.handle(store.rows_of(readings), readings)
    assert StoredReading.objects.count() == 4
    (alarm,) = ProcessAlarm.objects.filter(step__batch=batch, needs_acknowledgement=True)
    assert (alarm.tag, alarm.equipment, alarm.exception.code) == (
        "ns=2;s=Inlet",
        "FBD-01",
        "CRITICAL_OUT_OF_SPECIFICATION",
    )


@pytest.mark.req("S95-06", "A11-20")
def test_readings_forwarded_from_the_spool_after_an_outage_are_judged_at_their_own_times(
    plant,  # noqa: F811
    tmp_path: Path,
) -> None:
    _people, batch = plant
    started = batch.steps.get(key="drying").started_at
    spool = Spool(tmp_path / "s.sqlite3", max_rows=100)
    # An excursion while the database was away: the readings waited in the gateway's spool.
    spool.put(store.rows_of(kelvin([333.15, 345.15, 345.15, 345.15], started)))
    writer = Writer(spool=spool, name="gw", stored_hook=LiveJudging(CONFIGURATION).stored)
    writer.handle([])
    assert StoredReading.objects.count() == 4 and len(spool) == 0
    (alarm,) = ProcessAlarm.objects.filter(step__batch=batch, needs_acknowledgement=True)
    assert alarm.exception.code == "CRITICAL_OUT_OF_SPECIFICATION"
    assert alarm.at == started + dt.timedelta(seconds=6)  # when it happened, not when it was forwarded


@pytest.mark.req("S95-06", "IPC-01")
def test_a_breach_after_its_step_completed_is_stored_and_raises_nothing_before_the_judge_is_refreshed(
    plant,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from batchline.gateway import live

    monkeypatch.setattr(live, "REFRESH_SECONDS", 3600.0)  # however slow this machine, not refreshed
    people, batch = plant
    started = batch.steps.get(key="drying").started_at
    judge = LiveJudging(CONFIGURATION)
    writer = Writer(spool=Spool(tmp_path / "s.sqlite3", max_rows=100), name="gw", stored_hook=judge.stored)
    read = kelvin([333.15], started)  # in range: the step's first value from the machine
    writer.handle(store.rows_of(read), read)
    complete(people, batch, "drying")
    exceptions = BatchException.objects.filter(batch=batch).count()
    # The judge has not been refreshed since (the gateway's status round is seconds apart).
    breach = kelvin([333.15, 345.15, 345.15, 345.15, 345.15], started + dt.timedelta(seconds=5))[1:]
    writer.handle(store.rows_of(breach), breach)
    assert StoredReading.objects.count() == 5
    assert BatchException.objects.filter(batch=batch).count() == exceptions
    assert not ProcessAlarm.objects.filter(step__batch=batch, needs_acknowledgement=True).exists()
    assert judge.judging.watching == 1  # the airflow monitor is let go when it has something to say


@pytest.mark.req("S95-06", "A11-20", "DI-06")
def test_a_breach_from_while_the_step_ran_forwarded_after_it_completed_is_still_recorded(
    plant,  # noqa: F811
    tmp_path: Path,
) -> None:
    from tests.execution.test_engine import age

    people, batch = plant
    step = batch.steps.get(key="drying")
    age(step, 5)  # the step has run five minutes
    started = batch.steps.get(key="drying").started_at
    judge = LiveJudging(CONFIGURATION)
    writer = Writer(spool=Spool(tmp_path / "s.sqlite3", max_rows=100), name="gw", stored_hook=judge.stored)
    first = kelvin([333.15], started)
    writer.handle(store.rows_of(first), first)
    complete(people, batch, "drying")
    # Held in the spool through an outage: the excursion of the step's first minute, forwarded now.
    late = kelvin([333.15, 345.15, 345.15, 345.15, 345.15], started + dt.timedelta(seconds=5))[1:]
    writer.handle(store.rows_of(late), late)
    (alarm,) = ProcessAlarm.objects.filter(step__batch=batch, needs_acknowledgement=True)
    assert alarm.exception.code == "CRITICAL_OUT_OF_SPECIFICATION"
    assert alarm.at < batch.steps.get(key="drying").completed_at  # when it happened, within the step
