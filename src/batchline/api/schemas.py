from __future__ import annotations

import datetime as dt
from typing import Any

from ninja import Schema
from pydantic import Field


class Problem(Schema):
    detail: str
    code: str = ""


class Me(Schema):
    id: int
    username: str
    printed_name: str
    roles: list[str]
    signing_enabled: bool
    signing_blocked_because: str = ""


class UserOut(Schema):
    id: int
    username: str
    printed_name: str
    email: str
    roles: list[str]
    is_active: bool
    must_change_password: bool
    esig_acknowledged_at: dt.datetime | None


class SignatureIn(Schema):
    username: str = Field(min_length=1, max_length=150)
    password: str = Field(min_length=1, max_length=200)
    comment: str = Field(default="", max_length=2000)


class UserIn(Schema):
    username: str = Field(min_length=1, max_length=150, pattern=r"^[\w.@+-]+$")
    full_name: str = Field(min_length=1, max_length=200)
    email: str = Field(default="", max_length=254)
    roles: list[str] = Field(default_factory=list, max_length=20)
    reason: str = Field(default="", max_length=2000)
    signature: SignatureIn | None = Field(
        default=None,
        description="The administrator's signature (meaning: requested), needed when GMP signing roles are asked for.",
    )


class CredentialOut(Schema):
    """How the person's credential travels. Never a password: the administrator never learns one."""

    delivery: str = Field(description="'mail' (to the person's own address) or 'station' (an enrolment code)")
    notice: str
    mailed: bool
    enrolment_code: str = Field(
        default="",
        description="Station path only: hand it over; it works only while a second person checks the identity.",
    )
    expires_at: dt.datetime


class ReasonIn(Schema):
    reason: str = Field(min_length=1, max_length=2000)


class DecisionIn(Schema):
    signature: SignatureIn


class RolesIn(Schema):
    roles: list[str] = Field(max_length=20)
    reason: str = Field(min_length=1, max_length=2000)
    signature: SignatureIn


class SignatureOut(Schema):
    id: int
    signer_username: str
    signer_name: str
    meaning: str
    signed_at: dt.datetime
    comment: str
    method: str
    witness: bool
    manifestation: str
    binding_intact: bool


class RoleChangeOut(Schema):
    id: int
    roles_before: list[str]
    roles_after: list[str]
    reason: str
    changed_at: dt.datetime
    changed_by: str
    signatures: list[SignatureOut]


class AuditEntryOut(Schema):
    id: int
    at: dt.datetime
    actor_id: int | None
    actor_username: str
    actor_name: str
    action: str
    record_type: str
    record_id: str
    changes: dict[str, Any]
    reason: str
    via: str
    prev_hash: str
    hash: str


class TokenIn(Schema):
    name: str = Field(min_length=1, max_length=100)
    expires_at: dt.datetime | None = Field(
        default=None, description="Default: 90 days from now; at most a year."
    )
    scope: str = Field(default="read", pattern="^(read|write)$", description="'read' (default) or 'write'")


class TokenOut(Schema):
    id: int
    name: str
    scope: str
    prefix: str
    created_at: dt.datetime
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None
    last_used_at: dt.datetime | None


class TokenCreated(Schema):
    token: TokenOut
    secret: str = Field(description="Shown once; only its SHA-256 is stored.")


class RoleRequestOut(Schema):
    id: int
    number: str
    state: str
    summary: str
    reason: str
    requested_by: str
    requested_at: dt.datetime
    decided_by: str | None
    decided_at: dt.datetime | None
    signatures: list[SignatureOut]


class UserCreated(Schema):
    user: UserOut
    credential: CredentialOut
    role_request: RoleRequestOut | None = None
