"""The gateway process with a test adapter: readings through the queue into the table, and
store-and-forward across a real database outage (PostgreSQL refusing connections)."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from django.db import connection

from batchline.audit.models import AuditEntry
from batchline.gateway import store
from batchline.gateway.models import GatewayStatus, StoredReading
from batchline.gateway.readings import Connection, ConnectionState, Emit, Protocol, Reading, TagSpec, now
from batchline.gateway.runner import REGISTRY, Gateway, Writer
from batchline.gateway.selectors import connection_statuses, gateway_statuses
from batchline.gateway.spool import Spool

from .conftest import ENDPOINT, T0, minute_readings


class FeedAdapter:
    """A real ``readings.Adapter``: it emits what the test feeds it, from the test's thread."""

    made: ClassVar[list[FeedAdapter]] = []

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.state = ConnectionState()
        self.ready = threading.Event()
        self.made.append(self)

    async def run(self, emit: Emit) -> None:
        self.loop = asyncio.get_running_loop()
        self.inbox: asyncio.Queue[Reading] = asyncio.Queue()
        self.state.connected, self.state.since = True, now()
        self.ready.set()
        while True:
            item = await self.inbox.get()
            await emit(item)
            self.state.received += 1

    def feed(self, readings: list[Reading]) -> None:
        self.ready.wait(30)
        for item in readings:
            self.loop.call_soon_threadsafe(self.inbox.put_nowait, item)


CONFIGURATION = [
    Connection(
        protocol=Protocol.OPCUA, endpoint=ENDPOINT, tags=(TagSpec(unit="GRAN-01", tag="ns=2;s=Inlet"),)
    ),
    Connection(
        protocol=Protocol.MODBUS,
        endpoint="modbus://127.0.0.1:5020/1",
        tags=(TagSpec(unit="DRY-01", tag="40001"),),
    ),
]
# The test's adapter for OPC UA, found by its module path as the real ones are; Modbus names a
# module that does not exist, as before its adapter is merged.
TEST_REGISTRY = {
    **REGISTRY,
    Protocol.OPCUA: "tests.gateway.test_gateway:FeedAdapter",
    Protocol.MODBUS: "tests.gateway.no_such_module:ModbusAdapter",
}


class Running:
    """A gateway on a thread of its own with its own event loop, as the command runs it."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.loop = asyncio.new_event_loop()
        self.stop = asyncio.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self.loop.run_until_complete(self.gateway.run(self.stop))
        except BaseException as exc:
            self.error = exc

    def __enter__(self) -> Running:
        self.thread.start()
        return self

    @property
    def adapter(self) -> FeedAdapter:
        for _ in range(300):
            if FeedAdapter.made:
                return FeedAdapter.made[0]
            time.sleep(0.1)
        raise AssertionError("the gateway built no test adapter")

    def __exit__(self, *exc: Any) -> None:
        self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(timeout=60)
        assert not self.thread.is_alive(), "the gateway did not stop"
        if self.error is not None:
            raise self.error


def until(condition: Callable[[], bool], what: str) -> None:
    """Wait for something another thread does (a generous bound; it says what did not happen)."""
    for _ in range(600):
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"waited 60 s: {what}")


def make(tmp_path: Path, *, spool_max: int = 1000, **options: Any) -> Gateway:
    FeedAdapter.made.clear()
    return Gateway(
        CONFIGURATION,
        name="gw-test",
        registry=TEST_REGISTRY,
        spool=Spool(tmp_path / "gw-test.spool.sqlite3", max_rows=spool_max),
        batch=50,
        status_seconds=0.2,
        **options,
    )


@pytest.mark.usefixtures("live_db")
@pytest.mark.req("S95-06", "A11-07", "DI-01")
def test_the_gateway_stores_what_its_adapters_emit_once_and_reports_each_connection(tmp_path: Path) -> None:
    first = minute_readings(120)
    with Running(make(tmp_path)) as running:
        running.adapter.feed(first)
        running.adapter.feed(first[:30])  # a replay after a reconnect
    # Stopping drains the queue: everything emitted is stored by then.
    assert StoredReading.objects.count() == 120
    [status] = gateway_statuses()
    assert (status.name, status.stored, status.spooled, status.dropped, status.database_ok) == (
        "gw-test",
        120,
        0,
        0,
        True,
    )
    states = {s.protocol: s for s in connection_statuses(gateway="gw-test")}
    assert states["opcua"].connected and states["opcua"].received == 150
    # A protocol whose adapter is not there is not read, and the page says why.
    assert not states["modbus"].connected
    assert "tests.gateway.no_such_module:ModbusAdapter could not be loaded" in states["modbus"].last_error


@pytest.mark.usefixtures("live_db")
@pytest.mark.req("A11-20", "DI-06", "A11-17")
def test_a_spool_left_by_an_outage_is_forwarded_once_and_its_losses_go_into_the_audit_trail(
    tmp_path: Path,
) -> None:
    spool = Spool(tmp_path / "left.spool.sqlite3", max_rows=40)
    rows = store.rows_of(minute_readings(50))
    spool.put(rows)  # as an earlier run left it: the ten oldest dropped
    writer = Writer(spool=spool, name="gw-left", chunk=15)
    writer.handle(store.rows_of(minute_readings(5, start=T0 + dt.timedelta(days=1))))
    assert len(spool) == 0
    assert StoredReading.objects.count() == 45
    writer.handle(rows[10:])  # the forwarded readings once more: nothing twice
    assert StoredReading.objects.count() == 45
    lost = AuditEntry.objects.get(action="gateway_readings_lost")
    assert lost.record_id == "gw-left" and "lost 10 reading(s)" in lost.reason
    writer.handle([])
    assert AuditEntry.objects.filter(action="gateway_readings_lost").count() == 1  # reported once


def _admin(sql: str, *params: Any) -> None:
    """On the server's maintenance database: PostgreSQL refuses to lock out the database one is in."""
    import psycopg

    d = connection.settings_dict
    with psycopg.connect(
        dbname="postgres",
        host=d["HOST"],
        port=d["PORT"] or 5432,
        user=d["USER"],
        password=d["PASSWORD"] or None,
        autocommit=True,
    ) as admin:
        admin.execute(sql, params or None)


def _outage_begins(db: str) -> None:
    # New connections are refused, and the gateway's open one is cut (the test's own stays).
    _admin(f'ALTER DATABASE "{db}" WITH ALLOW_CONNECTIONS false')
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            [db],
        )


def _outage_ends(db: str) -> None:
    _admin(f'ALTER DATABASE "{db}" WITH ALLOW_CONNECTIONS true')


@pytest.fixture
def outage(live_db: None) -> Iterator[tuple[Callable[[], None], Callable[[], None]]]:
    if connection.vendor != "postgresql":
        pytest.skip("a database outage is made on PostgreSQL (SQLite is a file beside the gateway)")
    db = connection.settings_dict["NAME"]
    try:
        yield (lambda: _outage_begins(db)), (lambda: _outage_ends(db))
    finally:
        _outage_ends(db)


def _through_an_outage(tmp_path: Path, outage: Any, *, spool_max: int) -> Gateway:
    begin, end = outage
    before = minute_readings(20)
    during = minute_readings(60, start=T0 + dt.timedelta(hours=1))
    after = minute_readings(20, start=T0 + dt.timedelta(hours=2))
    gateway = make(tmp_path, spool_max=spool_max)
    with Running(gateway) as running:
        running.adapter.feed(before)
        until(lambda: StoredReading.objects.count() == 20, "the first readings stored")
        begin()
        running.adapter.feed(during)
        until(
            lambda: len(gateway.writer.spool) == min(60, spool_max) and gateway.queue.empty(),
            "the readings of the outage spooled",
        )
        assert not gateway.writer.database_ok
        end()
        # The writer tries the database again on its own, with nothing new to store.
        until(lambda: gateway.writer.database_ok and len(gateway.writer.spool) == 0, "the spool forwarded")
        running.adapter.feed(after + during[:10])  # and a replay of some, as a restarted device does
        until(
            lambda: gateway.queue.empty() and StoredReading.objects.count() >= 20 + min(60, spool_max) + 20,
            "the last readings stored",
        )
    return gateway


@pytest.mark.req("A11-20", "DI-06", "S95-06")
def test_readings_during_a_database_outage_are_spooled_and_stored_exactly_once_when_it_returns(
    tmp_path: Path, outage: Any
) -> None:
    gateway = _through_an_outage(tmp_path, outage, spool_max=1000)
    assert StoredReading.objects.count() == 100
    assert StoredReading.objects.values("key", "at").distinct().count() == 100
    assert gateway.writer.spool.losses().dropped == 0
    status = GatewayStatus.objects.get(name="gw-test")
    assert (status.spooled, status.dropped, status.database_ok) == (0, 0, True)
    assert not AuditEntry.objects.filter(action="gateway_readings_lost").exists()


@pytest.mark.req("A11-20", "DI-06", "A11-17")
def test_an_outage_longer_than_the_spool_loses_the_oldest_and_says_so(tmp_path: Path, outage: Any) -> None:
    gateway = _through_an_outage(tmp_path, outage, spool_max=25)
    # 20 before, the 25 newest of the 60 of the outage, 20 after, and the ten replayed: they were among
    # the dropped, so new to the database.
    assert StoredReading.objects.count() == 20 + 25 + 20 + 10
    status = GatewayStatus.objects.get(name="gw-test")
    assert (status.dropped, status.spooled) == (35, 0) and status.last_loss_at is not None
    lost = AuditEntry.objects.get(action="gateway_readings_lost")
    assert "lost 35 reading(s) dropped from its full spool" in lost.reason
    assert gateway.writer.spool.losses().unreported == 0


class FailsOnceAdapter(FeedAdapter):
    """Fails on its first run, as an adapter with a bug would; emits on the second."""

    async def run(self, emit: Emit) -> None:
        self.runs = getattr(self, "runs", 0) + 1
        if self.runs == 1:
            raise RuntimeError("the PLC sent something the adapter did not expect")
        await super().run(emit)


@pytest.mark.usefixtures("live_db")
@pytest.mark.req("S95-06", "A11-17")
def test_an_adapter_that_fails_is_run_again_and_its_failure_is_shown(tmp_path: Path) -> None:
    FeedAdapter.made.clear()
    gateway = Gateway(
        CONFIGURATION[:1],
        name="gw-test",
        registry={Protocol.OPCUA: FailsOnceAdapter},
        spool=Spool(tmp_path / "gw-test.spool.sqlite3", max_rows=100),
        status_seconds=0.2,
    )
    with Running(gateway) as running:
        adapter = running.adapter
        adapter.feed(minute_readings(3))  # waits until the second run is ready
        until(lambda: StoredReading.objects.count() == 3, "the readings of the second run stored")
        assert adapter.runs == 2
        until(
            lambda: (
                "RuntimeError: the PLC sent"
                in (connection_statuses()[0].last_error if connection_statuses() else "")
            ),
            "the failure shown",
        )


@pytest.mark.req("S95-06", "A11-07", "DI-04")
def test_every_registered_adapter_loads_by_its_module_path() -> None:
    from batchline.gateway.runner import adapter_factory

    for protocol in Protocol:
        factory = adapter_factory(protocol)
        assert callable(factory) and factory.__module__.startswith("batchline.gateway.protocols"), protocol


class Simulator:
    """The demo's OPC UA plant simulator on a thread and event loop of its own."""

    def __init__(self) -> None:
        from batchline.gateway.opcua_sim import PlantSimulator
        from tests.conftest import free_port

        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.sim = PlantSimulator(port=free_port())

    def call(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(60)

    def __enter__(self) -> Simulator:
        self.thread.start()
        self.call(self.sim.start())
        return self

    def __exit__(self, *exc: Any) -> None:
        self.call(self.sim.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=30)


@pytest.mark.usefixtures("live_db")
@pytest.mark.req("S95-06", "A11-07", "DI-04")
def test_the_real_opcua_adapter_against_the_plant_simulator_stores_values_and_a_restart_stores_nothing_twice(
    tmp_path: Path,
) -> None:
    from asyncua import ua

    with Simulator() as plant:
        configuration = [plant.sim.connection(sampling_ms=50)]

        def gateway() -> Gateway:
            return Gateway(configuration, name="gw-sim", spool=Spool(tmp_path / "s.sqlite3", max_rows=1000))

        first = gateway()
        with Running(first):
            until(lambda: StoredReading.objects.count() == 4, "the four initial values stored")
            plant.call(plant.sim.step(10))
            until(lambda: StoredReading.objects.count() == 8, "the values after ten minutes stored")
            plant.sim.fault("ProductMoisture", ua.StatusCodes.BadSensorFailure)
            plant.call(plant.sim.step(1))
            until(lambda: StoredReading.objects.filter(quality="bad").exists(), "the sensor failure stored")
            until(lambda: StoredReading.objects.count() == 12, "the values after eleven minutes stored")
        assert StoredReading.objects.count() == 12
        bad = StoredReading.objects.get(quality="bad")
        assert (bad.unit, bad.tag, bad.status, bad.value_type, bad.value_num) == (
            "FBD-01",
            "ns=2;s=FBD-01.ProductMoisture",
            "BadSensorFailure",
            "",
            None,
        )
        assert set(StoredReading.objects.values_list("unit", "unit_of_measure").distinct()) == {
            ("GRAN-01", "kW"),
            ("FBD-01", "°C"),
            ("FBD-01", "%"),
        }
        # A restarted gateway is sent the current values again, with the device's same timestamps.
        second = gateway()
        with Running(second):
            until(lambda: second.adapters[0].state.received >= 4, "the current values received again")
        assert StoredReading.objects.count() == 12
