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

VERSION = "2026-12-07.4"

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
    subject: str = ""  # MATERIAL or EQUIPMENT: the refused thing's own field on the exception


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
        # A laboratory result outside its specification is an OOS result (21 CFR 211.192; FDA's OOS
        # guidance): investigated before anything else is done with the batch, whatever the test.
        _t(
            "LAB_OUT_OF_SPECIFICATION",
            "critical_value",
            "laboratory result out of specification",
            "critical",
            blocks=True,
        ),
        # values
        _t("OUT_OF_SPECIFICATION", "value", "out of specification", "medium"),
        # A result the recipe gives no limits for is recorded as it came; QA reads it and decides.
        _t("LAB_RESULT_NOT_JUDGED", "value", "laboratory result without a specification", "low"),
        _t("ACTION_LIMIT", "value", "out of action limit", "low"),
        _t("CALCULATION_FAILED", "value", "calculation failure", "medium"),
        _t("YIELD_OUT_OF_LIMITS", "value", "yield out of limits", "high", blocks=False),
        _t("RECONCILIATION_OUT_OF_LIMITS", "value", "reconciliation out of limits", "high"),
        # Labeling (21 CFR 211.125(c), 211.134): a count outside the recipe's limits is to be
        # investigated under 211.192 before release, not a reason to stop a line whose labels are
        # already on the product; a failed examination may mean wrong labels on the product: stop.
        _t("LABEL_RECONCILIATION_OUT_OF_LIMITS", "value", "labeling reconciliation out of limits", "high"),
        _t(
            "LABEL_EXAMINATION_FAILED",
            "critical_value",
            "labeling examination failed",
            "critical",
            blocks=True,
        ),
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
        # An input read from a machine typed by hand instead, with a reason and a witness
        # (execution/instruments.py); a reading taken with Uncertain quality.
        _t("MANUAL_READING_ENTRY", "data", "manual entry of a device reading", "medium"),
        _t("READING_UNCERTAIN", "device", "device reading of uncertain quality", "low"),
        # signatures
        _t("VERIFICATION_VOID", "signature", "signature voided by a correction", "medium"),
        # devices
        _t("DEVICE_ALARM", "device", "device alarm", "medium"),
        # Process values from the machine (execution/monitoring.py): outside the action range an
        # alarm for review; outside the specification CRITICAL_OUT_OF_SPECIFICATION (a critical
        # parameter) or OUT_OF_SPECIFICATION; a signal lost while a critical parameter is read leaves
        # the step unproven: it stops the batch until QA decides.
        _t("PROCESS_ALARM", "device", "process alarm (outside the action range)", "low"),
        _t("SIGNAL_LOST", "device", "process signal lost", "medium"),
        _t("CRITICAL_SIGNAL_LOST", "critical_value", "critical process signal lost", "high", blocks=True),
    ]
}

# Refusal reason -> (category, kind, subject). Every code a gate or a step action can refuse
# with has its line here (tests/rules/test_taxonomy_codes.py walks the gates' sources and
# fails on a code without one); ``subject`` names the record field that holds what was
# scanned or weighed on: the material, or the equipment (for dispensing, the scale).
MATERIAL, EQUIPMENT = "material", "equipment"
_REFUSAL: dict[str, tuple[str, str, str]] = {}
for _codes, _cat, _kind, _subject in [
    (
        (
            "PREDECESSOR_OPEN",
            "STEP_NOT_STARTED",
            "STEP_NOT_RUNNING",
            "STEP_ALREADY_COMPLETE",
            "STEP_ALREADY_STARTED",
            "BATCH_NOT_ACTIVE",
            "BATCH_NOT_RUNNING",
            "TIMER_MINIMUM",
            "EXCEPTION_BLOCKS",
            "NOTHING_TO_VERIFY",
            "MATERIAL_NOT_CHARGED",
            "NOT_DISPENSED",
            "DISPENSED_NOT_LABELLED",
            "ALREADY_DISPENSED",
            "EQUIPMENT_NOT_IDENTIFIED",
            "NO_OUTPUT_LOT",
            "ILLEGAL_TRANSITION",
            # the step kinds with records of their own (execution/sampling.py, producing.py, labelling.py)
            "SAMPLES_NOT_TAKEN",
            "SAMPLES_COMPLETE",
            "SAMPLE_NOT_LABELLED",
            "RESULT_AWAITED",
            "NOTHING_PRODUCED",
            "OUTPUT_NOT_LABELLED",
            "LABELS_NOT_ISSUED",
            "LABELS_NOT_RECONCILED",
            "LABELS_ALREADY_RECONCILED",
            "LABELS_NOT_EXAMINED",
            "LABELS_ALREADY_EXAMINED",
            "WRONG_STEP_KIND",
            # process values from the machine (execution/monitoring.py)
            "ALARM_UNACKNOWLEDGED",
            "PROCESS_VALUE_NOT_READ",
            # inputs read from a machine (execution/instruments.py)
            "NOT_FROM_DEVICE",
            "READ_FROM_DEVICE",
            "READING_NOT_TAKEN",
            "READING_TAKEN",
        ),
        "process",
        "out-of-sequence attempt",
        "",
    ),
    (
        (
            "LOT_EXPIRED",
            "LOT_NO_EXPIRY",
            "LOT_IN_QUARANTINE",
            "LOT_REJECTED",
            "LOT_BLOCKED",
            "LOT_NOT_RELEASED",
            "LOT_RETEST_DUE",
            "WRONG_MATERIAL",
            "RESERVED_FOR_OTHER_BATCH",
            "NOT_ENOUGH_MATERIAL",
            "CONTAINER_EMPTY",
            "LABEL_MISMATCH",
            "UNKNOWN_CONTAINER",
            "UNKNOWN_BARCODE",
            "ALREADY_CHARGED",
            "NOT_WEIGHED_OUT_HERE",
            "SAMPLE_SOURCE_NOT_OF_BATCH",
        ),
        "resource",
        "material condition failed",
        MATERIAL,
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
            "UNKNOWN_STATUS",
            "WRONG_EQUIPMENT_CLASS",
            "UNKNOWN_EQUIPMENT",
            "NOT_EQUIPMENT",
            "EQUIPMENT_NOT_OF_BATCH",
            "EQUIPMENT_RETIRED",
            # what the machine reports of itself through the gateway (rules/packml.py)
            "MACHINE_NOT_READY",
            "MACHINE_IN_MAINTENANCE",
            "MACHINE_STATE_UNKNOWN",
            # a reading the gateway cannot give for an input read from the machine
            "NO_GATEWAY",
            "NO_READING",
            "READING_NOT_USABLE",
            "READING_NOT_CURRENT",
            "READING_UNIT",
        ),
        "resource",
        "equipment condition failed",
        EQUIPMENT,
    ),
    (
        (
            "NOT_STABLE",
            "OUT_OF_TOLERANCE",
            "BELOW_MINIMUM_WEIGHT",
            "CAPACITY_EXCEEDED",
            "DAILY_CHECK_FAILED",
            "DAILY_CHECK_MISSING",
            "WRONG_UNIT",
            "NOT_A_SCALE",
            "SCALE_UNREACHABLE",
            "SCALE_NOT_CONNECTED",
            # what the scale itself answers over MT-SICS (devices/mtsics.py)
            "SCALE_REFUSED",
            "SCALE_NOT_READY",
            "SCALE_OVERLOAD",
            "SCALE_UNDERLOAD",
            "SCALE_SYNTAX_ERROR",
            "SCALE_TRANSMISSION_ERROR",
            "SCALE_LOGICAL_ERROR",
            "SCALE_PROTOCOL_ERROR",
            "SCALE_WRONG_DEVICE",
            "SCALE_NO_ANSWER",
            "SCALE_TIMEOUT",
            "SCALE_DISCONNECTED",
            # a scale not registered to the station weighed at, or a station retired meanwhile (11.10(h))
            "INSTRUMENT_NOT_AT_STATION",
            "STATION_NOT_REGISTERED",
        ),
        "resource",
        "dispensing condition failed",
        EQUIPMENT,
    ),
    (
        ("QUALIFICATION_MISSING", "QUALIFICATION_EXPIRED", "QUALIFICATION_OUTDATED", "CURRICULUM_INCOMPLETE"),
        "resource",
        "qualification condition failed",
        "",
    ),
    (
        ("VALUE_IMPLAUSIBLE", "OUT_OF_RANGE", "CALCULATION_FAILED"),
        "value",
        "value refused at entry",
        "",
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
        "",
    ),
    (
        ("ROLE_REQUIRED", "NOT_AUTHORISED", "PERSON_REQUIRED"),
        "process",
        "unauthorised attempt",
        "",
    ),
    (
        # a label the scanner read but that is not a valid code (labels/scan.py)
        (
            "SCAN_EMPTY",
            "SCAN_UNREADABLE",
            "SCAN_MALFORMED",
            "SCAN_TRUNCATED",
            "SCAN_TOO_LONG",
            "SCAN_SYMBOLOGY",
            "SCAN_UNKNOWN_AI",
            "SCAN_BAD_CHECK_DIGIT",
            "SCAN_BAD_DATE",
            "SCAN_CONFLICT",
        ),
        "data",
        "unreadable scan",
        "",
    ),
    (
        # the operator's own entry or command refused as typed: nothing about the product
        (
            "VALUE_MISSING",
            "TOO_LONG",
            "NOT_TEXT",
            "NOT_A_NUMBER",
            "NOT_A_CHOICE",
            "NOT_YES_NO",
            "CHECKLIST_OPEN",
            "REASON_REQUIRED",
            "FEFO_REASON_REQUIRED",
            "NOTHING_TO_SCAN",
            "NOT_A_WEIGHING_STEP",
            "NOT_BY_HAND",
            "NO_SUCH_STEP",
            "NO_SUCH_VALUE",
            "UNKNOWN_COMMAND",
            "NUMBER_REQUIRED",
            "NUMBER_FORMAT",
            "NUMBER_TAKEN",
            "QUANTITY",
            "RECIPE_NOT_EFFECTIVE",
            "PRODUCT_RETIRED",
            "NOT_POSITIVE",
            "UNKNOWN_UNIT",
            "NO_CONTAINERS",
            "NOT_AN_OUTPUT_LOT",
            "POSITION_REQUIRED",
            "COUNT_REQUIRED",
            "EXAMINATION_OPEN",
            "NO_SUCH_SAMPLE",
            "NO_SUCH_CONTAINER",
            # The planner (the ERP) changes or cancels a batch only before the floor begins it.
            "BATCH_NOT_CREATED",
            "BATCH_STARTED",
        ),
        "process",
        "refused attempt",
        "",
    ),
]:
    for _code in _codes:
        assert _code not in _REFUSAL, _code
        _REFUSAL[_code] = (_cat, _kind, _subject)


def refusal_known(reason: str) -> bool:
    """Whether a refusal reason has its own line in the table (not the catch-all below)."""
    return reason in _REFUSAL


REFUSED_PREFIX = "REFUSED_"


def classify(code: str) -> ExceptionType:
    """The taxonomy entry of an exception code; a code the table does not know is a programming error."""
    if code in TYPES:
        return TYPES[code]
    if code.startswith(REFUSED_PREFIX):
        reason = code[len(REFUSED_PREFIX) :]
        # A reason without its line (a test forbids it) still records as the operator's own attempt:
        # the refusal must never fail to be kept.
        category, kind, subject = _REFUSAL.get(reason, ("process", "refused attempt", ""))
        return ExceptionType(code, category, kind, "low", subject=subject)
    raise KeyError(f"exception code {code!r} is not in the taxonomy (rules/exceptions.py)")


def more_severe(a: str, b: str) -> str:
    return a if SEVERITIES.index(a) >= SEVERITIES.index(b) else b
