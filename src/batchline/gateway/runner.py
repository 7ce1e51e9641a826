"""``batchline gateway``: one asyncio process that runs an adapter per connection and stores what they read.

::

    adapters ──emit──▶ bounded asyncio.Queue ──▶ writer task ──(one DB thread)──▶ gateway_reading
                                                             └─ database away ──▶ spool (disk) ─┘ forwarded

- The configuration comes from master data (``selectors.connections``), read at start.
- Each :class:`readings.Connection` gets one adapter, built by the class :data:`REGISTRY` names for
  its protocol, imported only when a connection needs it: ``Class(connection)``; everything else an
  adapter needs is in the connection's options. An adapter reconnects on its own; one whose
  ``run`` fails or ends is started again after a growing pause, and the others go on.
- The queue is bounded: when the writer falls behind, ``emit`` waits, and the adapters slow down
  rather than the process growing without limit.
- The writer stores batches (``store.rows_store``) in one worker thread, so a slow database never
  stalls the adapters' event loop. When the database cannot be reached, batches go to the spool
  (``spool.Spool``) and the database is tried again every few seconds; once it answers, the spool
  is forwarded, oldest first, while new readings are stored as they come. What the spool had to
  drop, or the database refused, is counted, logged, shown (``GatewayStatus``) and, once the
  database is back, written to the audit trail.
- Every ``GATEWAY_STATUS_SECONDS`` the gateway writes its own status and each connection's state;
  every hour it makes the partitions ahead and applies retention (the worker does, after
  downsampling, when that is on: ``downsample.upkeep``).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import importlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from django.conf import settings
from django.db import DatabaseError, DataError, IntegrityError, connections, transaction

from batchline.audit.services import SYSTEM, audit_append

from . import store
from .models import ConnectionStatus, GatewayStatus
from .readings import Adapter, Connection, ConnectionState, Protocol, Reading
from .spool import Spool

log = logging.getLogger("batchline.gateway")

# The adapters, by protocol: "module:Class", imported when a connection of that protocol is run.
# Each class is built as Class(connection) and keeps readings.Adapter's promise; after its run()
# failed, run() is called again on the same instance.
REGISTRY: dict[str, str] = {
    Protocol.OPCUA: "batchline.gateway.protocols.opcua:OpcUaAdapter",
    Protocol.SPARKPLUG: "batchline.gateway.protocols.sparkplug:SparkplugHost",
    Protocol.MQTT_JSON: "batchline.gateway.protocols.mqtt_json:MqttJsonAdapter",
    Protocol.MODBUS: "batchline.gateway.protocols.modbus:ModbusAdapter",
}

AdapterFactory = Callable[[Connection], Adapter]
T = TypeVar("T")

RETRY_SECONDS = 2.0  # between attempts to reach a database that was away
FORWARD_CHUNKS = 5  # spool chunks forwarded per round, so new readings are not held up behind them
MAINTENANCE_SECONDS = 3600.0
RESTART_PAUSE = (1.0, 60.0)  # an adapter that failed waits this long, doubling, before it runs again


class NoAdapter(LookupError):
    """No adapter for a connection's protocol could be loaded; the message says which and why."""


def adapter_factory(
    protocol: str, registry: Mapping[str, str | AdapterFactory] | None = None
) -> AdapterFactory:
    entry = (REGISTRY if registry is None else registry).get(protocol)
    if entry is None:
        raise NoAdapter(f"The gateway has no adapter for the protocol {protocol!r}.")
    if not isinstance(entry, str):
        return entry
    module_name, _, class_name = entry.partition(":")
    try:
        factory: AdapterFactory = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise NoAdapter(f"The {protocol} adapter {entry} could not be loaded: {exc}.") from exc
    return factory


class _Missing:
    """Stands for an adapter that could not be loaded, so its connection shows on the page, with why."""

    def __init__(self, connection: Connection, error: str) -> None:
        self.connection = connection
        self.state = ConnectionState(last_error=error)

    async def run(self, emit: Callable[[Reading], Any]) -> None:
        await asyncio.Event().wait()  # nothing to run; stays until the gateway stops


def _unreachable(exc: BaseException) -> bool:
    """Whether a database error means "not usable now" (spool and retry) rather than "this row is wrong".

    Only a row's own fault (a value the column cannot hold) is tried row by row and the bad row
    given up; any other error (connection lost, a missing partition function, a full disk on the
    server) keeps every row in the spool until the database takes them.
    """
    return not isinstance(exc, DataError | IntegrityError)


@dataclass
class Writer:
    """The database side of the gateway, called from its one worker thread only."""

    spool: Spool
    name: str
    using: str = "default"
    chunk: int = 1000
    stored: int = 0
    rejected: int = 0  # refused by the database (a value it cannot hold), or by the spool's disk
    rejected_reported: int = 0
    database_ok: bool = True
    retry_at: float = 0.0
    started_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    # Called with the readings of each batch once stored, in the order they came, those forwarded
    # from the spool after an outage first: the judge of running steps (gateway.live), which judges
    # an excursion during the outage at its own time, late but not lost.
    stored_hook: Callable[[Sequence[Reading]], None] | None = None

    def _disconnect(self) -> None:
        with contextlib.suppress(Exception):
            connections[self.using].close()

    def _store(self, rows: Sequence[store.Row]) -> None:
        try:
            self.stored += store.rows_store(rows, using=self.using)
            return
        except DatabaseError as exc:
            if _unreachable(exc):
                raise
            log.warning("a batch of %s readings was refused (%s); storing them one by one", len(rows), exc)
        for row in rows:
            try:
                self.stored += store.rows_store([row], using=self.using)
            except DatabaseError as exc:
                if _unreachable(exc):
                    raise
                self.rejected += 1
                log.error(
                    "reading %s of %s %s refused by the database and lost: %s",
                    row[0].hex(),
                    row[2],
                    row[5],
                    exc,
                )

    def handle(self, rows: Sequence[store.Row], readings: Sequence[Reading] = ()) -> None:
        """Store ``rows`` (forwarding the spool first), or spool them while the database is away.

        ``readings`` are the rows' readings, handed to ``stored_hook`` once stored.
        """
        if self.database_ok or time.monotonic() >= self.retry_at:
            forwarded: list[Reading] = []
            try:
                for _ in range(FORWARD_CHUNKS):
                    if not self.forward_chunk(forwarded):
                        break
                self._store(rows)
            except DatabaseError as exc:
                if not _unreachable(exc):
                    raise
                if self.database_ok:
                    log.error("database unreachable, readings go to the spool %s: %s", self.spool.path, exc)
                self.database_ok = False
                self.retry_at = time.monotonic() + RETRY_SECONDS
                self._disconnect()
            else:
                if not self.database_ok:
                    log.warning("database reachable again; %s readings wait in the spool", len(self.spool))
                self.database_ok = True
                try:
                    self.report_losses()
                except DatabaseError as exc:  # reported at the next batch; the rows are stored
                    log.warning("the loss of readings is not yet in the audit trail: %s", exc)
                if self.stored_hook is not None and (forwarded or readings):
                    try:
                        self.stored_hook([*forwarded, *readings])
                    except Exception:  # the readings are stored; a failing judge must not unstore them
                        log.exception("the readings stored were not all judged")
                return
        self.spool.put(rows)

    def forward_chunk(self, forwarded: list[Reading] | None = None) -> bool:
        """Store the spool's oldest chunk; whether there was one. Removed from the spool only once committed.

        Its readings are added to ``forwarded``, for the judge."""
        last_id, rows = self.spool.peek(self.chunk)
        if not rows:
            return False
        self._store(rows)
        self.spool.remove_upto(last_id)
        if forwarded is not None and self.stored_hook is not None:
            forwarded += [store.reading_of(r) for r in rows]
        return True

    def report_losses(self) -> None:
        """Write what was lost and not yet reported into the audit trail (A11-17: an interface failure)."""
        losses = self.spool.losses()
        rejected = self.rejected - self.rejected_reported
        if not losses.unreported and not rejected:
            return
        with transaction.atomic(using=self.using):
            audit_append(
                actor=SYSTEM,
                action="gateway_readings_lost",
                record_type="gateway.gatewaystatus",
                record_id=self.name,
                changes={
                    "dropped_from_spool": [losses.reported, losses.dropped],
                    "refused_by_database": [self.rejected_reported, self.rejected],
                },
                reason=(
                    f"Gateway {self.name} lost {losses.unreported} reading(s) dropped from its full spool "
                    f"(last at {losses.last_at.isoformat() if losses.last_at else '-'}) and {rejected} "
                    "refused by the database or the spool's disk."
                ),
            )
        self.spool.losses_reported(losses.dropped)
        self.rejected_reported = self.rejected

    def status_write(self, states: Sequence[tuple[Connection, ConnectionState]]) -> None:
        """The gateway's own row and each connection's, for the engineers' page."""
        now = dt.datetime.now(dt.UTC)
        losses = self.spool.losses()
        with transaction.atomic(using=self.using):
            GatewayStatus.objects.using(self.using).update_or_create(
                name=self.name,
                defaults={
                    "started_at": self.started_at,
                    "updated_at": now,
                    "stored": self.stored,
                    "spooled": len(self.spool),
                    "dropped": losses.dropped,
                    "rejected": self.rejected,
                    "last_loss_at": losses.last_at,
                    "database_ok": self.database_ok,
                },
            )
            for conn, state in states:
                ConnectionStatus.objects.using(self.using).update_or_create(
                    gateway=self.name,
                    protocol=str(conn.protocol),
                    endpoint=conn.endpoint,
                    defaults={
                        "connected": state.connected,
                        "since": state.since,
                        "last_error": state.last_error[:2000],
                        "received": state.received,
                        "reconnects": state.reconnects,
                        "updated_at": now,
                    },
                )

    def maintain(self) -> None:
        store.partitions_ensure(using=self.using)
        # With downsampling on, the worker applies the raw retention after summarising
        # (downsample.upkeep): here it could remove a day not summarised yet.
        if settings.GATEWAY_DOWNSAMPLE_AFTER_DAYS <= 0:
            store.retention_apply(using=self.using)


class Gateway:
    """The running gateway: adapters, the queue, the writer, the status and maintenance rounds."""

    def __init__(
        self,
        configuration: Sequence[Connection],
        *,
        name: str,
        registry: Mapping[str, str | AdapterFactory] | None = None,
        spool: Spool | None = None,
        using: str = "default",
        batch: int | None = None,
        queue_size: int | None = None,
        status_seconds: float | None = None,
        flush_seconds: float = 0.2,
        stored_hook: Callable[[Sequence[Reading]], None] | None = None,
        round_hook: Callable[[], None] | None = None,
    ) -> None:
        self.name = name
        self.batch = batch or settings.GATEWAY_BATCH
        self.queue: asyncio.Queue[Reading] = asyncio.Queue(queue_size or settings.GATEWAY_QUEUE)
        self.status_seconds = settings.GATEWAY_STATUS_SECONDS if status_seconds is None else status_seconds
        self.flush_seconds = flush_seconds
        if spool is None:  # not "spool or …": an empty spool is falsy
            spool = Spool(
                Path(settings.GATEWAY_SPOOL_DIR) / f"{name}.spool.sqlite3",
                max_rows=settings.GATEWAY_SPOOL_MAX,
            )
        self.writer = Writer(spool=spool, name=name, using=using, chunk=self.batch, stored_hook=stored_hook)
        self.round_hook = round_hook  # every status round, on the database thread (the judge's silence)
        self.adapters: list[Adapter] = []
        for conn in configuration:
            try:
                self.adapters.append(adapter_factory(str(conn.protocol), registry)(conn))
            except NoAdapter as exc:
                log.error("%s %s is not read: %s", conn.protocol, conn.endpoint, exc)
                self.adapters.append(_Missing(conn, str(exc)))
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gateway-db")
        self._status_failing = False

    async def _db(self, func: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, func, *args)

    async def emit(self, reading: Reading) -> None:
        await self.queue.put(reading)

    async def _supervise(self, adapter: Adapter) -> None:
        pause = RESTART_PAUSE[0]
        conn = adapter.connection
        while True:
            try:
                await adapter.run(self.emit)
                log.warning("the %s adapter for %s ended; it runs again", conn.protocol, conn.endpoint)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                adapter.state.connected = False
                adapter.state.last_error = f"{type(exc).__name__}: {exc}"
                log.exception(
                    "the %s adapter for %s failed; it runs again in %s s", conn.protocol, conn.endpoint, pause
                )
            await asyncio.sleep(pause)
            pause = min(pause * 2, RESTART_PAUSE[1])

    async def _take(self) -> list[Reading]:
        """The readings waiting (up to a batch), waiting ``flush_seconds`` at most for the first."""
        try:
            first = await asyncio.wait_for(self.queue.get(), self.flush_seconds)
        except TimeoutError:
            return []
        taken = [first]
        while len(taken) < self.batch:
            try:
                taken.append(self.queue.get_nowait())
            except asyncio.QueueEmpty:
                break
        return taken

    async def _write(self, readings: list[Reading]) -> None:
        try:
            await self._db(self.writer.handle, store.rows_of(readings), readings)
        except Exception:
            # Not the database being away (that spools): a bug. Keep the readings on disk, not in the void.
            log.exception("storing %s readings failed; they go to the spool", len(readings))
            try:
                await self._db(self.writer.spool.put, store.rows_of(readings))
            except Exception:
                # The spool's disk failed too. The writer must live on (the adapters wait on it): count the
                # loss where the page and the audit trail will show it.
                self.writer.rejected += len(readings)
                log.critical("%s readings lost: neither the database nor the spool took them", len(readings))

    async def _writer(self, stop: asyncio.Event) -> None:
        while not (stop.is_set() and self.queue.empty()):
            await self._write(await self._take())

    async def _status(self) -> None:
        try:
            await self._db(self.writer.status_write, [(a.connection, a.state) for a in self.adapters])
            self._status_failing = False
        except DatabaseError as exc:
            if not self._status_failing:  # once per outage, not every few seconds
                log.warning("gateway status not written: %s", exc)
            self._status_failing = True

    async def _rounds(self, stop: asyncio.Event) -> None:
        last_maintenance = -MAINTENANCE_SECONDS
        while not stop.is_set():
            if time.monotonic() - last_maintenance >= MAINTENANCE_SECONDS:
                try:
                    await self._db(self.writer.maintain)
                    last_maintenance = time.monotonic()
                except DatabaseError as exc:
                    log.warning("partitions and retention not done now: %s", exc)
            await self._status()
            if self.round_hook is not None and self.writer.database_ok:
                try:
                    await self._db(self.round_hook)
                except Exception:
                    log.exception("the gateway's round hook failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.status_seconds)

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set; then stop the adapters, store what they emitted and say so."""
        adapters = [asyncio.create_task(self._supervise(a)) for a in self.adapters]
        writer = asyncio.create_task(self._writer(stop))
        rounds = asyncio.create_task(self._rounds(stop))
        try:
            await stop.wait()
        finally:
            for task in adapters:
                task.cancel()
            await asyncio.gather(*adapters, return_exceptions=True)
            stop.set()
            await writer  # drains the queue: what was emitted is stored or spooled
            await rounds
            await self._status()
            with contextlib.suppress(Exception):
                await self._db(connections.close_all)  # the worker thread's own connection
            self._pool.shutdown(wait=True)
