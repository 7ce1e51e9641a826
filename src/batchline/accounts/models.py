"""Personal accounts (21 CFR 11.100, 11.300; Annex 11 §12).

Accounts are never deleted, only deactivated, so every record stays
attributable; usernames are unique and, as nothing is deleted, never reused.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.contrib.auth.hashers import check_password, make_password
from django.contrib.auth.models import AbstractUser, UserManager
from django.db import models
from django.db.models.functions import Lower

from batchline.audit.models import AuditedModel, AuditedQuerySet


class AuditedUserManager(UserManager.from_queryset(AuditedQuerySet)):  # type: ignore[misc]
    """``createsuperuser`` and friends go through the audited service."""

    def create_user(
        self, username: str, email: str | None = None, password: str | None = None, **extra: Any
    ) -> Any:
        from .services import user_create_bootstrap

        return user_create_bootstrap(username=username, email=email or "", password=password, **extra)

    def create_superuser(
        self, username: str, email: str | None = None, password: str | None = None, **extra: Any
    ) -> Any:
        from .services import user_create_bootstrap

        extra.pop("is_staff", None)
        extra.pop("is_superuser", None)
        return user_create_bootstrap(
            username=username,
            email=email or "",
            password=password,
            roles=["administrator"],
            **extra,
        )


class User(AuditedModel, AbstractUser):
    full_name = models.CharField(
        max_length=200, help_text="Printed name, shown in every signature manifestation."
    )
    must_change_password = models.BooleanField(
        default=True,
        help_text="Set when an administrator issued the password: no signing until the user changes it.",
    )
    password_changed_at = models.DateTimeField(null=True, blank=True)
    esig_acknowledged_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When the user acknowledged that their e-signature binds like a handwritten one.",
    )

    AUDIT_EXCLUDE: ClassVar[frozenset[str]] = frozenset({"last_login"})
    AUDIT_SILENT: ClassVar[frozenset[str]] = frozenset({"last_login"})
    AUDIT_DIGEST: ClassVar[frozenset[str]] = frozenset({"password"})
    REQUIRED_FIELDS = ["full_name", "email"]

    objects = AuditedUserManager()  # type: ignore[misc]

    class Meta:
        ordering = ["username"]
        constraints = [
            # "Olga" and "olga" are one person's ID: never two accounts (P11-15), even when created at once.
            models.UniqueConstraint(Lower("username"), name="user_username_ci_unique"),
        ]
        permissions = [
            ("manage_users", "Administer users, roles and passwords"),
            ("view_audit_trail", "Read and export the audit trail"),
            ("view_security_events", "See failed logins, lockouts and other security events"),
            ("verify_identity", "Check a person's identity when they redeem an enrolment code"),
        ]

    def __str__(self) -> str:
        return f"{self.printed_name} ({self.username})"

    @property
    def printed_name(self) -> str:
        return self.full_name or self.get_full_name() or self.username

    @property
    def role_names(self) -> list[str]:
        return sorted(g.name for g in self.groups.all())

    def audit_extra_state(self) -> dict[str, Any]:
        return {"roles": self.role_names}

    def check_password(self, raw_password: str) -> bool:
        """Django's check, but a re-hash with stronger parameters goes through the audit trail."""

        def rehash(raw: str) -> None:
            from django.db import transaction

            from batchline.audit.services import SYSTEM, record_update

            with transaction.atomic():
                record_update(
                    type(self).objects.select_for_update().get(pk=self.pk),
                    actor=SYSTEM,
                    values={"password": make_password(raw)},
                    action="password_rehash",
                    reason="password hash upgraded to the current hashing parameters",
                )
            self.refresh_from_db(fields=["password"])

        return check_password(raw_password, self.password, rehash)


class PasswordHistory(models.Model):
    """Hashes of earlier passwords, so a password cannot simply be re-used (P11-24)."""

    user = models.ForeignKey(User, on_delete=models.PROTECT, related_name="password_history")
    password = models.CharField(max_length=256)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"earlier password of {self.user_id} ({self.created_at:%Y-%m-%d})"


class RoleChange(AuditedModel):
    """A signed change of someone's roles (Annex 11 §12.3: access rights are recorded)."""

    user = models.ForeignKey(User, on_delete=models.PROTECT, related_name="role_changes")
    roles_before = models.JSONField()
    roles_after = models.JSONField()
    reason = models.TextField()
    changed_at = models.DateTimeField()
    changed_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    # A grant of GMP signing authority takes effect through a two-person change request
    # (accounts/grants.py): the administrator's signed request, the QA approver's signed approval.
    change_request = models.ForeignKey(
        "approvals.ChangeRequest", on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )

    class Meta:
        ordering = ["-changed_at", "-id"]

    def __str__(self) -> str:
        return f"roles of {self.user.username}: {self.roles_before} → {self.roles_after}"

    def signed_content(self) -> dict[str, Any]:
        return {
            "user": self.user.username,
            "roles_before": self.roles_before,
            "roles_after": self.roles_after,
            "reason": self.reason,
        }


class TokenScope(models.TextChoices):
    READ = "read", "Read only"
    WRITE = "write", "Read and write"


class ApiToken(AuditedModel):
    """A personal token for a machine client. Only its SHA-256 is stored.

    Every token expires (90 days unless its owner chose a shorter time) and has
    a scope: a read-only token is refused on every request that could change
    something.
    """

    user = models.ForeignKey(User, on_delete=models.PROTECT, related_name="api_tokens")
    name = models.CharField(max_length=100)
    scope = models.CharField(max_length=10, choices=TokenScope.choices, default=TokenScope.READ)
    prefix = models.CharField(max_length=12, help_text="First characters, to recognise the token.")
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    AUDIT_EXCLUDE: ClassVar[frozenset[str]] = frozenset({"last_used_at"})
    AUDIT_SILENT: ClassVar[frozenset[str]] = frozenset({"last_used_at"})
    AUDIT_DIGEST: ClassVar[frozenset[str]] = frozenset({"key_hash"})

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


class Delivery(models.TextChoices):
    MAIL = "mail", "Mailed to the person's own address"
    STATION = "station", "Enrolment code, redeemed at a station with a second person's identity check"


class Enrolment(AuditedModel):
    """A credential that reaches the person, never the administrator (21 CFR 11.100(b), 11.300; P11-16, P11-21).

    A new account, a password reset and a reactivation each issue one; the
    account has no usable password until the person redeems it and chooses
    their own. Mailed to the person's own address where a relay is configured;
    otherwise an enrolment code that works only at a station while a second
    person (never an administrator, never the person) checks the person's
    identity and signs that check. Only the code's SHA-256 is stored.
    """

    user = models.ForeignKey(User, on_delete=models.PROTECT, related_name="enrolments")
    purpose = models.CharField(max_length=20)  # "new account", "password reset", "reactivation"
    delivery = models.CharField(max_length=10, choices=Delivery.choices)
    address = models.CharField(max_length=254, blank=True, help_text="Where a mailed credential went.")
    code_hash = models.CharField(max_length=64)
    issued_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+", null=True, blank=True)
    issued_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    failed_attempts = models.PositiveSmallIntegerField(default=0)
    redeemed_at = models.DateTimeField(null=True, blank=True)
    void_at = models.DateTimeField(
        null=True, blank=True, help_text="Replaced by a newer one, or too many wrong codes."
    )
    identity_checked_by = models.ForeignKey(
        User, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    identity_check = models.TextField(blank=True, help_text="How the person's identity was checked.")

    AUDIT_DIGEST: ClassVar[frozenset[str]] = frozenset({"code_hash"})

    class Meta:
        ordering = ["-issued_at", "-id"]

    def __str__(self) -> str:
        return f"{self.purpose} credential of {self.user_id} ({self.get_delivery_display()})"

    def signed_content(self) -> dict[str, Any]:
        """What the identity checker's signature binds."""
        return {
            "enrolment": self.pk,
            "user": self.user.username,
            "printed_name": self.user.printed_name,
            "purpose": self.purpose,
            "identity_check": self.identity_check,
        }


class AlertSeverity(models.TextChoices):
    CRITICAL = "critical", "Critical"
    WARNING = "warning", "Warning"


class SecurityAlert(AuditedModel):
    """Something the security unit must know at once (21 CFR 11.300(d); DESIGN invariant 9).

    Shown in the application to everyone who reads security events (security
    administrators and auditors) until one of them acknowledges it, mailed to
    them where a mail relay is configured, and logged. Raised by a lockout, a
    throttled source address, a failed verification of the audit trail, a
    checkpoint that could not be anchored.
    """

    kind = models.CharField(max_length=40)
    severity = models.CharField(max_length=10, choices=AlertSeverity.choices)
    message = models.TextField()
    details = models.JSONField(default=dict, blank=True)
    raised_at = models.DateTimeField()
    acknowledged_by = models.ForeignKey(
        User, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledgement = models.TextField(blank=True)

    class Meta:
        ordering = ["-raised_at", "-id"]
        indexes = [models.Index(fields=["acknowledged_at"], name="alert_open_idx")]

    def __str__(self) -> str:
        return f"{self.get_severity_display()}: {self.message}"
