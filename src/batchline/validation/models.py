"""A validation package as a GMP record: its archive's hash and what it found, signed by two people.

``batchline validate`` writes one row per archive it builds. The validation
lead signs it (meaning *reviewed*), then a QA approver, another person,
approves it (*approved*); both signatures bind :meth:`signed_content`, which
holds the archive's SHA-256, so the signed record names exactly one archive.
"""

from __future__ import annotations

from typing import Any

from django.db import models

from batchline.audit.models import AuditedModel


class ValidationPackage(AuditedModel):
    file_name = models.CharField(max_length=200)
    path = models.CharField(max_length=500, help_text="where the archive was written")
    sha256 = models.CharField(max_length=64, unique=True)
    generated_at = models.DateTimeField()
    engine = models.CharField(max_length=20)
    release = models.CharField(max_length=100, help_text="version and git describe")
    commit = models.CharField(max_length=40, blank=True)
    key_fingerprint = models.CharField(max_length=60)
    verdict_ok = models.BooleanField()
    p0 = models.PositiveIntegerField()
    p0_shown = models.PositiveIntegerField()
    tests = models.PositiveIntegerField()
    tests_failed = models.PositiveIntegerField()
    findings = models.JSONField(help_text="the package's findings, in words")

    class Meta:
        ordering = ["-generated_at", "-id"]
        permissions = [
            ("view_package", "Read validation packages"),
            ("lead_validation", "Sign a validation package as its validation lead"),
        ]

    def __str__(self) -> str:
        return self.file_name

    def signed_content(self) -> dict[str, Any]:
        """What both signatures bind: the archive (by its hash) and what it found."""
        return {
            "validation_package": self.pk,
            "file_name": self.file_name,
            "sha256": self.sha256,
            "generated_at": self.generated_at.isoformat(),
            "release": self.release,
            "commit": self.commit,
            "key_fingerprint": self.key_fingerprint,
            "verdict_ok": self.verdict_ok,
            "findings": self.findings,
        }
