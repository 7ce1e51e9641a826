"""The state a machine reports of itself (PackML, OPC 30050 / ISA-TR88.00.02 numbering) as a gate (EQ-01).

A unit whose PLC reports its PackML state through the gateway cannot be claimed by a step while
the machine says it is not fit to run a batch, whatever Batchline's own status says: aborting or
aborted, clearing an abort, holding or held, or in the Maintenance unit mode. Nor while the
gateway does not know the state (the connection is lost or the value Bad): a machine that stopped
reporting cannot pass for one that reports "Idle". A unit that reports no state has no such gate.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from .verdict import Reason

# StateCurrent, PackTags numbering (OPC 30050 uses the same).
STATES = {
    0: "Undefined",
    1: "Clearing",
    2: "Stopped",
    3: "Starting",
    4: "Idle",
    5: "Suspended",
    6: "Execute",
    7: "Stopping",
    8: "Aborting",
    9: "Aborted",
    10: "Holding",
    11: "Held",
    12: "Unholding",
    13: "Suspending",
    14: "Unsuspending",
    15: "Resetting",
    16: "Completing",
    17: "Complete",
}
# UnitModeCurrent: 1–3 are the standard's; higher numbers are the plant's own modes.
MODES = {0: "Invalid", 1: "Production", 2: "Maintenance", 3: "Manual"}
NOT_FIT = {0, 1, 8, 9, 10, 11}  # undefined, clearing, aborting, aborted, holding, held
MAINTENANCE = 2


@dataclass(frozen=True, slots=True)
class MachineState:
    """The latest state the gateway has of a unit; ``known`` False when it is stale or Bad."""

    state: int | None
    mode: int | None = None
    at: dt.datetime | None = None  # the device's (or the gateway's) time of the report
    known: bool = True

    @property
    def words(self) -> str:
        state = STATES.get(self.state, f"state {self.state}") if self.state is not None else "no state"
        if self.mode is None:
            return state
        return f"{state}, {MODES.get(self.mode, f'mode {self.mode}')} mode"


def machine_reason(label: str, machine: MachineState | None, when: str = "") -> Reason | None:
    """Why the machine's own report forbids a claim, or None. ``when`` is the report's time in words."""
    if machine is None:
        return None
    since = f" (reported {when})" if when else ""
    if not machine.known or machine.state is None:
        last = f"; last reported: {machine.words}" if machine.state is not None else ""
        return Reason(
            "MACHINE_STATE_UNKNOWN",
            f"{label} does not report its state now{last}{since}: it cannot be claimed until it does.",
        )
    if machine.mode == MAINTENANCE:
        return Reason(
            "MACHINE_IN_MAINTENANCE", f"{label} reports Maintenance mode{since}: it cannot be used."
        )
    if machine.state in NOT_FIT or machine.state not in STATES:
        return Reason(
            "MACHINE_NOT_READY",
            f"{label} reports {machine.words}{since}: it cannot be claimed until the machine is reset.",
        )
    return None
