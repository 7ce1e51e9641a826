"""The gateway's live paths, each beside a bare client of the same peer in the same run (see bench/gateway.py).

Run as a child of ``bench.gateway`` with ``DATABASE_URL`` set (the restart part makes its own
PostgreSQL); each part prints one JSON line:

    python -m bench.gateway_live opcua --tags 1000 --rate 8000 --seconds 10
    python -m bench.gateway_live sparkplug --messages 20000
    python -m bench.gateway_live restarts --seconds 16
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.audit_bench import ROOT
from bench.gateway_peers import PrivateMosquitto, PrivatePostgres, free_port

SAMPLING_MS = 100
PER_SUBSCRIPTION = 100


class Peer:
    """A ``bench.gateway_peers`` process: ready when built, ``go`` starts it, ``result`` is its JSON line."""

    def __init__(self, *argv: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.gateway_peers", *argv],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            cwd=ROOT,
        )
        assert self.process.stdin is not None and self.process.stdout is not None
        self.stdin, self.stdout = self.process.stdin, self.process.stdout
        if self.stdout.readline().strip() != "ready":
            raise RuntimeError(f"the bench peer {argv[0]} did not start")

    def go(self) -> None:
        self.stdin.write("go\n")
        self.stdin.flush()

    async def result(self) -> dict[str, Any]:
        line = await asyncio.get_running_loop().run_in_executor(None, self.stdout.readline)
        if not line:
            raise RuntimeError("the bench peer ended without its result")
        result: dict[str, Any] = json.loads(line)
        return result

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.stdin.close()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@dataclass
class Tally:
    """Data changes counted as they arrive (bare client) or once committed (the gateway's stored hook)."""

    wanted: Callable[[Any], bool]
    count: int = 0
    initial: int = 0
    latencies: list[float] = field(default_factory=list)
    last: float = 0.0

    def add(self, n: int, latency: float | None = None) -> None:
        self.count += n
        self.last = time.perf_counter()
        if latency is not None:
            self.latencies.append(latency)


def cpu_seconds() -> float:
    """This process's CPU time, all threads (the event loop and the writer's)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def p99(values: Sequence[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


async def until(condition: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


def _utc(moment: dt.datetime) -> dt.datetime:
    return moment if moment.utcoffset() is not None else moment.replace(tzinfo=dt.UTC)


# --- OPC UA ---------------------------------------------------------------------------------------


def opcua_connection(endpoint: str, tags: int) -> Any:
    from batchline.gateway.readings import Connection, Protocol, TagSpec

    specs = tuple(
        TagSpec(unit=f"UNIT-{i // 100:02d}", tag=f"ns=2;s=T{i}", name=f"t{i}", sampling_ms=SAMPLING_MS)
        for i in range(tags)
    )
    return Connection(
        protocol=Protocol.OPCUA,
        endpoint=endpoint,
        tags=specs,
        options={"max_items_per_subscription": str(PER_SUBSCRIPTION)},
    )


async def opcua_bare(endpoint: str, tags: int, rate: float, seconds: float, port: int) -> dict[str, Any]:
    """A bare asyncua client: the same subscriptions as the adapter makes, counting the changes."""
    from asyncua import Client, ua

    tally = Tally(wanted=lambda v: True)

    class Handler:
        def datachange_notification(self, node: object, val: object, data: Any) -> None:
            value = data.monitored_item.Value
            if value.Value.Value < 1:
                tally.initial += 1
                return
            received = dt.datetime.now(dt.UTC)
            tally.add(1, (received - _utc(value.SourceTimestamp)).total_seconds())

    peer = Peer(
        "opcua", "--port", str(port), "--tags", str(tags), "--rate", str(rate), "--seconds", str(seconds)
    )
    try:
        async with Client(endpoint, timeout=4, watchdog_intervall=1.0) as client:  # as the adapter's
            handler = Handler()
            for start in range(0, tags, PER_SUBSCRIPTION):
                subscription = await client.create_subscription(float(SAMPLING_MS), handler)
                requests = []
                for i in range(start, min(start + PER_SUBSCRIPTION, tags)):
                    parameters = ua.MonitoringParameters()
                    parameters.ClientHandle = i
                    parameters.SamplingInterval = float(SAMPLING_MS)
                    parameters.QueueSize = 10
                    parameters.DiscardOldest = True
                    item = ua.ReadValueId()
                    item.NodeId = ua.NodeId.from_string(f"ns=2;s=T{i}")
                    item.AttributeId = ua.AttributeIds.Value
                    request = ua.MonitoredItemCreateRequest()
                    request.ItemToMonitor = item
                    request.MonitoringMode = ua.MonitoringMode.Reporting
                    request.RequestedParameters = parameters
                    requests.append(request)
                await subscription.create_monitored_items(requests)
            await until(lambda: tally.initial >= tags, 30)
            began, cpu = time.perf_counter(), cpu_seconds()
            peer.go()
            written = await peer.result()
            await until(lambda: tally.count >= written["written"], 20)
            cpu = cpu_seconds() - cpu
    finally:
        peer.close()
    return _opcua_figures(tally, written, began, cpu, received=tally.count)


async def opcua_gateway(endpoint: str, tags: int, rate: float, seconds: float, port: int) -> dict[str, Any]:
    """The gateway: OpcUaAdapter → queue → Writer → rows_store, timed to each row's commit."""
    from django.db import connection as db

    from batchline.gateway.readings import Quality, Reading
    from batchline.gateway.runner import Gateway
    from batchline.gateway.spool import Spool

    tally = Tally(wanted=lambda v: True)

    def stored(readings: Sequence[Reading]) -> None:  # on the writer's thread, after the commit
        committed = dt.datetime.now(dt.UTC)
        for r in readings:
            if r.quality is not Quality.GOOD or not isinstance(r.value, float):
                continue
            if r.value < 1:
                tally.initial += 1
            elif r.source_time is not None:
                tally.add(1, (committed - r.source_time).total_seconds())

    peer = Peer(
        "opcua", "--port", str(port), "--tags", str(tags), "--rate", str(rate), "--seconds", str(seconds)
    )
    with tempfile.TemporaryDirectory() as spool_dir:
        gateway = Gateway(
            [opcua_connection(endpoint, tags)],
            name="bench-opcua",
            spool=Spool(Path(spool_dir) / "bench.spool.sqlite3", max_rows=1_000_000),
            stored_hook=stored,
        )
        stop = asyncio.Event()
        running = asyncio.create_task(gateway.run(stop))
        try:
            await until(lambda: tally.initial >= tags, 30)
            began, cpu = time.perf_counter(), cpu_seconds()
            peer.go()
            written = await peer.result()
            await until(lambda: tally.count >= written["written"], 30)
            cpu = cpu_seconds() - cpu
        finally:
            stop.set()
            await running
            peer.close()
    figures = _opcua_figures(tally, written, began, cpu, received=tally.count)
    with db.cursor() as cursor:
        rows, distinct = _opcua_rows(cursor, endpoint)
    figures.update(rows=rows, lost=written["written"] - distinct, duplicated=rows - distinct)
    return figures


def _opcua_rows(cursor: Any, endpoint: str) -> tuple[int, int]:
    """The server's changes stored (the initial values, 0, left out): all rows, and distinct (tag, value)."""
    where = "FROM gateway_reading WHERE endpoint = %s AND quality = 'good' AND value_num >= 1"
    cursor.execute(f"SELECT count(*) {where}", [endpoint])
    rows = cursor.fetchone()[0]
    cursor.execute(f"SELECT count(*) FROM (SELECT DISTINCT tag, value_num {where}) d", [endpoint])
    return int(rows), int(cursor.fetchone()[0])


def _opcua_figures(
    tally: Tally, written: dict[str, Any], began: float, cpu: float, *, received: int
) -> dict[str, Any]:
    elapsed = max(tally.last - began, 1e-9)
    return {
        "written": written["written"],
        "written_per_s": written["written"] / written["seconds"],
        "changes": received,
        "per_s": received / elapsed,
        "p99_s": p99(tally.latencies),
        "lost": written["written"] - received,
        "cpu_s": cpu,
        "per_cpu_s": received / max(cpu, 1e-9),
    }


def opcua_part(args: argparse.Namespace) -> dict[str, Any]:
    out = {}
    for name, phase in (("bare", opcua_bare), ("gateway", opcua_gateway)):
        port = free_port()
        endpoint = f"opc.tcp://127.0.0.1:{port}/bench/"
        out[name] = asyncio.run(phase(endpoint, args.tags, args.rate, args.seconds, port))
    return {"tags": args.tags, "rate": args.rate, "seconds": args.seconds, **out}


# --- Sparkplug ------------------------------------------------------------------------------------


def sparkplug_connection(port: int, group: str, devices: int, metrics: int, host_id: str) -> Any:
    from batchline.gateway.readings import Connection, Protocol, TagSpec

    specs = tuple(
        TagSpec(unit=f"UNIT-D{d}", tag=f"M{k}", options={"node": f"{group}/edge/D{d}"})
        for d in range(devices)
        for k in range(metrics)
    )
    return Connection(
        protocol=Protocol.SPARKPLUG,
        endpoint=f"mqtt://127.0.0.1:{port}",
        tags=specs,
        options={"host_id": host_id, "reconnect_max_ms": "1000"},
    )


def _edge(port: int, group: str, args: argparse.Namespace, *extra: str) -> Peer:
    return Peer(
        "sparkplug", "--port", str(port), "--group", group, "--messages", str(args.messages),
        "--devices", str(args.devices), "--metrics", str(args.metrics), *extra,
    )  # fmt: skip


async def sparkplug_bare(port: int, args: argparse.Namespace) -> dict[str, Any]:
    """A bare aiomqtt subscriber that decodes every message of the node and counts the DDATA."""
    import aiomqtt

    from batchline.gateway.protocols.sparkplug import sparkplug_b_pb2 as pb

    group = f"bench-{uuid.uuid4().hex[:8]}"
    peer = _edge(port, group, args)
    tally = Tally(wanted=lambda v: True)
    try:
        async with aiomqtt.Client("127.0.0.1", port, identifier=f"bench-bare-{os.getpid()}") as client:
            await client.subscribe(f"spBv1.0/{group}/#", qos=1)
            began = time.perf_counter()
            peer.go()
            async for message in client.messages:
                payload = pb.Payload()
                payload.ParseFromString(bytes(message.payload))  # type: ignore[arg-type]
                if "/DDATA/" in message.topic.value:
                    tally.add(1)
                    if tally.count >= args.messages:
                        break
        sent = await peer.result()
    finally:
        peer.close()
    return {
        "published": sent["published"],
        "messages": tally.count,
        "per_s": tally.count / (tally.last - began),
    }


async def sparkplug_gateway(port: int, args: argparse.Namespace) -> dict[str, Any]:
    from django.db import connection as db

    from batchline.gateway.readings import Quality, Reading
    from batchline.gateway.runner import Gateway
    from batchline.gateway.spool import Spool

    group = f"bench-{uuid.uuid4().hex[:8]}"
    tally = Tally(wanted=lambda v: True)

    def stored(readings: Sequence[Reading]) -> None:
        tally.add(
            sum(
                1
                for r in readings
                if r.quality is Quality.GOOD and isinstance(r.value, float) and r.value >= 0
            )
        )

    connection = sparkplug_connection(
        port, group, args.devices, args.metrics, f"bench-{uuid.uuid4().hex[:8]}"
    )
    peer = _edge(port, group, args)
    with tempfile.TemporaryDirectory() as spool_dir:
        gateway = Gateway(
            [connection],
            name="bench-sparkplug",
            spool=Spool(Path(spool_dir) / "bench.spool.sqlite3", max_rows=1_000_000),
            stored_hook=stored,
        )
        stop = asyncio.Event()
        running = asyncio.create_task(gateway.run(stop))
        try:
            await until(lambda: gateway.adapters[0].state.connected, 20)
            began = time.perf_counter()
            peer.go()
            sent = await peer.result()
            await until(lambda: tally.count >= args.messages * args.metrics, 60)
        finally:
            stop.set()
            await running
            peer.close()
    elapsed = tally.last - began
    rows, distinct = _sparkplug_rows(db, group)
    expected = args.messages * args.metrics
    return {
        "published": sent["published"],
        "rows": rows,
        "messages": tally.count / args.metrics,
        "per_s": tally.count / args.metrics / elapsed,
        "rows_per_s": tally.count / elapsed,
        "lost": expected - distinct,
        "duplicated": rows - distinct,
    }


def _sparkplug_rows(db: Any, group: str) -> tuple[int, int]:
    """Data rows of the node (births carry -1): all of them, and the distinct (device, metric, message)."""
    where = (
        "FROM gateway_reading WHERE protocol = 'sparkplug' AND endpoint LIKE %s "
        "AND quality = 'good' AND value_num >= 0"
    )
    with db.cursor() as cursor:
        cursor.execute(f"SELECT count(*) {where}", [f"%/{group}/%"])
        rows = cursor.fetchone()[0]
        cursor.execute(
            f"SELECT count(*) FROM (SELECT DISTINCT endpoint, tag, value_num {where}) d", [f"%/{group}/%"]
        )
        distinct = cursor.fetchone()[0]
    return int(rows), int(distinct)


def sparkplug_part(args: argparse.Namespace) -> dict[str, Any]:
    broker = PrivateMosquitto()
    broker.start()
    try:
        bare = asyncio.run(sparkplug_bare(broker.port, args))
        stored = asyncio.run(sparkplug_gateway(broker.port, args))
    finally:
        broker.close()
    return {
        "messages": args.messages,
        "devices": args.devices,
        "metrics": args.metrics,
        "bare": bare,
        "gateway": stored,
    }


# --- a broker restart and a database restart under load --------------------------------------------


async def restarts(
    args: argparse.Namespace, broker: PrivateMosquitto, database: PrivatePostgres
) -> dict[str, Any]:
    """Sparkplug (paced) and OPC UA into one gateway; the broker, then the database, stopped and started."""
    from django.db import connection as db

    from batchline.gateway.runner import Gateway
    from batchline.gateway.spool import Spool

    group = f"bench-{uuid.uuid4().hex[:8]}"
    host_id = f"bench-{uuid.uuid4().hex[:8]}"
    rate = args.rate
    args.messages = int(rate * args.seconds)
    opcua_port = free_port()
    endpoint = f"opc.tcp://127.0.0.1:{opcua_port}/bench/"
    opcua_tags = 100
    server = Peer("opcua", "--port", str(opcua_port), "--tags", str(opcua_tags), "--rate", "1000",
                  "--seconds", str(args.seconds))  # fmt: skip
    edge = _edge(broker.port, group, args, "--rate", str(rate), "--host-id", host_id, "--replay-s", "5")
    events: list[str] = []
    began = time.perf_counter()

    def say(what: str) -> None:
        events.append(f"{time.perf_counter() - began:5.1f} s {what}")

    loop = asyncio.get_running_loop()
    with tempfile.TemporaryDirectory() as spool_dir:
        spool = Spool(Path(spool_dir) / "bench.spool.sqlite3", max_rows=1_000_000)
        gateway = Gateway(
            [sparkplug_connection(broker.port, group, args.devices, args.metrics, host_id),
             opcua_connection(endpoint, opcua_tags)],
            name="bench-restarts", spool=spool,
        )  # fmt: skip
        stop = asyncio.Event()
        running = asyncio.create_task(gateway.run(stop))
        most_spooled = 0
        try:
            await until(lambda: all(a.state.connected for a in gateway.adapters), 30)
            await asyncio.sleep(1)  # the OPC UA initial values in
            began = time.perf_counter()
            edge.go()
            server.go()
            say("publishing")
            third = args.seconds / 4
            await asyncio.sleep(third)
            broker.stop()
            say("broker stopped")
            await asyncio.sleep(2)
            broker.start()
            say("broker started")
            await asyncio.sleep(third)
            await loop.run_in_executor(None, database.stop)
            say("database stopped")
            await asyncio.sleep(3)
            most_spooled = len(spool)
            await loop.run_in_executor(None, database.start)
            say("database started")
            sent = await edge.result()
            written = await server.result()
            say("peers done")
            await until(lambda: gateway.queue.empty() and len(spool) == 0 and gateway.writer.database_ok, 60)
            say("spool forwarded")
        finally:
            stop.set()
            await running
            edge.close()
            server.close()
    rows, distinct = _sparkplug_rows(db, group)
    with db.cursor() as cursor:
        o_rows, o_distinct = _opcua_rows(cursor, endpoint)
    return {
        "events": events,
        "spooled_during_database_stop": most_spooled,
        "sparkplug": {
            "values_sent": args.messages * args.metrics,
            "messages": args.messages,
            "published_with_replays": sent["published"],
            "broker_losses_seen_by_edge": sent["broker_losses"],
            "rows": rows,
            "lost": args.messages * args.metrics - distinct,
            "duplicated": rows - distinct,
        },
        "opcua": {
            "values_sent": written["written"],
            "rows": o_rows,
            "lost": written["written"] - o_distinct,
            "duplicated": o_rows - o_distinct,
        },
    }


def restarts_part(args: argparse.Namespace) -> dict[str, Any]:
    broker = PrivateMosquitto()
    database = PrivatePostgres()
    try:
        broker.start()
        database.start()
        os.environ["DATABASE_URL"] = database.url
        _django()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        return asyncio.run(restarts(args, broker, database))
    finally:
        from django.db import connections

        connections.close_all()
        broker.close()
        database.close()


def _django() -> None:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "batchline.settings")
    # The bench counts rows from its event loop's thread once the gateway has stopped.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    django.setup()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("part", choices=("opcua", "sparkplug", "restarts"))
    parser.add_argument("--tags", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=8000)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--devices", type=int, default=10)
    parser.add_argument("--metrics", type=int, default=5)
    args = parser.parse_args()
    if args.part == "restarts":
        result = restarts_part(args)
    else:
        _django()
        result = opcua_part(args) if args.part == "opcua" else sparkplug_part(args)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
