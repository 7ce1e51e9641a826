"""A small OPC UA server standing in for a granulator and a fluid-bed dryer, for the demo and tests.

It serves three process values under ``ns=2;s=<unit>.<name>`` that move the way a wet granulation
and drying step does (impeller power rising as the granules build, inlet air warming to its set
point, product moisture falling off), and lets a demo inject a sensor fault::

    python -m batchline.gateway.opcua_sim --port 4840

:meth:`PlantSimulator.connection` gives the gateway's configuration for it.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import math
import random
from dataclasses import dataclass

from asyncua import Node, Server, ua

from batchline.gateway.readings import Connection, Protocol, TagSpec

NAMESPACE = "urn:batchline:simulator"


@dataclass(frozen=True)
class SimulatedTag:
    unit: str
    name: str  # the node's name under its unit
    parameter: str  # as recipes name it
    unit_of_measure: str
    noise: float  # standard deviation of the measurement noise


TAGS = (
    SimulatedTag("GRAN-01", "ImpellerPower", "impeller power", "kW", 0.05),
    SimulatedTag("DRY-01", "InletTemperature", "inlet temperature", "°C", 0.2),
    SimulatedTag("DRY-01", "ProductMoisture", "product moisture", "%", 0.05),
)


def profile(name: str, minutes: float) -> float:
    """The value a tag has ``minutes`` into the step, before noise."""
    if name == "ImpellerPower":  # granules build: power climbs from 4 kW towards 9 kW
        return 4.0 + 5.0 * (1 - math.exp(-minutes / 4))
    if name == "InletTemperature":  # inlet air warms from 22 °C to its 60 °C set point
        return 60.0 - 38.0 * math.exp(-minutes / 2)
    if name == "ProductMoisture":  # drying: from 28 % down towards 1.5 %
        return 1.5 + 26.5 * math.exp(-minutes / 6)
    raise KeyError(name)


class PlantSimulator:
    """The server and its process values; ``minutes_per_second`` of process time pass per second."""

    def __init__(
        self, *, port: int = 4840, host: str = "127.0.0.1", minutes_per_second: float = 1.0, seed: int = 15
    ):
        self.endpoint = f"opc.tcp://{host}:{port}/batchline-sim/"
        self.minutes_per_second = minutes_per_second
        self._random = random.Random(seed)
        self._server = Server()
        self._nodes: dict[str, Node] = {}
        self._faults: dict[str, ua.UInt32] = {}  # tag name -> a Bad or Uncertain status code to send
        self._minutes = 0.0

    @staticmethod
    def node_id(tag: SimulatedTag) -> str:
        return f"ns=2;s={tag.unit}.{tag.name}"

    def connection(self, *, sampling_ms: int = 500) -> Connection:
        """The gateway's configuration for this simulator."""
        specs = tuple(
            TagSpec(
                unit=t.unit,
                tag=self.node_id(t),
                name=t.parameter,
                unit_of_measure=t.unit_of_measure,
                sampling_ms=sampling_ms,
                # No deadband: asyncua's server (2.1.0) nulls a Bad value and then fails its own
                # deadband check on the null, so a filtered tag would never show a sensor fault.
                deadband=0.0,
            )
            for t in TAGS
        )
        return Connection(protocol=Protocol.OPCUA, endpoint=self.endpoint, tags=specs)

    async def start(self) -> None:
        await self._server.init()
        self._server.set_endpoint(self.endpoint)
        self._server.set_server_name("Batchline plant simulator")
        index = await self._server.register_namespace(NAMESPACE)
        if index != 2:  # the node ids above, and the gateway's configuration, say ns=2
            raise RuntimeError(f"the simulator's namespace got index {index}, not 2")
        units = {}
        for tag in TAGS:
            if tag.unit not in units:
                units[tag.unit] = await self._server.nodes.objects.add_object(index, tag.unit)
            node = await units[tag.unit].add_variable(
                ua.NodeId.from_string(self.node_id(tag)), tag.name, round(profile(tag.name, 0), 2)
            )
            self._nodes[tag.name] = node
        await self._server.start()

    async def stop(self) -> None:
        await self._server.stop()

    def fault(self, name: str, code: ua.UInt32 | int | None) -> None:
        """Send ``code`` (e.g. ``ua.StatusCodes.BadSensorFailure``) for the tag until cleared with None."""
        if name not in self._nodes:
            raise KeyError(f"the simulator has no tag {name!r}")
        if code is None:
            self._faults.pop(name, None)
        else:
            self._faults[name] = ua.UInt32(code)

    async def step(self, minutes: float) -> None:
        """Advance the process by ``minutes`` and write every tag's new value."""
        self._minutes += minutes
        at = ua.DateTime.now(dt.UTC)
        for tag in TAGS:
            value = profile(tag.name, self._minutes) + self._random.gauss(0, tag.noise)
            code = self._faults.get(tag.name, ua.UInt32(ua.StatusCodes.Good))
            await self._nodes[tag.name].write_value(
                ua.DataValue(
                    ua.Variant(round(value, 2), ua.VariantType.Double),
                    StatusCode=ua.StatusCode(code),
                    SourceTimestamp=at,
                )
            )

    async def run(self, *, period_s: float = 0.5) -> None:
        while True:
            await asyncio.sleep(period_s)
            await self.step(period_s * self.minutes_per_second)


async def _serve(port: int, host: str, minutes_per_second: float) -> None:
    simulator = PlantSimulator(port=port, host=host, minutes_per_second=minutes_per_second)
    await simulator.start()
    print(f"Batchline plant simulator at {simulator.endpoint}")
    for spec in simulator.connection().tags:
        print(f"  {spec.unit:8} {spec.tag:36} {spec.name} [{spec.unit_of_measure}]")
    try:
        await simulator.run()
    finally:
        await simulator.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=4840)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--minutes-per-second", type=float, default=1.0, help="process time per second")
    arguments = parser.parse_args(argv)
    asyncio.run(_serve(arguments.port, arguments.host, arguments.minutes_per_second))


if __name__ == "__main__":
    main()
