"""Demo qualifications (the SOPs of the paracetamol recipe and a few more) and who is trained on them.

Operators and the supervisor are trained on every one, recorded by the QA
reviewer, except ``operator2``, whose weighing and dispensing training
(SOP-WD-001) has expired: the qualification gate refuses them that step only.

The qualifications are master data: each is requested and approved through
``master`` (the demo passes masterdata.seeding's), in the curricula of the
roles trained on it, retrained yearly as the training records are.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from django.utils import timezone

from batchline.audit.services import Actor

from .models import QualificationKind, TrainingRecord
from .services import training_record_add

QUALIFICATIONS = [
    ("SOP-PRD-010", "Line clearance", QualificationKind.SOP),
    ("SOP-WD-001", "Weighing and dispensing", QualificationKind.SOP),
    ("SOP-QC-031", "In-process control of tablets", QualificationKind.SOP),
    ("SOP-GRAN-001", "High-shear wet granulation", QualificationKind.SOP),
    ("SOP-CLN-001", "Cleaning of process equipment", QualificationKind.SOP),
    ("SKILL-PRESS", "Operating the rotary tablet press", QualificationKind.SKILL),
]
TRAINED = ("operator", "operator2", "supervisor")
# Every demo qualification is in the curriculum of the roles of the people trained on it.
CURRICULA = ["operator", "supervisor"]
RETRAIN = dt.timedelta(days=365)
EXPIRED = ("operator2", "SOP-WD-001")


def seed(site: Any, people: dict[str, Any], master: Callable[[str, list[dict[str, Any]]], list[Any]]) -> None:
    """Create the qualifications and training records; a second run adds what is missing.

    ``master(kind, rows)`` returns the master-data items, those missing requested and approved first.
    """
    master(
        "qualification",
        [
            {
                "code": code,
                "title": title,
                "kind": kind,
                "version": 1,
                "retrain_interval_days": RETRAIN.days,
                "roles": CURRICULA,
            }
            for code, title, kind in QUALIFICATIONS
        ],
    )
    qa = Actor.of(people["reviewer"], via="cli")
    now = timezone.now()
    for username in TRAINED:
        for code, _title, _kind in QUALIFICATIONS:
            if TrainingRecord.objects.filter(user=people[username], qualification__code=code).exists():
                continue
            if (username, code) == EXPIRED:
                trained = now - dt.timedelta(days=400)
            else:
                trained = now - dt.timedelta(days=200)
            training_record_add(
                actor=qa,
                user=people[username],
                code=code,
                trained_at=trained,
                expires_at=trained + RETRAIN,
                reason="demo data: annual training",
            )
