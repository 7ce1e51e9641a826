"""The gateway's MQTT peers in the tests: a Sparkplug B edge node written for them (real protobuf over
aiomqtt, sharing only the generated classes with the host), a throwaway Mosquitto, and a collector
of the readings an adapter emits."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import aiomqtt

from batchline.gateway.protocols.sparkplug import sparkplug_b_pb2 as pb
from batchline.gateway.readings import Adapter, Quality, Reading
from tests.conftest import free_port

BROKER = ("127.0.0.1", 1883)
WAIT = 10.0  # seconds before a wait that should succeed at once is declared a failure


def unique(prefix: str) -> str:
    """A group id or client id no other test (or run) uses."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def ms(when: dt.datetime) -> int:
    return int(when.timestamp() * 1000)


T0 = dt.datetime(2026, 12, 7, 9, 30, tzinfo=dt.UTC)


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def metric(
    name: str | None = None,
    value: Any = None,
    datatype: int = pb.Double,
    *,
    alias: int | None = None,
    when: dt.datetime | None = None,
    birth: bool = True,
    **flags: bool,
) -> pb.Payload.Metric:
    """One metric as an edge node sends it: in a birth with its datatype, in data without."""
    m = pb.Payload.Metric()
    if name is not None:
        m.name = name
    if alias is not None:
        m.alias = alias
    m.timestamp = ms(when or T0)
    if birth:
        m.datatype = datatype
    for flag, on in flags.items():
        setattr(m, flag, on)
    if value is None:
        return m
    if datatype in (pb.Float,):
        m.float_value = value
    elif datatype == pb.Double:
        m.double_value = value
    elif datatype == pb.Boolean:
        m.boolean_value = value
    elif datatype in (pb.String, pb.Text):
        m.string_value = value
    elif datatype in (pb.Int64, pb.UInt64, pb.DateTime):
        m.long_value = value % (1 << 64)
    else:
        m.int_value = value % (1 << 32)
    return m


@dataclass
class EdgeNode:
    """A Sparkplug B edge node: connects with its NDEATH as will, listens for NCMD, and publishes
    what the test tells it to, numbering seq itself unless told otherwise."""

    port: int
    group: str
    edge: str
    bdseq: int = 0
    seq: int = 0
    commands: asyncio.Queue[pb.Payload] = field(default_factory=asyncio.Queue)

    def topic(self, kind: str, device: str | None = None) -> str:
        return "/".join(("spBv1.0", self.group, kind, self.edge, *((device,) if device else ())))

    @contextlib.asynccontextmanager
    async def online(self) -> AsyncIterator[EdgeNode]:
        will = aiomqtt.Will(self.topic("NDEATH"), self.death(self.bdseq), qos=1, retain=False)
        async with aiomqtt.Client(
            "127.0.0.1", self.port, identifier=unique("edge"), will=will, clean_session=True
        ) as client:
            self.client = client
            await client.subscribe(self.topic("NCMD"), qos=1)
            listener = asyncio.create_task(self._listen(client))
            try:
                yield self
            finally:
                listener.cancel()

    async def _listen(self, client: aiomqtt.Client) -> None:
        with contextlib.suppress(aiomqtt.MqttError):
            async for message in client.messages:
                payload = pb.Payload()
                payload.ParseFromString(bytes(message.payload))  # type: ignore[arg-type]
                await self.commands.put(payload)

    @staticmethod
    def death(bdseq: int) -> bytes:
        payload = pb.Payload(timestamp=ms(T0))
        payload.metrics.append(metric("bdSeq", bdseq, pb.Int64))
        return payload.SerializeToString()

    async def nbirth(self, *metrics: pb.Payload.Metric, seq: int = 0, bdseq: int | None = None) -> None:
        payload = pb.Payload(timestamp=ms(T0), seq=seq)
        payload.metrics.append(metric("bdSeq", self.bdseq if bdseq is None else bdseq, pb.Int64))
        payload.metrics.append(metric("Node Control/Rebirth", False, pb.Boolean))
        payload.metrics.extend(metrics)
        self.seq = seq
        await self.client.publish(self.topic("NBIRTH"), payload.SerializeToString())

    async def send(
        self,
        kind: str,
        *metrics: pb.Payload.Metric,
        device: str | None = None,
        seq: int | None = None,
        when: dt.datetime | None = None,
    ) -> int:
        """DBIRTH, NDATA, DDATA or DDEATH with the next seq (or the one given); returns the seq."""
        if seq is None:
            seq = self.seq = (self.seq + 1) % 256
        payload = pb.Payload(timestamp=ms(when or T0), seq=seq)
        payload.metrics.extend(metrics)
        await self.client.publish(self.topic(kind, device), payload.SerializeToString())
        return seq

    def drop(self) -> None:
        """Loses the connection without a DISCONNECT, as a node whose network fails: the broker
        then delivers its will."""
        sock = self.client._client.socket()
        assert sock is not None
        sock.shutdown(socket.SHUT_RDWR)

    async def ndeath(self, bdseq: int) -> None:
        await self.client.publish(self.topic("NDEATH"), self.death(bdseq), qos=1)

    async def command(self) -> pb.Payload:
        return await asyncio.wait_for(self.commands.get(), WAIT)


@dataclass
class Readings:
    """What an adapter emitted, in order, and a way to wait for what should come."""

    seen: list[Reading] = field(default_factory=list)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def emit(self, reading: Reading) -> None:
        async with self.changed:
            self.seen.append(reading)
            self.changed.notify_all()

    async def until(self, test: Callable[[list[Reading]], bool]) -> list[Reading]:
        async with self.changed:
            await asyncio.wait_for(self.changed.wait_for(lambda: test(self.seen)), WAIT)
        return self.seen

    async def count(self, n: int, quality: Quality | None = None) -> list[Reading]:
        """Waits for the n-th reading (of that quality) and returns those readings."""

        def matching() -> list[Reading]:
            return [r for r in self.seen if quality is None or r.quality == quality]

        await self.until(lambda _: len(matching()) >= n)
        return matching()


async def eventually(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("the condition did not come true")
        await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def running(adapter: Adapter, readings: Readings) -> AsyncIterator[Any]:
    """The adapter's run() in a task, until the block ends; its connection is up when the block starts."""
    task = asyncio.create_task(adapter.run(readings.emit))
    try:
        try:
            await eventually(lambda: adapter.state.connected or task.done())
        except AssertionError:
            raise AssertionError(f"The adapter did not connect: {adapter.state.last_error}") from None
        if task.done():
            task.result()
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def first(client: aiomqtt.Client, test: Callable[[aiomqtt.Message], bool] = lambda m: True) -> bytes:
    """The payload of the first message the client receives that passes ``test``."""

    async def wait() -> bytes:
        async for message in client.messages:
            if test(message):
                return bytes(message.payload)  # type: ignore[arg-type]
        raise AssertionError("the client stopped receiving")

    return await asyncio.wait_for(wait(), WAIT)


async def retained(port: int, topic: str) -> bytes:
    """The message the broker keeps on ``topic``, as a new subscriber gets it."""
    async with aiomqtt.Client("127.0.0.1", port, identifier=unique("peek")) as client:
        await client.subscribe(topic, qos=1)
        return await first(client)


class Mosquitto:
    """A Mosquitto of the test's own on a free port: started, killed and started again by the test."""

    def __init__(self) -> None:
        if shutil.which("mosquitto") is None:
            raise RuntimeError("The broker-loss tests need the mosquitto binary (apt-get install mosquitto).")
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["mosquitto", "-p", str(self.port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + WAIT
        while True:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(f"mosquitto did not listen on port {self.port}")
            time.sleep(0.02)

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


@contextlib.contextmanager
def own_mosquitto() -> Iterator[Mosquitto]:
    broker = Mosquitto()
    broker.start()
    try:
        yield broker
    finally:
        broker.kill()
