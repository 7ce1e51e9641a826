"""REST API under /api/v1/: the same services, permissions and audit as the pages (NFR-05).

Browsers authenticate with their session (CSRF enforced); machine clients with a
personal bearer token. Signing through the API always takes user ID and password.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import DataError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from ninja import NinjaAPI, Query, Router, Status
from ninja.errors import AuthenticationError
from ninja.parser import Parser
from ninja.security import HttpBearer, django_auth
from ninja.throttling import SimpleRateThrottle

from batchline.accounts import grants, services
from batchline.accounts.enrolment import Issued
from batchline.accounts.models import ApiToken, RoleChange, TokenScope, User
from batchline.approvals.models import ChangeRequest, RequestState
from batchline.approvals.services import APPROVE_PERMISSION, ChangeRefused, change_approve, change_reject
from batchline.audit.models import AuditEntry
from batchline.audit.selectors import AuditFilter, audit_entries
from batchline.audit.services import Actor, DoesNotFit, ReasonRequired
from batchline.rules.verdict import Refused
from batchline.signatures.models import Meaning, Signature
from batchline.signatures.services import (
    SignatureRefused,
    signature_intact,
    signer_authenticate,
    signing_blocker,
)
from batchline.web.access import current_user, require

from . import (
    configuration,
    erp,
    gateway,
    genealogy,
    inventory,
    lims,
    masterdata,
    masterdata_import,
    plant,
    production,
    quality,
    readings,
    remainders,
    step_records,
)
from . import schemas as s

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


class TokenAuth(HttpBearer):
    """A personal token: expired or revoked ones are refused; a read-only one only reads."""

    def authenticate(self, request: HttpRequest, token: str) -> Any:
        found = services.token_of(token)
        if found is None:
            return None
        if found.scope != TokenScope.WRITE and request.method not in SAFE_METHODS:
            raise PermissionDenied(
                f"The token {found.name!r} is read-only: create a read-write token for a client that writes."
            )
        request.user = found.user
        request._batchline_token = found.key_hash  # type: ignore[attr-defined]
        return found.user


class TokenRateThrottle(SimpleRateThrottle):
    """Requests per token (``BATCHLINE_API_TOKEN_RATE``, default 600 a minute); sessions are not counted.

    Counted in the process's cache: each server process allows the rate.
    """

    def __init__(self) -> None:
        super().__init__(settings.BATCHLINE_API_TOKEN_RATE)

    def allow_request(self, request: HttpRequest) -> bool:
        # The rate is read at each request, so a changed setting holds without rebuilding the API.
        self.rate = settings.BATCHLINE_API_TOKEN_RATE
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request)

    def get_cache_key(self, request: HttpRequest) -> str | None:
        key = getattr(request, "_batchline_token", None)
        return f"batchline_token_rate_{key}" if key else None


class ExactNumbers(Parser):
    """JSON numbers are read as Decimals: a quantity is never a float on its way in (0.1 stays 0.1).

    NaN and Infinity, which Python's reader would take, are no JSON; the door refuses them in
    words before this runs (web/middleware.py), and they are refused here too.
    """

    def parse_body(self, request: HttpRequest) -> Any:
        return json.loads(request.body, parse_float=Decimal, parse_constant=_no_constant)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


api = NinjaAPI(
    title="Batchline API",
    parser=ExactNumbers(),
    version="1",
    urls_namespace="api",
    auth=[TokenAuth(), django_auth],
    throttle=[TokenRateThrottle()],
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


@api.exception_handler(DoesNotFit)
def _does_not_fit(request: HttpRequest, exc: DoesNotFit) -> HttpResponse:
    reasons = [{"code": r.code, "message": r.message} for r in exc.verdict.reasons]
    return api.create_response(
        request, {"detail": str(exc), "code": reasons[0]["code"], "reasons": reasons}, status=422
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


def _credential_out(issued: Issued) -> dict[str, Any]:
    return {
        "delivery": issued.delivery,
        "notice": issued.notice,
        "mailed": issued.mailed,
        "enrolment_code": issued.enrolment_code,
        "expires_at": issued.enrolment.expires_at,
    }


def _role_request_out(change: ChangeRequest) -> dict[str, Any]:
    sigs = Signature.objects.filter(record_type="approvals.changerequest", record_id=str(change.pk))
    return {
        "id": change.pk,
        "number": change.number,
        "state": change.state,
        "summary": change.summary,
        "reason": change.reason,
        "requested_by": change.requested_by.username,
        "requested_at": change.requested_at,
        "decided_by": change.decided_by.username if change.decided_by else None,
        "decided_at": change.decided_at,
        "signatures": [_signature_out(sig, change.signed_content()) for sig in sigs],
    }


@users_router.post("", response={201: s.UserCreated, 403: s.Problem, 422: s.Problem})
def users_create(request: HttpRequest, payload: s.UserIn) -> Status[dict[str, Any]]:
    """Create an account. Its credential reaches the person, never the caller; GMP roles wait for QA."""
    require(request.user, "accounts.manage_users")
    data = payload.dict()
    signature = data.pop("signature", None)
    signer = None
    if grants.gmp_roles_added([], data["roles"]):
        if signature is None:
            raise services.AccountError(
                "GMP signing roles are requested under your signature: send signature {username, password}."
            )
        signer = signer_authenticate(
            request=request,
            username=signature["username"],
            password=signature["password"],
            meaning=Meaning.REQUESTED,
        )
    user, issued = services.user_create(actor=_actor(request), signer=signer, **data)
    grant = grants.open_grant(user)
    return Status(
        201,
        {
            "user": _user_out(user),
            "credential": _credential_out(services.credential_deliver(issued)),
            "role_request": _role_request_out(grant) if grant else None,
        },
    )


@users_router.get("/role-requests", response=list[s.RoleRequestOut])
def role_requests_list(request: HttpRequest) -> list[dict[str, Any]]:
    """Open requests for GMP signing authority (QA approvers decide them)."""
    if not (request.user.has_perm(APPROVE_PERMISSION) or request.user.has_perm("accounts.manage_users")):
        raise PermissionDenied("Your roles do not allow reading role requests.")
    open_requests = ChangeRequest.objects.filter(kind=grants.ROLE_GRANT, state=RequestState.REQUESTED)
    return [_role_request_out(r) for r in open_requests.select_related("requested_by", "decided_by")]


@users_router.post(
    "/role-requests/{request_id}/{decision}",
    response={200: s.RoleRequestOut, 403: s.Problem, 404: s.Problem, 422: s.Problem},
)
def role_request_decide(
    request: HttpRequest, request_id: int, decision: str, payload: s.DecisionIn
) -> dict[str, Any]:
    """``approve`` (the roles take effect) or ``reject`` (comment required), signed by a QA approver."""
    require(request.user, APPROVE_PERMISSION)
    change = get_object_or_404(ChangeRequest, pk=request_id, kind=grants.ROLE_GRANT)
    if decision not in {"approve", "reject"}:
        raise services.AccountError("Decide with 'approve' or 'reject'.")
    signer = signer_authenticate(
        request=request,
        username=payload.signature.username,
        password=payload.signature.password,
        meaning=Meaning.APPROVED if decision == "approve" else Meaning.REJECTED,
    )
    try:
        if decision == "approve":
            change = change_approve(
                actor=_actor(request), signer=signer, request=change, comment=payload.signature.comment
            )
        else:
            change = change_reject(
                actor=_actor(request), signer=signer, request=change, comment=payload.signature.comment
            )
    except ChangeRefused as exc:
        raise services.AccountError(str(exc)) from exc
    return _role_request_out(change)


@users_router.get("/{user_id}", response=s.UserOut)
def users_get(request: HttpRequest, user_id: int) -> dict[str, Any]:
    require(request.user, "accounts.manage_users")
    return _user_out(get_object_or_404(User, pk=user_id))


@users_router.post("/{user_id}/deactivate", response={200: s.UserOut, 403: s.Problem, 422: s.Problem})
def users_deactivate(request: HttpRequest, user_id: int, payload: s.ReasonIn) -> dict[str, Any]:
    require(request.user, "accounts.manage_users")
    target = get_object_or_404(User, pk=user_id)
    return _user_out(services.user_deactivate(actor=_actor(request), user=target, reason=payload.reason))


@users_router.post("/{user_id}/reactivate", response={200: s.CredentialOut, 403: s.Problem, 422: s.Problem})
def users_reactivate(request: HttpRequest, user_id: int, payload: s.ReasonIn) -> dict[str, Any]:
    """Reactivate; a new credential reaches the person (no password is returned)."""
    require(request.user, "accounts.manage_users")
    target = get_object_or_404(User, pk=user_id)
    _, issued = services.user_reactivate(actor=_actor(request), user=target, reason=payload.reason)
    return _credential_out(services.credential_deliver(issued))


@users_router.post(
    "/{user_id}/password-reset", response={200: s.CredentialOut, 403: s.Problem, 422: s.Problem}
)
def users_password_reset(request: HttpRequest, user_id: int, payload: s.ReasonIn) -> dict[str, Any]:
    """Void the password; a new credential reaches the person (no password is returned)."""
    require(request.user, "accounts.manage_users")
    target = get_object_or_404(User, pk=user_id)
    issued = services.user_reset_password(actor=_actor(request), user=target, reason=payload.reason)
    return _credential_out(services.credential_deliver(issued))


@users_router.post("/{user_id}/unlock", response={204: None, 403: s.Problem, 422: s.Problem})
def users_unlock(request: HttpRequest, user_id: int, payload: s.ReasonIn) -> Status[None]:
    require(request.user, "accounts.manage_users")
    services.user_unlock(
        actor=_actor(request), user=get_object_or_404(User, pk=user_id), reason=payload.reason
    )
    return Status(204, None)


@users_router.post(
    "/{user_id}/roles",
    response={200: s.RoleChangeOut, 202: s.RoleRequestOut, 403: s.Problem, 422: s.Problem},
)
def users_roles(request: HttpRequest, user_id: int, payload: s.RolesIn) -> Any:
    """Change roles under the caller's signature.

    Granting a GMP signing role answers 202 with the signed request (meaning:
    requested), which takes effect when a QA approver approves it; any other
    change answers 200 with the change, in effect at once (meaning: approved).
    """
    require(request.user, "accounts.manage_users")
    target = get_object_or_404(User, pk=user_id)
    signer = signer_authenticate(
        request=request,
        username=payload.signature.username,
        password=payload.signature.password,
        meaning=grants.signing_meaning(target, payload.roles),
    )
    change = services.user_set_roles(
        actor=_actor(request),
        user=target,
        roles=payload.roles,
        reason=payload.reason,
        signer=signer,
        comment=payload.signature.comment,
    )
    if isinstance(change, ChangeRequest):
        return Status(202, _role_request_out(change))
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
        scope=payload.scope,
    )
    return Status(201, {"token": token, "secret": raw})


@users_router.get("/{user_id}/tokens", response=list[s.TokenOut])
def users_tokens(request: HttpRequest, user_id: int) -> Any:
    """A person's API tokens, for the administrators (who may revoke them)."""
    require(request.user, "accounts.manage_users")
    return ApiToken.objects.filter(user=get_object_or_404(User, pk=user_id))


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
api.add_router("/batches", remainders.router)  # what is left of a batch's dispensed containers
api.add_router("/batches", step_records.router)
api.add_router("/batches", readings.router)  # inputs read from a machine
api.add_router("/equipment", plant.equipment)
api.add_router("/training", plant.training)
api.add_router("/quality", quality.quality)
api.add_router("/genealogy", genealogy.genealogy)
api.add_router("/inventory", inventory.router)
api.add_router("/lims", lims.router)
api.add_router("/configuration", configuration.configuration)
api.add_router("/erp", erp.router)
api.add_router("/gateway", gateway.router)
# Before the /master-data/{kind} routes: "imports" is no kind, and the first match wins.
api.add_router("/master-data/imports", masterdata_import.router)
api.add_router("/master-data", masterdata.router)
