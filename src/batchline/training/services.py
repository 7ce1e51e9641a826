"""Qualifications and training records: every write (TRN-01, P11-09; 21 CFR 11.10(i), 211.25(a)).

One transaction per action, audited; a refusal raises :class:`TrainingRefused`
and writes nothing.
"""

from __future__ import annotations

import datetime as dt
import re

from django.db import IntegrityError, transaction
from django.utils import timezone

from batchline.accounts.models import User
from batchline.audit.services import Actor, record_create, record_update
from batchline.rules.verdict import Refused

from .models import Qualification, QualificationKind, TrainingRecord


class TrainingRefused(Refused):
    """A training write was refused; ``verdict.reasons`` say why."""


_refuse = TrainingRefused.because
CODE = re.compile(r"[A-Z0-9][A-Z0-9._-]{0,59}")


def _person(actor: Actor) -> int:
    if actor.id is None:
        raise _refuse("PERSON_REQUIRED", "Training is recorded by a person, under their own name.")
    return actor.id


def qualification_create(
    *,
    actor: Actor,
    code: str,
    title: str,
    kind: str = QualificationKind.SOP,
    version: int = 1,
    reason: str = "",
) -> Qualification:
    """A qualification that steps can require: an SOP at a version, or a skill."""
    code = code.strip().upper()
    if not CODE.fullmatch(code):
        raise _refuse("CODE_FORMAT", "A qualification code is capitals, digits, '.', '_' and '-' (up to 60).")
    if not title.strip():
        raise _refuse("TITLE_REQUIRED", "A qualification needs a title.")
    if kind not in QualificationKind.values:
        raise _refuse("KIND", f"A qualification is an SOP or a skill, not {kind!r}.")
    if version < 1:
        raise _refuse("VERSION", "Versions start at 1.")
    try:
        with transaction.atomic():
            if Qualification.objects.filter(code=code).exists():
                raise _refuse("CODE_TAKEN", f"Qualification {code} exists already.")
            return record_create(
                Qualification(code=code, title=title.strip()[:200], kind=kind, version=version),
                actor=actor,
                reason=reason,
            )
    except IntegrityError as exc:  # the same code created at the same moment
        raise _refuse("CODE_TAKEN", f"Qualification {code} exists already.") from exc


def qualification_revise(*, actor: Actor, code: str, version: int, reason: str) -> Qualification:
    """A new version of the SOP: training on older versions stops counting (TRN-01, TRN-02)."""
    if not reason.strip():
        raise _refuse("REASON_REQUIRED", "Say why the version changes.")
    with transaction.atomic():
        q = Qualification.objects.select_for_update().filter(code=code).first()
        if q is None:
            raise _refuse("UNKNOWN_QUALIFICATION", f"No qualification {code} is registered.")
        if version <= q.version:
            raise _refuse("VERSION", f"{code} is at version {q.version}; a revision goes higher.")
        record_update(q, actor=actor, values={"version": version}, action="revise", reason=reason)
        return q


def training_record_add(
    *,
    actor: Actor,
    user: User,
    code: str,
    trained_at: dt.datetime,
    expires_at: dt.datetime | None = None,
    reason: str,
    note: str = "",
) -> TrainingRecord:
    """Record that ``user`` was trained on ``code`` (at its current version), with why it is recorded."""
    recorder = _person(actor)
    if not reason.strip():
        raise _refuse("REASON_REQUIRED", "Give a reason (for example the training session).")
    now = timezone.now()
    if trained_at > now:
        raise _refuse("TRAINED_IN_FUTURE", "A training is recorded once it has taken place.")
    if expires_at is not None and expires_at <= trained_at:
        raise _refuse("EXPIRES_BEFORE_TRAINED", "A training expires after it took place.")
    if recorder == user.pk:
        raise _refuse("OWN_TRAINING", "Nobody records their own training: another person records it.")
    with transaction.atomic():
        q = Qualification.objects.filter(code=code.strip().upper()).first()
        if q is None:
            raise _refuse("UNKNOWN_QUALIFICATION", f"No qualification {code} is registered.")
        if q.retired_at is not None:
            raise _refuse(
                "QUALIFICATION_RETIRED", f"{q.code} is retired in the master data: nobody is trained on it."
            )
        if expires_at is None and q.retrain_interval_days:
            # The master data's retraining interval: the training lapses then, unless recorded otherwise.
            expires_at = trained_at + dt.timedelta(days=q.retrain_interval_days)
        return record_create(
            TrainingRecord(
                user=user,
                qualification=q,
                version=q.version,
                trained_at=trained_at,
                expires_at=expires_at,
                recorded_by_id=recorder,
                recorded_at=now,
                note=note.strip()[:2000],
            ),
            actor=actor,
            reason=reason,
        )
