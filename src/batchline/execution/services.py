"""The execution engine's commands, one code path for every client (P11-06, S88-05, DESIGN invariant 6).

Pages, the API, the simulator and the tests call these; each lives in the module of its command:
``batches`` (create, produce, release/hold/resume/abort), ``steps`` (start, scan, dispense,
complete, verify), ``corrections`` (a recorded value corrected), over ``snapshots`` (the batch
locked, the step read), ``entries`` (values read, judged and calculated) and ``refusals`` (a refused
attempt recorded for QA).
"""

from __future__ import annotations

from .batches import BATCH_NUMBER, batch_command, batch_create, batch_produce, recorded_values
from .corrections import value_correct
from .entries import MAX_NUMBER, current_values
from .refusals import RECORD_CLOSED, ExecutionRefused
from .snapshots import VERIFY_PERMISSION, step_open
from .steps import step_complete, step_content, step_dispense, step_scan, step_start, step_verify

__all__ = [
    "BATCH_NUMBER",
    "MAX_NUMBER",
    "RECORD_CLOSED",
    "VERIFY_PERMISSION",
    "ExecutionRefused",
    "batch_command",
    "batch_create",
    "batch_produce",
    "current_values",
    "recorded_values",
    "step_complete",
    "step_content",
    "step_dispense",
    "step_open",
    "step_scan",
    "step_start",
    "step_verify",
    "value_correct",
]
