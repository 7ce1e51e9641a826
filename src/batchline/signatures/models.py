"""Electronic signatures (21 CFR 11.50, 11.70, 11.100, 11.200; Annex 11 §14).

A signature is its own append-only record: who (id and printed name), when
(server clock, UTC), what it means, and a hash binding it to exactly the
content signed. The database refuses UPDATE and DELETE on this table.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone

from batchline.audit.models import AuditBypassError, AuditedModel


class Meaning(models.TextChoices):
    PERFORMED = "performed", "Performed"
    VERIFIED = "verified", "Verified"
    REVIEWED = "reviewed", "Reviewed"
    APPROVED = "approved", "Approved"
    RELEASED = "released", "Released"
    REJECTED = "rejected", "Rejected"
    CERTIFIED = "certified", "Certified by the qualified person"
    # An administrator's signed request for a change a second person approves (a GMP role, the
    # GMP configuration): administrative, it carries no GMP authority of its own.
    REQUESTED = "requested", "Requested"


class Method(models.TextChoices):
    ID_AND_PASSWORD = "id+password", "user ID and password"
    PASSWORD = "password", "password (continuous session)"


class Signature(AuditedModel):
    """Append-only (database triggers) and audited like every GMP record, so
    ``audit verify`` replays each signature against its entry."""

    signer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="signatures")
    signer_username = models.CharField(max_length=150)
    signer_name = models.CharField(max_length=200)
    meaning = models.CharField(max_length=20, choices=Meaning.choices)
    comment = models.TextField(blank=True)
    signed_at = models.DateTimeField()
    record_type = models.CharField(max_length=80)
    record_id = models.CharField(max_length=64)
    method = models.CharField(max_length=20, choices=Method.choices)
    witness = models.BooleanField(default=False, help_text="Signed at another person's station.")
    station = models.CharField(max_length=40, blank=True, help_text="the registered station it was signed at")
    binding_hash = models.CharField(max_length=64)

    class Meta:
        ordering = ["signed_at", "id"]
        indexes = [models.Index(fields=["record_type", "record_id"], name="signature_record_idx")]
        permissions = [(f"sign_{m.value}", f"Sign with the meaning '{m.label}'") for m in Meaning]

    def __str__(self) -> str:
        return self.manifestation()

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AuditBypassError("signatures are append-only")
        super().save(*args, **kwargs)

    def manifestation(self) -> str:
        """Printed name, date and time with zone, and meaning (21 CFR 11.50(a))."""
        local = timezone.localtime(self.signed_at)
        return f"{self.signer_name} — {self.get_meaning_display()} — {local:%Y-%m-%d %H:%M:%S %Z}"
