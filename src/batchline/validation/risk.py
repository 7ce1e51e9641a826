"""The function-level risk assessment (``risk.toml``, VAL-02), read and applied to the catalogue."""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass
from pathlib import Path

from .urs import Requirement

RISK_FILE = Path(__file__).with_name("risk.toml")
TIERS = ("high", "medium", "low")


@dataclass(frozen=True)
class Risk:
    family: str
    function: str
    gxp_impact: str
    high_process_risk: bool
    gamp_category: int
    tier: str
    rationale: str
    priority: str | None = None  # for catalogue rows that carry none


class RiskProblem(ValueError):
    """The risk assessment is incomplete or malformed; the message names the family."""


def assessment(text: str | None = None) -> dict[str, Risk]:
    """Every assessed family; raises :class:`RiskProblem` in words for an entry that is incomplete."""
    data = tomllib.loads(RISK_FILE.read_text(encoding="utf-8") if text is None else text)
    out = {}
    for family, entry in data.get("families", {}).items():
        try:
            risk = Risk(
                family=family,
                function=entry["function"],
                gxp_impact=entry["gxp_impact"],
                high_process_risk=bool(entry["high_process_risk"]),
                gamp_category=int(entry["gamp_category"]),
                tier=entry["tier"],
                rationale=entry["rationale"],
                priority=entry.get("priority"),
            )
        except KeyError as exc:
            raise RiskProblem(f"risk.toml: family {family} has no {exc.args[0]}") from None
        if risk.tier not in TIERS:
            raise RiskProblem(
                f"risk.toml: family {family} has tier {risk.tier!r}, not one of {', '.join(TIERS)}"
            )
        out[family] = risk
    return out


def risk_of(requirement: Requirement, risks: dict[str, Risk]) -> Risk:
    try:
        return risks[requirement.family]
    except KeyError:
        raise RiskProblem(
            f"{requirement.id}: its family {requirement.family} is not in the risk assessment (risk.toml)"
        ) from None


def priority_of(requirement: Requirement, risks: dict[str, Risk]) -> str | None:
    """The catalogue's priority, or the assessment's for a row without one."""
    return requirement.priority or risk_of(requirement, risks).priority


def digest() -> str:
    return hashlib.sha256(RISK_FILE.read_bytes()).hexdigest()
