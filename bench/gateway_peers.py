"""The gateway bench's peers, each run as a process of its own so it does not share the gateway's GIL.

    python -m bench.gateway_peers opcua --port P --tags N --rate R --seconds S
    python -m bench.gateway_peers sparkplug --port P --group G --messages M [--rate R] [--replay-s S]

Both print ``ready`` once listening or connected, start on a ``go`` line on stdin, and print one
JSON line of what they did when done (the OPC UA server then waits for stdin to close).

- The OPC UA server (asyncua) serves ``N`` Double variables ``ns=2;s=T<i>`` and writes every one of
  them ``R / N`` times a second for ``S`` seconds, each write carrying its round (1, 2, …) as the
  value and the moment of the round as its SourceTimestamp: a missing or doubled change is then
  visible by value.
- The Sparkplug edge node (aiomqtt + the vendored protobuf) has ``--devices`` devices of
  ``--metrics`` Double metrics and sends ``M`` DDATA messages round-robin over its devices, message
  ``i`` carrying ``i`` as every metric's value and ``t0 + i`` ms as its timestamp (``t0``: when it
  was told to go; a birth's metrics carry -1 at a time before ``t0``, so they are never taken for data), unpaced or at
  ``R`` a second. With ``--host-id`` it behaves as a 3.0 edge node does towards a primary host: it
  births only once that host's STATE says online, answers a rebirth request, and when it loses
  the broker it keeps what it measures meanwhile and, born again, sends it as historical metrics,
  together with the last ``--replay-s`` seconds it had already sent (the broker may have taken
  those and died before delivering them; the host's idempotent key stores each value once).

Also here: a private Mosquitto and a private PostgreSQL cluster that the bench stops and starts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import deque
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_listening(port: int, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while True:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"nothing listens on port {port}")
        time.sleep(0.02)


# --- private services that the bench restarts ----------------------------------------------------


class PrivateMosquitto:
    """A Mosquitto of the bench's own: unlimited queues, so a slow subscriber is measured, not dropped."""

    def __init__(self) -> None:
        if shutil.which("mosquitto") is None:
            raise RuntimeError("The gateway bench needs the mosquitto binary (apt-get install mosquitto).")
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="bench-mosquitto-"))
        self.config = self.dir / "mosquitto.conf"
        self.config.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
            "max_queued_messages 0\nmax_queued_bytes 0\nmax_inflight_messages 0\n"
        )
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["mosquitto", "-c", str(self.config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_listening(self.port)

    def stop(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=20)
            self.process = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class PrivatePostgres:
    """A PostgreSQL 15 cluster of the bench's own in a temporary directory (run as ``postgres`` when
    the bench runs as root, as PostgreSQL refuses root), stopped and started by the bench."""

    BIN = Path(os.environ.get("BATCHLINE_BENCH_PG_BIN", "/usr/lib/postgresql/15/bin"))

    def __init__(self) -> None:
        if not (self.BIN / "initdb").exists():
            raise RuntimeError(f"The restart bench needs PostgreSQL's initdb in {self.BIN}.")
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="bench-pg-"))
        self.data = self.dir / "data"
        self.log = self.dir / "postgres.log"
        if os.getuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        self._run([str(self.BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres"])
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, command: list[str]) -> None:
        if os.getuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=on"
        self._run(
            [
                str(self.BIN / "pg_ctl"),
                "-D",
                str(self.data),
                "-l",
                str(self.log),
                "-o",
                options,
                "-w",
                "start",
            ]
        )

    def stop(self) -> None:
        # -m fast: open sessions are cut, as when a database server restarts under the gateway.
        self._run([str(self.BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"])

    def close(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


# --- the OPC UA server ---------------------------------------------------------------------------


async def _stdin_line() -> str:
    return (await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)).strip()


async def opcua_serve(port: int, tags: int, rate: float, seconds: float) -> None:
    from asyncua import Server, ua

    server = Server()
    await server.init()
    server.set_endpoint(f"opc.tcp://127.0.0.1:{port}/bench/")
    index = await server.register_namespace("urn:batchline:bench")
    unit = await server.nodes.objects.add_object(index, "Unit")
    nodes = [await unit.add_variable(ua.NodeId(f"T{i}", index), f"T{i}", 0.0) for i in range(tags)]
    ids = [n.nodeid for n in nodes]
    await server.start()
    print("ready", flush=True)
    await _stdin_line()
    rounds = max(1, round(rate * seconds / tags))
    began = time.perf_counter()
    for r in range(1, rounds + 1):
        # Paced per round: round r is due at r * tags / rate seconds; late rounds go at once.
        delay = began + (r - 1) * tags / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        at = ua.DateTime.now(dt.UTC)
        value = ua.Variant(float(r), ua.VariantType.Double)
        for n, node_id in enumerate(ids):
            await server.write_attribute_value(node_id, ua.DataValue(value, SourceTimestamp=at))
            if n % 50 == 49:
                # A write does not yield: without this the server answers no publish or read while a
                # round runs, and a client's watchdog gives up on it.
                await asyncio.sleep(0)
    elapsed = time.perf_counter() - began
    print(json.dumps({"written": rounds * tags, "rounds": rounds, "seconds": elapsed}), flush=True)
    await _stdin_line()
    await server.stop()


# --- the Sparkplug edge node ---------------------------------------------------------------------


def _metric(
    name: str, value: float | int | bool, datatype: int, when: int, *, historical: bool = False
) -> object:
    from batchline.gateway.protocols.sparkplug import sparkplug_b_pb2 as pb

    m = pb.Payload.Metric(name=name, timestamp=when, datatype=datatype)
    if datatype == pb.Double:
        m.double_value = float(value)
    elif datatype == pb.Boolean:
        m.boolean_value = bool(value)
    else:
        m.long_value = int(value)
    if historical:
        m.is_historical = True
    return m


class EdgeNode:
    def __init__(self, args: argparse.Namespace) -> None:
        self.port, self.group, self.edge = args.port, args.group, "edge"
        self.devices = [f"D{d}" for d in range(args.devices)]
        self.metrics = [f"M{k}" for k in range(args.metrics)]
        self.messages, self.rate, self.host_id = args.messages, args.rate, args.host_id
        self.replay_s = args.replay_s
        self.bdseq = 0
        self.seq = 0
        self.sent = 0  # messages published (live or as history)
        self.next = 0  # the next message to measure
        self.backlog: deque[int] = deque()  # measured while the broker was away, not yet sent
        self.recent: deque[tuple[float, int]] = deque()  # (when sent, message) for the replay
        self.losses = 0  # broker connections lost
        self.t0 = 0  # ms; message i's metrics are timestamped t0 + i
        self.births = 0

    def topic(self, kind: str, device: str | None = None) -> str:
        return "/".join(("spBv1.0", self.group, kind, self.edge, *((device,) if device else ())))

    def payload(self, metrics: list[object], *, seq: int | None = None, bdseq: int | None = None) -> bytes:
        from batchline.gateway.protocols.sparkplug import sparkplug_b_pb2 as pb

        p = pb.Payload(timestamp=int(time.time() * 1000))
        if seq is not None:
            p.seq = seq
        if bdseq is not None:
            p.metrics.append(_metric("bdSeq", bdseq, pb.Int64, p.timestamp))
        p.metrics.extend(metrics)  # type: ignore[arg-type]
        return p.SerializeToString()

    def next_seq(self) -> int:
        self.seq = (self.seq + 1) % 256
        return self.seq

    def device_of(self, i: int) -> str:
        return self.devices[i % len(self.devices)]

    def ddata(self, i: int, *, historical: bool = False) -> tuple[str, bytes]:
        from batchline.gateway.protocols.sparkplug import sparkplug_b_pb2 as pb

        metrics = [_metric(m, i, pb.Double, self.t0 + i, historical=historical) for m in self.metrics]
        return self.topic("DDATA", self.device_of(i)), self.payload(metrics, seq=self.next_seq())

    async def birth(self, client: object) -> None:
        from batchline.gateway.protocols.sparkplug import sparkplug_b_pb2 as pb

        self.births += 1
        when = self.t0 - self.births  # before every data timestamp: a birth's values make keys of their own
        self.seq = 0
        node = [_metric("Node Control/Rebirth", False, pb.Boolean, when)]
        await client.publish(self.topic("NBIRTH"), self.payload(node, seq=0, bdseq=self.bdseq), qos=1)  # type: ignore[attr-defined]
        for device in self.devices:
            metrics = [_metric(m, -1, pb.Double, when) for m in self.metrics]
            await client.publish(
                self.topic("DBIRTH", device), self.payload(metrics, seq=self.next_seq()), qos=1
            )  # type: ignore[attr-defined]

    async def run(self) -> dict[str, int]:
        import aiomqtt

        from batchline.gateway.protocols.sparkplug import codec

        print("ready", flush=True)
        await _stdin_line()
        began = time.perf_counter()
        self.t0 = int(time.time() * 1000)
        while self.next < self.messages or self.backlog:
            will = aiomqtt.Will(self.topic("NDEATH"), self.payload([], bdseq=self.bdseq), qos=1)
            try:
                async with aiomqtt.Client(
                    "127.0.0.1",
                    self.port,
                    identifier=f"bench-edge-{os.getpid()}",
                    will=will,
                    max_inflight_messages=1000,
                    max_queued_outgoing_messages=0,
                ) as client:
                    await client.subscribe(self.topic("NCMD"), qos=1)
                    if self.host_id:
                        await client.subscribe(codec.state_topic(self.host_id), qos=1)
                        await self._host_online(client)
                    await self.birth(client)
                    listener = asyncio.create_task(self._rebirths(client))
                    try:
                        await self._history(client)
                        await self._live(client, began)
                    finally:
                        listener.cancel()
                    await client.publish(self.topic("NDEATH"), self.payload([], bdseq=self.bdseq), qos=1)
            except aiomqtt.MqttError:
                self.losses += 1
                await self._offline(began)
            self.bdseq = (self.bdseq + 1) % 256
        return {"messages": self.messages, "published": self.sent, "broker_losses": self.losses}

    async def _host_online(self, client: object) -> None:
        from batchline.gateway.protocols.sparkplug import codec

        async for message in client.messages:  # type: ignore[attr-defined]
            said = codec.read_state(bytes(message.payload))
            if said is not None and said[0]:
                return

    async def _rebirths(self, client: object) -> None:
        import aiomqtt

        with contextlib.suppress(aiomqtt.MqttError):
            async for message in client.messages:  # type: ignore[attr-defined]
                if message.topic.value.endswith("/NCMD/" + self.edge):
                    await self.birth(client)
                    self.backlog.extendleft(reversed([i for _, i in self.recent]))

    async def _history(self, client: object) -> None:
        # What was measured while the broker was away, and what it may have swallowed before.
        cutoff = time.monotonic() - self.replay_s
        replay = sorted({i for when, i in self.recent if when >= cutoff} | set(self.backlog))
        self.backlog.clear()
        for i in replay:
            topic, data = self.ddata(i, historical=True)
            await client.publish(topic, data, qos=1)  # type: ignore[attr-defined]
            self.sent += 1

    async def _live(self, client: object, began: float) -> None:
        pending: list[asyncio.Future[None]] = []
        while self.next < self.messages:
            if self.backlog:  # a rebirth asked for: resend what may have been missed
                await self._history(client)
            if self.rate:
                delay = began + self.next / self.rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            i = self.next
            topic, data = self.ddata(i)
            # QoS 1 when it must know what the broker took (the restart run); else QoS 0, so that the
            # throughput run measures the subscriber, not this node's wait for acknowledgements.
            qos = 1 if self.host_id else 0
            pending.append(asyncio.ensure_future(client.publish(topic, data, qos=qos)))  # type: ignore[attr-defined]
            self.next += 1
            self.sent += 1
            self.recent.append((time.monotonic(), i))
            while self.recent and self.recent[0][0] < time.monotonic() - max(self.replay_s, 0.001):
                self.recent.popleft()
            if len(pending) >= 500:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)

    async def _offline(self, began: float) -> None:
        """The broker is away: keep measuring (into the backlog) until it answers again."""
        while True:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            due = began + self.next / self.rate if self.rate else 0
            while self.next < self.messages and time.perf_counter() >= due:
                self.backlog.append(self.next)
                self.next += 1
                due = began + self.next / self.rate if self.rate else 0
            await asyncio.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    sub = parser.add_subparsers(dest="peer", required=True)
    opcua = sub.add_parser("opcua")
    opcua.add_argument("--port", type=int, required=True)
    opcua.add_argument("--tags", type=int, default=1000)
    opcua.add_argument("--rate", type=float, default=6000)
    opcua.add_argument("--seconds", type=float, default=10)
    spb = sub.add_parser("sparkplug")
    spb.add_argument("--port", type=int, required=True)
    spb.add_argument("--group", required=True)
    spb.add_argument("--messages", type=int, default=20000)
    spb.add_argument("--devices", type=int, default=10)
    spb.add_argument("--metrics", type=int, default=5)
    spb.add_argument("--rate", type=float, default=0, help="messages a second; 0: as fast as it can")
    spb.add_argument("--host-id", default="")
    spb.add_argument("--replay-s", type=float, default=0)
    args = parser.parse_args()
    if args.peer == "opcua":
        asyncio.run(opcua_serve(args.port, args.tags, args.rate, args.seconds))
    else:
        print(json.dumps(asyncio.run(EdgeNode(args).run())), flush=True)


if __name__ == "__main__":
    main()
