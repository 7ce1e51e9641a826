"""The exception taxonomy: what each exception is, how severe, and whether it stops the batch.

Review by exception rests on this table (RBE-01): every exception the engine records
has a code, and every code has a category, a default severity and a blocking rule
here. The table is under change control with the code; its version is stored with
every review (RBE-05), so a reviewer can tell which rules judged the batch.

A *blocking* exception stops execution of its batch (no step starts or completes)
until it is dispositioned (DEV-01). Refused attempts are recorded as exceptions
too, ``REFUSED_<reason>``; their category follows the reason that refused them.
"""

from __future__ import annotations

from dataclasses import dataclass

VERSION = "2026-11-25.1"

SEVERITIES = ("info", "low", "medium", "high", "critical")

# category -> label shown to reviewers
CATEGORIES: dict[str, str] = {
    "critical_value": "Critical value (CPP/CQA)",
    "process": "Process",
    "resource": "Resource",
    "value": "Value",
    "data": "Data",
    "signature": "Signature",
    "device": "Device alarm",
}


@dataclass(frozen=True)
class ExceptionType:
    code: str
    category: str
    kind: str  # the taxonomy's own word for it, e.g. "out-of-sequence attempt"
    severity: str
    blocks: bool = False


def _t(code: str, category: str, kind: str, severity: str, *, blocks: bool = False) -> ExceptionType:
    assert category in CATEGORIES and severity in SEVERITIES, code
    return ExceptionType(code, category, kind, severity, blocks)


TYPES: dict[str, ExceptionType] = {
    t.code: t
    for t in [
        # critical values: a CPP or CQA outside its specification stops the batch until QA decides
        _t(
            "CRITICAL_OUT_OF_SPECIFICATION",
            "critical_value",
            "CPP/CQA out of specification",
            "critical",
            blocks=True,
        ),
        # values
        _t("OUT_OF_SPECIFICATION", "value", "out of specification", "medium"),
        _t("ACTION_LIMIT", "value", "out of action limit", "low"),
        _t("CALCULATION_FAILED", "value", "calculation failure", "medium"),
        _t("YIELD_OUT_OF_LIMITS", "value", "yield out of limits", "high", blocks=False),
        _t("RECONCILIATION_OUT_OF_LIMITS", "value", "reconciliation out of limits", "high"),
        # process
        _t("HOLD", "process", "hold", "medium"),
        _t("ABORT", "process", "abnormal completion", "high"),
        _t("DURATION_EXCEEDED", "process", "abnormal completion (duration exceeded)", "medium"),
        _t("MARKED_NOT_APPLICABLE", "process", "marked not applicable", "medium"),
        _t("OVERRIDE", "process", "override", "high"),
        _t("MANUAL_INTERVENTION", "process", "manual intervention", "medium"),
        # resources
        _t("FEFO_OVERRIDE", "resource", "substituted material (FEFO override)", "low"),
        _t("MATERIAL_SUBSTITUTED", "resource", "substituted material", "medium"),
        # data
        _t("LATE_ENTRY", "data", "late entry", "low"),
        _t("CORRECTION", "data", "correction after entry", "medium"),
        _t("MANUAL_WEIGHT_ENTRY", "data", "manual weight entry", "medium"),
        # signatures
        _t("VERIFICATION_VOID", "signature", "signature voided by a correction", "medium"),
        # devices
        _t("DEVICE_ALARM", "device", "device alarm", "medium"),
    ]
}

# Refusal reason -> (category, kind). Reasons not named here are the operator's own
# input or sequence being refused: process, "refused attempt".
_REFUSAL: dict[str, tuple[str, str]] = {}
for _codes, _cat, _kind in [
    (
        (
            "PREDECESSOR_OPEN",
            "STEP_NOT_STARTED",
            "STEP_NOT_RUNNING",
            "STEP_ALREADY_COMPLETE",
            "STEP_ALREADY_STARTED",
            "BATCH_NOT_ACTIVE",
            "TIMER_MINIMUM",
            "EXCEPTION_BLOCKS",
        ),
        "process",
        "out-of-sequence attempt",
    ),
    (
        (
            "LOT_EXPIRED",
            "LOT_NOT_RELEASED",
            "LOT_RETEST_DUE",
            "WRONG_MATERIAL",
            "RESERVED_FOR_OTHER_BATCH",
            "NOT_ENOUGH_MATERIAL",
            "CONTAINER_EMPTY",
            "LABEL_MISMATCH",
            "UNKNOWN_CONTAINER",
            "ALREADY_CHARGED",
        ),
        "resource",
        "material condition failed",
    ),
    (
        (
            "EQUIPMENT_DIRTY",
            "EQUIPMENT_BUSY",
            "CLEAN_HOLD_EXPIRED",
            "CLEANING_IN_PROGRESS",
            "CALIBRATION_OVERDUE",
            "MAINTENANCE_OVERDUE",
            "IN_MAINTENANCE",
            "OUT_OF_SERVICE",
            "WRONG_EQUIPMENT_CLASS",
            "UNKNOWN_EQUIPMENT",
        ),
        "resource",
        "equipment condition failed",
    ),
    (
        (
            "NOT_STABLE",
            "OUT_OF_TOLERANCE",
            "BELOW_MINIMUM_WEIGHT",
            "CAPACITY_EXCEEDED",
            "DAILY_CHECK_FAILED",
            "DAILY_CHECK_MISSING",
            "SCALE_UNREACHABLE",
            "SCALE_NOT_CONNECTED",
            "NOT_A_SCALE",
        ),
        "resource",
        "dispensing condition failed",
    ),
    (
        ("QUALIFICATION_MISSING", "QUALIFICATION_EXPIRED", "QUALIFICATION_OUTDATED"),
        "resource",
        "qualification condition failed",
    ),
    (
        ("VALUE_IMPLAUSIBLE", "OUT_OF_RANGE", "CALCULATION_FAILED"),
        "value",
        "value refused at entry",
    ),
    (
        (
            "SIGNATURE_REQUIRED",
            "SIGNER_IS_NOT_PERFORMER",
            "SIGNER_IS_NOT_VERIFIER",
            "SIGNER_IS_NOT_CORRECTOR",
            "VERIFIER_IS_PERFORMER",
            "NOT_A_VERIFIER",
            "WITNESS_REQUIRED",
        ),
        "signature",
        "signature anomaly",
    ),
]:
    for _code in _codes:
        _REFUSAL[_code] = (_cat, _kind)

REFUSED_PREFIX = "REFUSED_"


def classify(code: str) -> ExceptionType:
    """The taxonomy entry of an exception code; a code the table does not know is a programming error."""
    if code in TYPES:
        return TYPES[code]
    if code.startswith(REFUSED_PREFIX):
        reason = code[len(REFUSED_PREFIX) :]
        category, kind = _REFUSAL.get(reason, ("process", "refused attempt"))
        return ExceptionType(code, category, kind, "low")
    raise KeyError(f"exception code {code!r} is not in the taxonomy (rules/exceptions.py)")


def more_severe(a: str, b: str) -> str:
    return a if SEVERITIES.index(a) >= SEVERITIES.index(b) else b
