"""Products and master recipe versions (ISA-88 master recipe; MBR-01).

A version's procedure is stored as its canonical document (see
``document.py``): the same structure is imported, exported, compared and
frozen into each batch as its control recipe.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models

from batchline.audit.models import AuditedModel


class Product(AuditedModel):
    code = models.CharField(max_length=40, unique=True)
    name = models.CharField(max_length=200)
    # Retired: no new recipe version or batch for it; its recipes and batches stay readable.
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class RecipeStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    IN_REVIEW = "in_review", "In review"
    APPROVED = "approved", "Approved"
    EFFECTIVE = "effective", "Effective"
    SUPERSEDED = "superseded", "Superseded"
    RETIRED = "retired", "Retired"


class MasterRecipe(AuditedModel):
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="recipes")
    code = models.CharField(max_length=40)
    version = models.PositiveIntegerField()
    name = models.CharField(max_length=200)
    status = models.CharField(max_length=20, choices=RecipeStatus.choices, default=RecipeStatus.DRAFT)
    nominal_quantity = models.DecimalField(max_digits=18, decimal_places=6)
    nominal_unit = models.CharField(max_length=30)
    document = models.JSONField()
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField()
    effective_at = models.DateTimeField(null=True, blank=True)
    # Why this version was made (a new version of an effective one must say): shown at the top of
    # every comparison with the version it replaces, for whoever reviews and approves it.
    change_reason = models.CharField(max_length=2000, blank=True, default="")

    class Meta:
        ordering = ["code", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["code", "version"], name="recipe_code_version_unique"),
            # At most one effective version of a recipe at a time.
            models.UniqueConstraint(
                fields=["code"], condition=models.Q(status="effective"), name="recipe_one_effective"
            ),
        ]
        permissions = [
            ("author_recipe", "Write and submit master recipes"),
            ("approve_recipe", "Approve master recipes and make them effective"),
        ]

    def __str__(self) -> str:
        return f"{self.code} v{self.version} ({self.get_status_display()})"

    def signed_content(self) -> dict[str, Any]:
        """What a life-cycle signature binds to: the version and its whole procedure.

        Not the status: a later transition must not break the earlier signatures.
        """
        return {"code": self.code, "version": self.version, "document": self.document}
