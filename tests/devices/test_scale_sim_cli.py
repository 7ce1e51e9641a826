"""The simulator as the demo runs it: its own process, driven from the command line."""

from __future__ import annotations

import re
import subprocess
import sys
from decimal import Decimal as D

import pytest

from batchline.devices import MtSicsScale
from batchline.devices.scale_sim import main


@pytest.mark.req("WD-01", "DI-01")
def test_the_simulator_runs_as_a_process_and_takes_its_load_from_the_command_line(capsys) -> None:
    # The real command line, on a free port (0) it reports back.
    args = ["--port", "0", "--serial", "SIM-0042", "--capacity", "620", "--unit", "g", "--decimals", "3"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "batchline.devices.scale_sim", *args, "--settle", "0.02"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        banner = proc.stdout.readline()
        match = re.fullmatch(r"MT-SICS scale simulator SIM-0042 listening on 127\.0\.0\.1:(\d+)\n", banner)
        assert match, banner
        port = match.group(1)

        assert main(["--port", port, "--send", "XLOAD 512.3456", "--send", "I2"]) == 0
        assert capsys.readouterr().out == 'XLOAD A\nI2 A "Batchline SIM 620.000 g"\n'

        with MtSicsScale("127.0.0.1", int(port), timeout=2) as scale:
            reading = scale.stable_weight()
        assert (reading.value, reading.raw, reading.serial) == (D("512.346"), "S S    512.346 g", "SIM-0042")
    finally:
        proc.terminate()
        proc.wait(timeout=5)


def test_the_module_documents_its_options() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "batchline.devices.scale_sim", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for option in ("--port", "--serial", "--capacity", "--unit", "--decimals", "--settle", "--send"):
        assert option in out
