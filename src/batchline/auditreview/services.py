"""Writes of the audit-trail review: open one on a scope, mark entries reviewed, sign it (A11-13).

Each is one transaction through ``audit.services``; the signature is the one signing service's
(meaning *reviewed*), bound to the review's frozen scope and every mark. A signed review never
changes again; signing is refused while an entry that needs attention is unmarked.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Iterator
from typing import Any

from django.db import transaction
from django.utils import timezone

from batchline.audit.models import AuditEntry
from batchline.audit.selectors import AuditFilter, audit_entries
from batchline.audit.services import Actor, record_create, record_update
from batchline.configuration import selectors as configuration
from batchline.equipment.selectors import display_zone
from batchline.execution.models import Batch
from batchline.reports.content import record_content
from batchline.rules import trail
from batchline.rules.verdict import Reason, Refused, Verdict
from batchline.signatures.models import Meaning
from batchline.signatures.services import VerifiedSigner, signature_apply

from .models import ReviewState, Scope, TrailReview, TrailReviewMark

PERMISSION = "auditreview.review_trail"
# A review is read by a person: a scope larger than this is narrowed first (a shorter period, one user).
MAX_ENTRIES = 50_000
MAX_COMMENT = 2000


class TrailReviewRefused(Refused):
    """The review said no; ``verdict.reasons`` say why."""


_refuse = TrailReviewRefused.because


def _person(actor: Actor) -> int:
    if actor.id is None:
        raise _refuse("PERSON_REQUIRED", "An audit-trail review is made by a person, under their own name.")
    return actor.id


def _scope_ids(
    scope: str, *, batch_number: str, record_type: str, username: str, since: Any, until: Any
) -> list[int]:
    if scope == Scope.BATCH:
        batch = Batch.objects.filter(number=batch_number).first()
        if batch is None:
            raise _refuse("NO_SUCH_BATCH", f"There is no batch {batch_number!r}.")
        # The batch's trail exactly as its record and archive hold it (reports.content).
        return sorted(a["id"] for a in record_content(batch, with_status=False)["audit_trail"])
    f = AuditFilter(record_type=record_type, user=username, since=since, until=until)
    return sorted(audit_entries(f).order_by().values_list("id", flat=True))


def _chunks(ids: list[int], size: int = 500) -> Iterator[list[int]]:
    for i in range(0, len(ids), size):
        yield ids[i : i + size]


def _rows(ids: list[int]) -> Iterator[tuple[Any, ...]]:
    for chunk in _chunks(ids):
        yield from (
            AuditEntry.objects.filter(id__in=chunk)
            .order_by("id")
            .values_list("id", "at", "action", "record_type", "changes", "reason", "actor_id", "hash")
        )


def entries_sha256(rows: Iterable[tuple[int, str]]) -> str:
    """SHA-256 over each entry's id and chained hash, in id order: the content of the scope, bound."""
    h = hashlib.sha256()
    for pk, entry_hash in rows:
        h.update(f"{pk}:{entry_hash}\n".encode())
    return h.hexdigest()


def judge(rows: Iterable[tuple[Any, ...]], hours: trail.WorkingHours, zone: Any) -> tuple[list[Any], str]:
    """The flagged entries in reading order (``[[id, tier, [why…]], …]``) and the scope's SHA-256."""
    flagged: list[tuple[int, trail.Attention]] = []
    bound: list[tuple[int, str]] = []
    for pk, at, action, record_type, changes, reason, actor_id, entry_hash in rows:
        bound.append((pk, entry_hash))
        facts = trail.EntryFacts(
            id=pk,
            action=action,
            record_type=record_type,
            local_time=at.astimezone(zone),
            changes=json.loads(changes or "{}"),
            reason=reason,
            by_person=actor_id is not None,
        )
        found = trail.attention(facts, hours=hours)
        if found is not None:
            flagged.append((pk, found))
    ordered = [[pk, a.tier, list(a.why)] for pk, a in trail.reading_order(flagged)]
    return ordered, entries_sha256(bound)


def trail_review_open(
    *,
    actor: Actor,
    scope: str,
    batch_number: str = "",
    record_type: str = "",
    username: str = "",
    since: dt.date | None = None,
    until: dt.date | None = None,
) -> TrailReview:
    """Open a review of one scope: a batch's trail, a period, a record type or a user's entries.

    Freezes which entries the review covers and which of them need attention and why, judged by
    ``rules.trail`` against the working hours of the GMP configuration in force (A11-13).
    """
    person = _person(actor)
    batch_number, record_type, username = batch_number.strip(), record_type.strip(), username.strip()
    problems = []
    if scope not in Scope.values:
        problems.append(Reason("UNKNOWN_SCOPE", f"{scope!r} is not a scope of a review."))
    elif scope == Scope.BATCH and not batch_number:
        problems.append(Reason("BATCH_REQUIRED", "Name the batch whose trail is reviewed."))
    elif scope == Scope.PERIOD and not (since and until):
        problems.append(Reason("PERIOD_REQUIRED", "Give the first and the last day of the period."))
    elif scope == Scope.RECORD_TYPE and not record_type:
        problems.append(Reason("RECORD_TYPE_REQUIRED", "Choose the record type whose entries are reviewed."))
    elif scope == Scope.USER and not username:
        problems.append(Reason("USER_REQUIRED", "Name the user ID whose entries are reviewed."))
    if since and until and since > until:
        problems.append(Reason("PERIOD_BACKWARDS", f"The period ends ({until}) before it begins ({since})."))
    if problems:
        raise TrailReviewRefused(Verdict(tuple(problems)))
    if scope == Scope.BATCH:
        record_type, username, since, until = "", "", None, None
    ids = _scope_ids(
        scope, batch_number=batch_number, record_type=record_type, username=username, since=since, until=until
    )
    if not ids:
        raise _refuse("EMPTY_SCOPE", "No audit entry is in this scope: there is nothing to review.")
    if len(ids) > MAX_ENTRIES:
        raise _refuse(
            "SCOPE_TOO_LARGE",
            f"{len(ids):,} entries are in this scope, more than the {MAX_ENTRIES:,} one review covers: "
            "choose a shorter period, or one user or record type.",
        )
    config = configuration.current()
    flagged, sha = judge(_rows(ids), config.hours, display_zone())
    with transaction.atomic():
        return record_create(
            TrailReview(
                scope=scope,
                batch_number=batch_number if scope == Scope.BATCH else "",
                record_type=record_type,
                username=username,
                since=since,
                until=until,
                opened_by_id=person,
                opened_at=timezone.now(),
                entries=trail.id_ranges(ids),
                entry_count=len(ids),
                entries_sha256=sha,
                flagged=flagged,
                hours=f"{config.hours.text()} (GMP configuration version {config.version})",
            ),
            actor=actor,
            reason=f"audit-trail review opened: {len(ids)} entries, {len(flagged)} need attention",
        )


def _locked_open(review: TrailReview) -> TrailReview:
    locked = TrailReview.objects.select_for_update().get(pk=review.pk)
    if locked.state != ReviewState.OPEN:
        raise _refuse(
            "ALREADY_SIGNED",
            f"Audit-trail review {locked.pk} was signed on {locked.signed_at:%Y-%m-%d %H:%M} UTC: "
            "a signed review does not change.",
        )
    return locked


def trail_review_mark(
    *, actor: Actor, review: TrailReview, entry_ids: Iterable[int], comment: str = ""
) -> list[TrailReviewMark]:
    """Mark entries that need attention reviewed, with the reviewer's optional comment (one each, audited).

    Refused, writing nothing, for an entry that is not flagged in this review, one marked already,
    one the reviewer made themselves (another person reviews it), or on a signed review.
    """
    person = _person(actor)
    ids = sorted({int(i) for i in entry_ids})
    comment = comment.strip()
    if not ids:
        raise _refuse("NOTHING_CHOSEN", "Choose the entries you reviewed.")
    if len(comment) > MAX_COMMENT:
        raise _refuse(
            "COMMENT_TOO_LONG", f"The comment is {len(comment):,} characters: at most {MAX_COMMENT:,}."
        )
    with transaction.atomic():
        locked = _locked_open(review)
        flagged = {row[0] for row in locked.flagged}
        marked = dict(
            TrailReviewMark.objects.filter(review=locked, entry_id__in=ids).values_list(
                "entry_id", "by__full_name"
            )
        )
        own = set(
            AuditEntry.objects.filter(id__in=[i for i in ids if i in flagged], actor_id=person).values_list(
                "id", flat=True
            )
        )
        reasons = [
            Reason("NOT_FLAGGED", f"Entry #{i} does not need attention in this review.")
            for i in ids
            if i not in flagged
        ]
        reasons += [
            Reason("ALREADY_MARKED", f"Entry #{i} was marked reviewed already, by {marked[i]}.")
            for i in ids
            if i in marked
        ]
        reasons += [
            Reason("OWN_ENTRY", f"Entry #{i} is your own: another person reviews it.") for i in sorted(own)
        ]
        if reasons:
            raise TrailReviewRefused(Verdict(tuple(reasons)))
        now = timezone.now()
        return [
            record_create(
                TrailReviewMark(review=locked, entry_id=i, comment=comment, by_id=person, at=now),
                actor=actor,
                reason=comment,
            )
            for i in ids
        ]


def review_content(review: TrailReview, marks: Iterable[TrailReviewMark]) -> dict[str, Any]:
    """What the review's signature binds: the scope, its entries and their SHA-256, what needed
    attention, and every mark with its comment (21 CFR 11.70)."""
    return {
        "review": review.pk,
        "scope": review.scope,
        "batch_number": review.batch_number,
        "record_type": review.record_type,
        "username": review.username,
        "since": str(review.since or ""),
        "until": str(review.until or ""),
        "entries": review.entries,
        "entry_count": review.entry_count,
        "entries_sha256": review.entries_sha256,
        "flagged": review.flagged,
        "hours": review.hours,
        "marks": [[m.entry_id, m.by_id, m.comment, str(m.at.isoformat())] for m in marks],
        "comment": review.comment,
    }


def trail_review_sign(
    *, actor: Actor, signer: VerifiedSigner | None, review: TrailReview, comment: str = ""
) -> TrailReview:
    """Sign the review (meaning *reviewed*): refused while an entry that needs attention is unmarked.

    Locks the review; writes its state, signer and time and the signature in one transaction.
    """
    person = _person(actor)
    if signer is None or signer.user.pk != person:
        raise _refuse("SIGNATURE_REQUIRED", "To sign the review, sign with your own user ID and password.")
    if not signer.user.has_perm(PERMISSION):
        raise _refuse("NOT_AUTHORISED", "Your roles do not allow you to sign an audit-trail review.")
    comment = (comment or signer.comment).strip()
    with transaction.atomic():
        locked = _locked_open(review)
        marks = list(TrailReviewMark.objects.filter(review=locked).order_by("entry_id"))
        done = {m.entry_id for m in marks}
        open_ids = [row[0] for row in locked.flagged if row[0] not in done]
        if open_ids:
            shown = ", ".join(f"#{i}" for i in open_ids[:10]) + (" …" if len(open_ids) > 10 else "")
            raise _refuse(
                "UNMARKED_ENTRIES",
                f"{len(open_ids)} entr{'y needs' if len(open_ids) == 1 else 'ies need'} attention and "
                f"{'is' if len(open_ids) == 1 else 'are'} not marked reviewed yet ({shown}): nothing was signed.",
            )
        record_update(
            locked,
            actor=actor,
            values={
                "state": ReviewState.SIGNED,
                "signed_by_id": person,
                "signed_at": timezone.now(),
                "comment": comment,
            },
            action="sign_review",
            reason=comment,
        )
        signature_apply(
            signer=signer,
            meaning=Meaning.REVIEWED,
            record=locked,
            content=review_content(locked, marks),
            actor=actor,
            comment=comment,
        )
    return locked
