"""Demo qualifications (the SOPs of the paracetamol recipe and a few more) and who is trained on them.

Operators and the supervisor are trained on every one, recorded by the QA
reviewer, except ``operator2``, whose weighing and dispensing training
(SOP-WD-001) has expired: the qualification gate refuses them that step only.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils import timezone

from batchline.audit.services import Actor

from .models import Qualification, QualificationKind
from .services import qualification_create, training_record_add

QUALIFICATIONS = [
    ("SOP-PRD-010", "Line clearance", QualificationKind.SOP),
    ("SOP-WD-001", "Weighing and dispensing", QualificationKind.SOP),
    ("SOP-QC-031", "In-process control of tablets", QualificationKind.SOP),
    ("SOP-GRAN-001", "High-shear wet granulation", QualificationKind.SOP),
    ("SOP-CLN-001", "Cleaning of process equipment", QualificationKind.SOP),
    ("SKILL-PRESS", "Operating the rotary tablet press", QualificationKind.SKILL),
]
TRAINED = ("operator", "operator2", "supervisor")
EXPIRED = ("operator2", "SOP-WD-001")


def seed(site: Any, people: dict[str, Any]) -> None:
    """Create the qualifications and training records once; a second run changes nothing."""
    if Qualification.objects.filter(code="SOP-WD-001").exists():
        return
    qa = Actor.of(people["reviewer"], via="cli")
    for code, title, kind in QUALIFICATIONS:
        qualification_create(actor=qa, code=code, title=title, kind=kind, reason="demo data")
    now = timezone.now()
    for username in TRAINED:
        for code, _title, _kind in QUALIFICATIONS:
            if (username, code) == EXPIRED:
                trained, valid = now - dt.timedelta(days=400), dt.timedelta(days=365)
            else:
                trained, valid = now - dt.timedelta(days=200), dt.timedelta(days=365)
            training_record_add(
                actor=qa,
                user=people[username],
                code=code,
                trained_at=trained,
                expires_at=trained + valid,
                reason="demo data: annual training",
            )
