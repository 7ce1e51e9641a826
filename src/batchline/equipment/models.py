"""The physical model (ISA-95/ISA-88): site first; areas, units and equipment follow."""

from __future__ import annotations

from django.db import models

from batchline.audit.models import AuditedModel


class Site(AuditedModel):
    code = models.SlugField(max_length=20, unique=True)
    name = models.CharField(max_length=200)
    time_zone = models.CharField(max_length=64, default="UTC", help_text="IANA zone, for display.")
    address = models.TextField(blank=True)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code} — {self.name}"
