"""The demo's plant simulator, read by the OPC UA adapter as the gateway will read it."""

from __future__ import annotations

import pytest
from asyncua import ua

from batchline.gateway.opcua_sim import TAGS, PlantSimulator
from batchline.gateway.protocols.opcua import OpcUaAdapter
from batchline.gateway.readings import Quality
from tests.conftest import free_port, run_async
from tests.gateway.peers import Recorder, running


@pytest.mark.req("S95-06", "IPC-04")
def test_the_simulated_granulator_and_dryer_are_read_with_their_units_and_faults():
    async def scenario() -> None:
        simulator = PlantSimulator(port=free_port())
        await simulator.start()
        connection = simulator.connection(sampling_ms=50)
        moisture = PlantSimulator.node_id(next(t for t in TAGS if t.name == "ProductMoisture"))
        got = Recorder()
        try:
            async with running(OpcUaAdapter(connection).run(got)):
                await got.until(lambda rs: len({r.source.tag for r in rs}) == 3)
                await simulator.step(10)
                simulator.fault("ProductMoisture", ua.StatusCodes.BadSensorFailure)
                await simulator.step(1)
                await got.until(lambda rs: any(r.quality == Quality.BAD for r in rs))
                simulator.fault("ProductMoisture", None)
                await simulator.step(1)
                await got.until(lambda rs: rs[-1].source.tag == moisture and rs[-1].quality == Quality.GOOD)
        finally:
            await simulator.stop()
        units = {r.source.tag: (r.source.unit, r.unit_of_measure) for r in got.readings}
        assert units == {
            "ns=2;s=GRAN-01.ImpellerPower": ("GRAN-01", "kW"),
            "ns=2;s=DRY-01.InletTemperature": ("DRY-01", "°C"),
            "ns=2;s=DRY-01.ProductMoisture": ("DRY-01", "%"),
        }
        moisture_values = [r.value for r in got.of(moisture)]
        assert moisture_values[0] == 28.0 and None in moisture_values
        assert moisture_values[-1] is not None and moisture_values[-1] < 15  # drying took moisture off
        assert [r.status for r in got.of(moisture) if r.value is None] == ["BadSensorFailure"]

    run_async(scenario())
