"""Is this person trained for this, now? (TRN-01, P11-09; 21 CFR 11.10(i), 211.25)

A training record makes a person qualified from ``trained_at`` until strictly
before ``expires_at`` (the same boundary as every expiry), for the version of
the SOP they were trained on. A refusal concerns that person only.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from .equipment import at
from .verdict import Reason, Verdict


@dataclass(frozen=True, slots=True)
class TrainingView:
    code: str  # the qualification: "SOP-GRAN-001", "SKILL-PRESS"
    title: str
    version: int
    trained_at: dt.datetime
    expires_at: dt.datetime | None = None


def current(record: TrainingView, now: dt.datetime) -> bool:
    return record.trained_at <= now and (record.expires_at is None or now < record.expires_at)


def qualified(
    records: Iterable[TrainingView],
    code: str,
    now: dt.datetime,
    *,
    person: str = "You",
    title: str = "",
    version: int | None = None,
    tz: dt.tzinfo = dt.UTC,
) -> Verdict:
    """A current record of ``code`` (at ``version`` or later, when given), or why not.

    ``person`` names who is checked ("You", or a printed name); ``title`` the
    qualification, when it is known but the person has no record of it.
    """
    mine = [r for r in records if r.code == code]
    title = title or (mine[0].title if mine else "")
    what = f"{code} ({title})" if title else code
    if not mine:
        return Verdict.of(
            Reason(
                "QUALIFICATION_MISSING",
                f"{person} {'have' if person == 'You' else 'has'} no training record for {what}: "
                "only people trained on it may do this.",
            )
        )
    valid = [r for r in mine if version is None or r.version >= version]
    if not valid:
        newest = max(r.version for r in mine)
        return Verdict.of(
            Reason(
                "QUALIFICATION_OUTDATED",
                f"{person} {'were' if person == 'You' else 'was'} trained on version {newest} of {what}; "
                f"it is at version {version} now: training on the new version is needed first.",
            )
        )
    if any(current(r, now) for r in valid):
        return Verdict()
    ended = [r.expires_at for r in valid if r.expires_at is not None and r.trained_at <= now]
    if ended:
        return Verdict.of(
            Reason(
                "QUALIFICATION_EXPIRED",
                f"{'Your' if person == 'You' else person + '’s'} training on {what} expired at "
                f"{at(max(ended), now, tz)}: retraining is needed first.",
            )
        )
    return Verdict.of(
        Reason(
            "QUALIFICATION_MISSING",
            f"{person} {'are' if person == 'You' else 'is'} not yet trained on {what}.",
        )
    )
