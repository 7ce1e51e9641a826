"""The audit trail and the base class for every audited (GMP) model.

The audit app sits at the bottom of the dependency order: it knows people only
by id, username and printed name, so accounts can be audited too.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.db import models


class AuditBypassError(Exception):
    """A write tried to go around the audit trail (21 CFR 11.10(e))."""


class AuditedQuerySet(models.QuerySet):
    """Bulk writes skip per-record audit entries, so they are refused outright."""

    def _refuse(self, what: str) -> Any:
        raise AuditBypassError(
            f"{what} on {self.model._meta.label} would bypass the audit trail; "
            "write through the service functions"
        )

    def update(self, **kwargs: Any) -> int:
        return self._refuse("QuerySet.update()")

    def delete(self) -> tuple[int, dict[str, int]]:
        return self._refuse("QuerySet.delete()")

    def bulk_create(self, *args: Any, **kwargs: Any) -> Any:
        return self._refuse("bulk_create()")

    def bulk_update(self, *args: Any, **kwargs: Any) -> int:
        return self._refuse("bulk_update()")


class AuditedModel(models.Model):
    """A GMP record: saved only by :mod:`batchline.audit.services`, never deleted.

    ``AUDIT_EXCLUDE`` names fields that are not GMP data (never diffed, never
    replayed); ``AUDIT_SILENT`` those a save may touch without an entry (how
    Django stamps ``last_login``). ``AUDIT_DIGEST`` names secrets' hashes: the
    trail holds a SHA-256 digest of them, so a change is recorded and a swap
    behind the application's back is found, yet the hash itself is never shown.
    """

    AUDIT_EXCLUDE: ClassVar[frozenset[str]] = frozenset()
    AUDIT_SILENT: ClassVar[frozenset[str]] = frozenset()
    AUDIT_DIGEST: ClassVar[frozenset[str]] = frozenset()

    objects = models.Manager.from_queryset(AuditedQuerySet)()

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not getattr(self, "_audit_permit", False):
            update_fields = kwargs.get("update_fields")
            if not (update_fields and set(update_fields) <= self.AUDIT_SILENT):
                raise AuditBypassError(
                    f"{self._meta.label} saved outside the audit services; "
                    "use batchline.audit.services.record_create / record_update"
                )
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise AuditBypassError(f"{self._meta.label} is a GMP record and is never deleted")

    def audit_extra_state(self) -> dict[str, Any]:
        """Audited values that are not columns of this table (e.g. a user's roles)."""
        return {}


class AuditEntry(models.Model):
    """One append-only, hash-chained entry. The database refuses UPDATE and DELETE."""

    at = models.DateTimeField(db_index=True)
    actor_id = models.BigIntegerField(null=True)
    actor_username = models.CharField(max_length=150, db_index=True)
    actor_name = models.CharField(max_length=200)
    action = models.CharField(max_length=40, db_index=True)
    record_type = models.CharField(max_length=80)
    record_id = models.CharField(max_length=64)
    changes = models.TextField()  # canonical JSON {field: [old, new]}
    reason = models.TextField(blank=True)
    via = models.CharField(max_length=20)  # web, api, admin, cli, system
    # Which of the parallel chains the entry is on and its place there, gapless
    # from 1 (audit/chain.py): a removed entry leaves a hole that is named.
    chain = models.SmallIntegerField(default=0)
    seq = models.BigIntegerField()
    # No index on the hashes: the chain is checked by walking it in id order, and a
    # unique index over random SHA-256 keys costs a random page write per entry.
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    class Meta:
        verbose_name_plural = "audit entries"
        indexes = [models.Index(fields=["record_type", "record_id"], name="audit_record_idx")]
        constraints = [models.UniqueConstraint(fields=["chain", "seq"], name="audit_chain_seq_uniq")]

    def __str__(self) -> str:
        return f"#{self.pk} {self.action} {self.record_type}:{self.record_id} by {self.actor_username}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None and not self._state.adding:
            raise AuditBypassError("audit entries are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise AuditBypassError("audit entries are append-only")


class AuditChain(models.Model):
    """The head of one chain: the row a PostgreSQL writer locks to append to it.

    Several chains let writers append in parallel (audit/chain.py); the signed
    checkpoints join them. Kept by the append function, never by the ORM.
    """

    id = models.SmallIntegerField(primary_key=True)
    seq = models.BigIntegerField(default=0)
    hash = models.CharField(max_length=64)

    def __str__(self) -> str:
        return f"chain {self.id} at {self.seq}"


class Checkpoint(models.Model):
    """A signed statement of every chain's head, also written to the anchors outside the database.

    ``payload`` is the exact signed text (audit/checkpoints.py); the columns
    beside it repeat what it says for queries. Append-only in the database.
    """

    number = models.BigIntegerField(unique=True)
    at = models.DateTimeField()
    entries = models.BigIntegerField()
    payload = models.TextField()
    hash = models.CharField(max_length=64)
    signature = models.CharField(max_length=200)
    key_fingerprint = models.CharField(max_length=80)

    def __str__(self) -> str:
        return f"checkpoint {self.number} ({self.entries} entries)"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None and not self._state.adding:
            raise AuditBypassError("checkpoints are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise AuditBypassError("checkpoints are append-only")
