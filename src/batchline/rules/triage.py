"""The order a reviewer reads a batch's exceptions in: what matters first, slips folded (RBE-02).

A run of 27 exceptions is mostly the operator's refused attempts (a scan of the
wrong container, a step started out of order): the gates stopped them and
nothing reached the product. They must stay in the record (DI-06: failures are
kept and shown), but never look like the one result out of its specification.
So the exceptions of a batch fall into three tiers, each sorted most severe
first:

1. **results**: values, yields and reconciliations outside their limits and
   critical parameters out of specification (the taxonomy's ``critical_value``
   and ``value`` categories);
2. **process and resources**: holds, overrides, manual weights, substitutions,
   late entries, corrections, device alarms;
3. **refused attempts** (``REFUSED_*``): one folded group per kind of refusal,
   named with its count ("7 out-of-sequence attempts").

Plain data in (:class:`ExceptionFacts`), plain groups out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from . import exceptions as taxonomy


@dataclass(frozen=True)
class ExceptionFacts:
    """One exception as review reads it: what it is and whether QA has decided on it."""

    id: int
    code: str
    severity: str
    message: str
    step: str = ""  # the key of the step it happened on
    material: str = ""  # the container or lot it concerns
    blocks: bool = False
    decision: str = ""  # the disposition's decision; empty while the exception is open
    deviation: str = ""  # the deviation it was escalated to

    @property
    def open(self) -> bool:
        return not self.decision

    def text(self) -> str:
        return f"{self.code}: {self.message}"


RESULTS, PROCESS, REFUSED = "results", "process", "refused"

TIER_LABELS = {
    RESULTS: "Results outside their limits",
    PROCESS: "Process and resource exceptions",
    REFUSED: "Refused attempts",
}

_RESULT_CATEGORIES = ("critical_value", "value")

# A refusal's kind (rules/exceptions.py) -> (one, several), as a group of the operator's slips reads.
_REFUSAL_WORDS = {
    "out-of-sequence attempt": ("out-of-sequence attempt", "out-of-sequence attempts"),
    "material condition failed": ("material refused", "materials refused"),
    "equipment condition failed": ("equipment unit refused", "equipment units refused"),
    "dispensing condition failed": ("weighing refused", "weighings refused"),
    "qualification condition failed": (
        "attempt without the qualification",
        "attempts without the qualification",
    ),
    "value refused at entry": ("value refused at entry", "values refused at entry"),
    "signature anomaly": ("signature anomaly", "signature anomalies"),
    "unauthorised attempt": ("unauthorised attempt", "unauthorised attempts"),
    "unreadable scan": ("unreadable scan", "unreadable scans"),
    "refused attempt": ("entry refused as typed", "entries refused as typed"),
}


def tier(code: str) -> str:
    if code.startswith(taxonomy.REFUSED_PREFIX):
        return REFUSED
    return RESULTS if taxonomy.classify(code).category in _RESULT_CATEGORIES else PROCESS


def _rank(severity: str) -> int:
    """Most severe first; a severity the taxonomy does not know sorts last rather than failing."""
    return -taxonomy.SEVERITIES.index(severity) if severity in taxonomy.SEVERITIES else 1


def counted(kind: str, n: int) -> str:
    one, several = _REFUSAL_WORDS.get(kind, (kind, kind))
    return f"{n} {one if n == 1 else several}"


@dataclass(frozen=True)
class Group:
    """Exceptions read together: a tier (results, process) or one kind of refused attempt (folded)."""

    key: str  # "results", "process", "refused:out-of-sequence attempt"
    tier: str
    label: str
    exceptions: tuple[ExceptionFacts, ...]
    folded: bool = False

    @property
    def severity(self) -> str:
        """The most severe of the group, for its style."""
        return min((e.severity for e in self.exceptions), key=_rank, default="info")

    @property
    def open_ids(self) -> list[int]:
        return [e.id for e in self.exceptions if e.open]


def groups(exceptions: Sequence[ExceptionFacts]) -> list[Group]:
    """The batch's exceptions in reading order: results, then process and resources (each most severe
    first, then in the order they happened), then one folded group per kind of refused attempt
    (the largest first). ``exceptions`` come in the order they were recorded."""
    order = {e.id: i for i, e in enumerate(exceptions)}

    def by_severity(found: list[ExceptionFacts]) -> tuple[ExceptionFacts, ...]:
        return tuple(sorted(found, key=lambda e: (_rank(e.severity), order[e.id])))

    out = []
    for name in (RESULTS, PROCESS):
        found = [e for e in exceptions if tier(e.code) == name]
        if found:
            out.append(Group(name, name, TIER_LABELS[name], by_severity(found)))
    refused: dict[str, list[ExceptionFacts]] = {}
    for e in exceptions:
        if tier(e.code) == REFUSED:
            refused.setdefault(taxonomy.classify(e.code).kind, []).append(e)
    for kind, found in sorted(refused.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        out.append(Group(f"{REFUSED}:{kind}", REFUSED, counted(kind, len(found)), by_severity(found), True))
    return out


def refused_summary(found: Sequence[Group]) -> str:
    """``12 refused attempts: 7 out-of-sequence attempts, 5 materials refused``; empty when there are none."""
    folded = [g for g in found if g.tier == REFUSED]
    total = sum(len(g.exceptions) for g in folded)
    if not total:
        return ""
    return f"{total} refused attempt{'s' if total != 1 else ''}: " + ", ".join(g.label for g in folded)
