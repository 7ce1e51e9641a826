"""Real protocol peers for the gateway tests, and a recorder for what an adapter emits."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

from asyncua import Node, Server, ua
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import SimDevice

from batchline.gateway.readings import Reading

NAMESPACE = "urn:batchline:tests:gateway"


class Recorder:
    """The ``emit`` an adapter is given: keeps every reading and lets a test wait for one."""

    def __init__(self) -> None:
        self.readings: list[Reading] = []
        self._changed = asyncio.Condition()

    async def __call__(self, reading: Reading) -> None:
        async with self._changed:
            self.readings.append(reading)
            self._changed.notify_all()

    async def until(self, check: Callable[[list[Reading]], bool], *, within: float = 15.0) -> None:
        """Wait until ``check(readings)`` holds; the bound only keeps a broken test from hanging."""
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: check(self.readings)), within)

    def of(self, tag: str) -> list[Reading]:
        return [r for r in self.readings if r.source.tag == tag]


async def opcua_server(port: int, variables: dict[str, object]) -> tuple[Server, dict[str, Node]]:
    """An asyncua server on 127.0.0.1:``port`` with one variable per name, under ns=2;s=<name>."""
    server = Server()
    await server.init()
    server.set_endpoint(f"opc.tcp://127.0.0.1:{port}/batchline/")
    index = await server.register_namespace(NAMESPACE)
    unit = await server.nodes.objects.add_object(index, "Unit")
    nodes = {}
    for name, initial in variables.items():
        nodes[name] = await unit.add_variable(ua.NodeId(name, index), name, initial)
    await server.start()
    return server, nodes


def node_tag(node: Node) -> str:
    return node.nodeid.to_string()


@contextlib.asynccontextmanager
async def running(coroutine: object) -> AsyncIterator[asyncio.Task[None]]:
    """Run an adapter's ``run`` as a task for the block, then cancel it."""
    task: asyncio.Task[None] = asyncio.ensure_future(coroutine)  # type: ignore[arg-type]
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def modbus_server(port: int, device: SimDevice) -> ModbusTcpServer:
    """A pymodbus TCP server on 127.0.0.1:``port`` serving ``device``; stop it with ``shutdown()``."""
    server = ModbusTcpServer(device, address=("127.0.0.1", port))
    await server.serve_forever(background=True)
    return server
