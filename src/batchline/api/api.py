"""REST API under /api/v1/: the same services, permissions and audit as the pages (NFR-05).

Browsers authenticate with their session (CSRF enforced); machine clients with a
personal bearer token. Signing through the API always takes user ID and password.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import DataError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from ninja import NinjaAPI, Query, Router, Status
from ninja.errors import AuthenticationError
from ninja.security import HttpBearer, django_auth

from batchline.accounts import services
from batchline.accounts.models import ApiToken, RoleChange, User
from batchline.audit.models import AuditEntry
from batchline.audit.selectors import AuditFilter, audit_entries
from batchline.audit.services import Actor, ReasonRequired
from batchline.rules.verdict import Refused
from batchline.signatures.models import Meaning, Signature
from batchline.signatures.services import (
    SignatureRefused,
    signature_intact,
    signer_authenticate,
    signing_blocker,
)
from batchline.web.access import current_user, require

from . import configuration, genealogy, plant, production, quality
from . import schemas as s


class TokenAuth(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str) -> Any:
        user = services.token_user(token)
        if user is not None:
            request.user = user
        return user


api = NinjaAPI(
    title="Batchline API",
    version="1",
    urls_namespace="api",
    auth=[TokenAuth(), django_auth],
    description="Batchline MES. Every write is audited; see docs/architecture.md.",
)


@api.exception_handler(PermissionDenied)
def _forbidden(request: HttpRequest, exc: Exception) -> HttpResponse:
    return api.create_response(
        request, {"detail": str(exc) or "Not allowed.", "code": "FORBIDDEN"}, status=403
    )


@api.exception_handler(AuthenticationError)
def _unauthenticated(request: HttpRequest, exc: Exception) -> HttpResponse:
    return api.create_response(
        request, {"detail": "Log in or send a bearer token.", "code": "UNAUTHENTICATED"}, status=401
    )


@api.exception_handler(SignatureRefused)
def _signature_refused(request: HttpRequest, exc: SignatureRefused) -> HttpResponse:
    return api.create_response(request, {"detail": str(exc), "code": exc.code}, status=403)


@api.exception_handler(OverflowError)
@api.exception_handler(DataError)
def _out_of_range(request: HttpRequest, exc: Exception) -> HttpResponse:
    # An id or number beyond what the database can hold names no record.
    return api.create_response(
        request, {"detail": "No such record: a value is out of range.", "code": "OUT_OF_RANGE"}, status=404
    )


@api.exception_handler(Refused)
def _gate_refused(request: HttpRequest, exc: Refused) -> HttpResponse:
    reasons = [{"code": r.code, "message": r.message} for r in exc.verdict.reasons]
    return api.create_response(
        request,
        {"detail": str(exc), "code": reasons[0]["code"] if reasons else "REFUSED", "reasons": reasons},
        status=409,
    )


@api.exception_handler(services.AccountError)
@api.exception_handler(ReasonRequired)
def _refused(request: HttpRequest, exc: Exception) -> HttpResponse:
    return api.create_response(request, {"detail": str(exc), "code": "REFUSED"}, status=422)


def _actor(request: HttpRequest) -> Actor:
    return Actor.of(request.user, via="api")


def _user_out(u: User) -> dict[str, Any]:
    return {
        "id": u.pk,
        "username": u.username,
        "printed_name": u.printed_name,
        "email": u.email,
        "roles": u.role_names,
        "is_active": u.is_active,
        "must_change_password": u.must_change_password,
        "esig_acknowledged_at": u.esig_acknowledged_at,
    }


def _signature_out(sig: Signature, content: Any) -> dict[str, Any]:
    return {
        "id": sig.pk,
        "signer_username": sig.signer_username,
        "signer_name": sig.signer_name,
        "meaning": sig.meaning,
        "signed_at": sig.signed_at,
        "comment": sig.comment,
        "method": sig.method,
        "witness": sig.witness,
        "manifestation": sig.manifestation(),
        "binding_intact": signature_intact(sig, content),
    }


me_router = Router(tags=["accounts"])


@me_router.get("/me", response=s.Me)
def me(request: HttpRequest) -> dict[str, Any]:
    user: User = request.user  # type: ignore[assignment]
    blocker = signing_blocker(user, Meaning.PERFORMED)
    return {
        "id": user.pk,
        "username": user.username,
        "printed_name": user.printed_name,
        "roles": user.role_names,
        "signing_enabled": blocker is None,
        "signing_blocked_because": blocker[1] if blocker else "",
    }


users_router = Router(tags=["users"])


@users_router.get("", response=list[s.UserOut])
def users_list(request: HttpRequest) -> list[dict[str, Any]]:
    require(request.user, "accounts.manage_users")
    return [_user_out(u) for u in User.objects.prefetch_related("groups")]


@users_router.post("", response={201: s.UserCreated, 403: s.Problem, 422: s.Problem})
def users_create(request: HttpRequest, payload: s.UserIn) -> Status[dict[str, Any]]:
    require(request.user, "accounts.manage_users")
    user, password = services.user_create(actor=_actor(request), **payload.dict())
    return Status(201, {"user": _user_out(user), "one_time_password": password})


@users_router.get("/{user_id}", response=s.UserOut)
def users_get(request: HttpRequest, user_id: int) -> dict[str, Any]:
    require(request.user, "accounts.manage_users")
    return _user_out(get_object_or_404(User, pk=user_id))


@users_router.post("/{user_id}/deactivate", response={200: s.UserOut, 403: s.Problem, 422: s.Problem})
def users_deactivate(request: HttpRequest, user_id: int, payload: s.ReasonIn) -> dict[str, Any]:
    require(request.user, "accounts.manage_users")
    target = get_object_or_404(User, pk=user_id)
    return _user_out(services.user_deactivate(actor=_actor(request), user=target, reason=payload.reason))


@users_router.post("/{user_id}/reactivate", response={200: s.OneTimePassword, 403: s.Problem, 422: s.Problem})
def users_reactivate(request: HttpRequest, user_id: int, payload: s.ReasonIn) -> dict[str, Any]:
    require(request.user, "accounts.manage_users")
    target = get_object_or_404(User, pk=user_id)
    _, password = services.user_reactivate(actor=_actor(request), user=target, reason=payload.reason)
    return {"one_time_password": password}


@users_router.post(
    "/{user_id}/password-reset", response={200: s.OneTimePassword, 403: s.Problem, 422: s.Problem}
)
def users_password_reset(request: HttpRequest, user_id: int, payload: s.ReasonIn) -> dict[str, Any]:
    require(request.user, "accounts.manage_users")
    target = get_object_or_404(User, pk=user_id)
    return {
        "one_time_password": services.user_reset_password(
            actor=_actor(request), user=target, reason=payload.reason
        )
    }


@users_router.post("/{user_id}/unlock", response={204: None, 403: s.Problem, 422: s.Problem})
def users_unlock(request: HttpRequest, user_id: int, payload: s.ReasonIn) -> Status[None]:
    require(request.user, "accounts.manage_users")
    services.user_unlock(
        actor=_actor(request), user=get_object_or_404(User, pk=user_id), reason=payload.reason
    )
    return Status(204, None)


@users_router.post("/{user_id}/roles", response={200: s.RoleChangeOut, 403: s.Problem, 422: s.Problem})
def users_roles(request: HttpRequest, user_id: int, payload: s.RolesIn) -> dict[str, Any]:
    """Change roles; signed by the calling administrator (meaning: approved)."""
    require(request.user, "accounts.manage_users")
    target = get_object_or_404(User, pk=user_id)
    signer = signer_authenticate(
        request=request,
        username=payload.signature.username,
        password=payload.signature.password,
        meaning=Meaning.APPROVED,
    )
    change = services.user_set_roles(
        actor=_actor(request),
        user=target,
        roles=payload.roles,
        reason=payload.reason,
        signer=signer,
        comment=payload.signature.comment,
    )
    return _role_change_out(change)


def _role_change_out(change: RoleChange) -> dict[str, Any]:
    sigs = Signature.objects.filter(record_type="accounts.rolechange", record_id=str(change.pk))
    return {
        "id": change.pk,
        "roles_before": change.roles_before,
        "roles_after": change.roles_after,
        "reason": change.reason,
        "changed_at": change.changed_at,
        "changed_by": change.changed_by.username,
        "signatures": [_signature_out(sig, change.signed_content()) for sig in sigs],
    }


@users_router.get("/{user_id}/role-changes", response=list[s.RoleChangeOut])
def users_role_changes(request: HttpRequest, user_id: int) -> list[dict[str, Any]]:
    if not (
        request.user.has_perm("accounts.manage_users") or request.user.has_perm("accounts.view_audit_trail")
    ):
        raise PermissionDenied("Your roles do not allow reading role changes.")
    changes = RoleChange.objects.filter(user_id=user_id).select_related("changed_by", "user")
    return [_role_change_out(c) for c in changes]


audit_router = Router(tags=["audit trail"])


@audit_router.get("/entries", response=list[s.AuditEntryOut])
def audit_list(
    request: HttpRequest,
    record_type: str = "",
    record_id: str = "",
    user: str = "",
    action: str = "",
    since: Any = Query(None, description="first day (site time zone), YYYY-MM-DD"),  # noqa: B008
    until: Any = Query(None, description="last day (site time zone), YYYY-MM-DD"),  # noqa: B008
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0),
) -> list[dict[str, Any]]:
    require(request.user, "accounts.view_audit_trail")
    import datetime as dt

    def day(value: Any) -> dt.date | None:
        try:
            return dt.date.fromisoformat(value) if value else None
        except ValueError as exc:
            raise services.AccountError(f"{value!r} is not a date (YYYY-MM-DD)") from exc

    f = AuditFilter(record_type, record_id, user, action, day(since), day(until))
    entries: list[AuditEntry] = list(audit_entries(f)[offset : offset + limit])
    return [
        {
            **{k: getattr(e, k) for k in s.AuditEntryOut.model_fields if k != "changes"},
            "changes": json.loads(e.changes),
        }
        for e in entries
    ]


tokens_router = Router(tags=["API tokens"])


@tokens_router.get("", response=list[s.TokenOut])
def tokens_list(request: HttpRequest) -> Any:
    return ApiToken.objects.filter(user=current_user(request))


@tokens_router.post("", response={201: s.TokenCreated, 422: s.Problem})
def tokens_create(request: HttpRequest, payload: s.TokenIn) -> Status[dict[str, Any]]:
    token, raw = services.token_create(
        actor=_actor(request),
        user=current_user(request),
        name=payload.name,
        expires_at=payload.expires_at,
    )
    return Status(201, {"token": token, "secret": raw})


@tokens_router.post("/{token_id}/revoke", response={200: s.TokenOut, 403: s.Problem, 422: s.Problem})
def tokens_revoke(request: HttpRequest, token_id: int) -> Any:
    token = get_object_or_404(ApiToken, pk=token_id)
    if token.user_id != request.user.pk and not request.user.has_perm("accounts.manage_users"):
        raise PermissionDenied("You can revoke only your own tokens.")
    return services.token_revoke(actor=_actor(request), token=token)


api.add_router("/", me_router)
api.add_router("/users", users_router)
api.add_router("/audit", audit_router)
api.add_router("/tokens", tokens_router)
api.add_router("/recipes", production.recipes)
api.add_router("/batches", production.batches)
api.add_router("/equipment", plant.equipment)
api.add_router("/training", plant.training)
api.add_router("/quality", quality.quality)
api.add_router("/genealogy", genealogy.genealogy)
api.add_router("/configuration", configuration.configuration)
