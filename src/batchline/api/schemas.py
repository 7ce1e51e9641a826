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


class UserIn(Schema):
    username: str = Field(min_length=1, max_length=150, pattern=r"^[\w.@+-]+$")
    full_name: str = Field(min_length=1, max_length=200)
    email: str = Field(default="", max_length=254)
    roles: list[str] = Field(default_factory=list, max_length=20)
    reason: str = Field(default="", max_length=2000)


class UserCreated(Schema):
    user: UserOut
    one_time_password: str


class ReasonIn(Schema):
    reason: str = Field(min_length=1, max_length=2000)


class OneTimePassword(Schema):
    one_time_password: str


class SignatureIn(Schema):
    username: str = Field(min_length=1, max_length=150)
    password: str = Field(min_length=1, max_length=200)
    comment: str = Field(default="", max_length=2000)


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
    expires_at: dt.datetime | None = None


class TokenOut(Schema):
    id: int
    name: str
    prefix: str
    created_at: dt.datetime
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None
    last_used_at: dt.datetime | None


class TokenCreated(Schema):
    token: TokenOut
    secret: str = Field(description="Shown once; only its SHA-256 is stored.")
