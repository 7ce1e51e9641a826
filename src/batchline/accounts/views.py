"""Pages for logging in, passwords, the e-signature statement, users and tokens.

Views parse, check access, call one service and render or redirect; the
decisions live in the services.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from batchline.approvals.models import ChangeRequest, RequestState
from batchline.approvals.services import APPROVE_PERMISSION, ChangeRefused, change_approve, change_reject
from batchline.audit.services import Actor, ReasonRequired
from batchline.signatures.models import Meaning, Signature
from batchline.signatures.services import (
    SignatureRefused,
    signature_intact,
    signer_authenticate,
    signing_session_open,
    username_required,
)
from batchline.web.access import current_user, require

from . import alerts, grants, lockout, services
from .enrolment import EnrolmentRefused, Issued, enrolment_redeem, mail_relay_configured, open_enrolment
from .forms import PasswordChangeForm, ReasonForm, RolesForm, TokenForm, UserCreateForm
from .models import ApiToken, Enrolment, RoleChange, SecurityAlert, User
from .selectors import is_locked


def _actor(request: HttpRequest) -> Actor:
    return Actor.of(request.user, via="web")


class LoginView(auth_views.LoginView):
    template_name = "accounts/login.html"
    redirect_authenticated_user = True

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["timed_out"] = self.request.GET.get("timeout") == "1"
        return context


def locked_out(request: HttpRequest, credentials: Any = None, *args: Any, **kwargs: Any) -> HttpResponse:
    """What axes shows once an account is locked (21 CFR 11.300(d))."""
    return render(request, "accounts/locked_out.html", status=403)


@login_required
def password_change(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    form = PasswordChangeForm(request.POST or None)
    error = ""
    if request.method == "POST" and form.is_valid():
        try:
            services.password_change(
                user=user,
                old_password=form.cleaned_data["old_password"],
                new_password=form.cleaned_data["new_password"],
                actor=_actor(request),
                request=request,
            )
        except services.AccountError as exc:
            error = str(exc)
        else:
            update_session_auth_hash(request, user)
            messages.success(request, "Your password is changed.")
            return HttpResponseRedirect(reverse("home"))
    status = 422 if request.method == "POST" else 200
    return render(request, "accounts/password_change.html", {"form": form, "error": error}, status=status)


@login_required
def esig_acknowledge(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    if request.method == "POST":
        if request.POST.get("agree") != "yes":
            return render(
                request,
                "accounts/esig_acknowledge.html",
                {"error": "Tick the statement to acknowledge it."},
                status=422,
            )
        services.esig_acknowledge(user=user, actor=_actor(request))
        messages.success(request, "Acknowledged. Your electronic signature is enabled.")
        target = request.POST.get("next", "")
        if not url_has_allowed_host_and_scheme(
            target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        ):
            target = reverse("home")
        return HttpResponseRedirect(target)
    return render(request, "accounts/esig_acknowledge.html", {"next": request.GET.get("next", "")})


# --- administrators: users ---------------------------------------------------


@login_required
def users(request: HttpRequest) -> HttpResponse:
    require(request.user, "accounts.manage_users")
    everyone = User.objects.prefetch_related("groups").order_by("username")
    waiting = ChangeRequest.objects.filter(kind=grants.ROLE_GRANT, state=RequestState.REQUESTED)
    return render(
        request,
        "accounts/users.html",
        {
            "users": everyone,
            "waiting_grants": {int(pk) for pk in waiting.values_list("subject_id", flat=True)},
            "open_credentials": set(
                Enrolment.objects.filter(redeemed_at__isnull=True, void_at__isnull=True).values_list(
                    "user_id", flat=True
                )
            ),
        },
    )


@login_required
def user_new(request: HttpRequest) -> HttpResponse:
    require(request.user, "accounts.manage_users")
    form = UserCreateForm(request.POST or None)
    error = ""
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            signer = None
            if grants.gmp_roles_added([], data["roles"]):
                # A GMP signing role is requested, never granted, by the administrator (signed "requested").
                signer = signer_authenticate(
                    request=request,
                    username=request.POST.get("signer_username"),
                    password=request.POST.get("signer_password", ""),
                    meaning=Meaning.REQUESTED,
                )
            user, issued = services.user_create(actor=_actor(request), signer=signer, **data)
        except (services.AccountError, SignatureRefused, ReasonRequired) as exc:
            error = str(exc)
        else:
            if signer is not None:
                signing_session_open(signer)
            return _credential_page(request, user, services.credential_deliver(issued))
    return render(
        request,
        "accounts/user_new.html",
        {
            "form": form,
            "error": error,
            "mail_relay": mail_relay_configured(),
            "username_required": username_required(request),
        },
        status=422 if error or form.errors else 200,
    )


def _credential_page(request: HttpRequest, target: User, issued: Issued) -> HttpResponse:
    return render(
        request,
        "accounts/credential.html",
        {"target": target, "issued": issued, "role_request": grants.open_grant(target)},
    )


def _user_page(request: HttpRequest, target: User, *, status: int = 200, **extra: Any) -> HttpResponse:
    changes = RoleChange.objects.filter(user=target).select_related(
        "changed_by", "change_request", "change_request__decided_by"
    )
    sigs: dict[str, list[Signature]] = {}
    for s in Signature.objects.filter(
        record_type="accounts.rolechange", record_id__in=[str(c.pk) for c in changes]
    ):
        sigs.setdefault(s.record_id, []).append(s)
    history = [
        {
            "change": c,
            "signatures": [
                {"signature": s, "intact": signature_intact(s, c.signed_content())}
                for s in sigs.get(str(c.pk), [])
            ],
        }
        for c in changes
    ]
    context = {
        "target": target,
        "history": history,
        "requests": _requests_with_signatures(
            ChangeRequest.objects.filter(
                kind=grants.ROLE_GRANT, subject_type="accounts.user", subject_id=str(target.pk)
            ).select_related("decided_by")
        ),
        "grant": grants.open_grant(target),
        "enrolment": open_enrolment(target),
        "tokens": ApiToken.objects.filter(user=target),
        "mail_relay": mail_relay_configured(),
        "roles_form": extra.pop("roles_form", None) or RolesForm(initial={"roles": target.role_names}),
        "locked": is_locked(target),
        "username_required": username_required(request),
        "meaning": "",
        "meaning_label": "Requested (a GMP signing role then waits for a QA approver) or Approved (any other change)",
        **extra,
    }
    return render(request, "accounts/user_detail.html", context, status=status)


@login_required
def user_detail(request: HttpRequest, pk: int) -> HttpResponse:
    require(request.user, "accounts.manage_users")
    return _user_page(request, get_object_or_404(User, pk=pk))


@login_required
@require_POST
def user_roles(request: HttpRequest, pk: int) -> HttpResponse:
    """Change roles under the administrator's signature (meaning: approved)."""
    require(request.user, "accounts.manage_users")
    target = get_object_or_404(User, pk=pk)
    form = RolesForm(request.POST)
    if not form.is_valid():
        return _user_page(request, target, status=422, roles_form=form)
    try:
        signer = signer_authenticate(
            request=request,
            username=request.POST.get("signer_username"),
            password=request.POST.get("signer_password", ""),
            meaning=grants.signing_meaning(target, form.cleaned_data["roles"]),
        )
        change = services.user_set_roles(
            actor=_actor(request),
            user=target,
            roles=form.cleaned_data["roles"],
            reason=form.cleaned_data["reason"],
            signer=signer,
        )
    except (SignatureRefused, services.AccountError, ReasonRequired) as exc:
        return _user_page(request, target, status=422, roles_form=form, sign_error=str(exc))
    signing_session_open(signer)
    if isinstance(change, ChangeRequest):
        messages.success(request, f"{change.number} signed: it takes effect when a QA approver approves it.")
    else:
        messages.success(request, f"Roles of {target.username} changed and signed.")
    return _redirect(request, reverse("user_detail", args=[target.pk]))


def _redirect(request: HttpRequest, url: str) -> HttpResponse:
    if getattr(request, "htmx", False):
        response = HttpResponse(status=204)
        response["HX-Redirect"] = url
        return response
    return HttpResponseRedirect(url)


def _reason_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    require(request.user, "accounts.manage_users")
    target = get_object_or_404(User, pk=pk)
    form = ReasonForm(request.POST)
    if not form.is_valid():
        return _user_page(request, target, status=422, action_error=f"{action}: give a reason.")
    actor, reason = _actor(request), form.cleaned_data["reason"]
    try:
        if action == "deactivate":
            services.user_deactivate(actor=actor, user=target, reason=reason)
            messages.success(request, f"{target.username} is deactivated. The account and its records stay.")
        elif action == "reactivate":
            _, issued = services.user_reactivate(actor=actor, user=target, reason=reason)
            return _credential_page(request, target, services.credential_deliver(issued))
        elif action == "reset":
            issued = services.user_reset_password(actor=actor, user=target, reason=reason)
            return _credential_page(request, target, services.credential_deliver(issued))
        elif action == "unlock":
            services.user_unlock(actor=actor, user=target, reason=reason)
            messages.success(request, f"{target.username} is unlocked.")
    except (services.AccountError, ReasonRequired) as exc:
        return _user_page(request, target, status=422, action_error=str(exc))
    return HttpResponseRedirect(reverse("user_detail", args=[target.pk]))


@login_required
@require_POST
def user_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    if action not in {"deactivate", "reactivate", "reset", "unlock"}:
        raise PermissionDenied("Unknown action.")
    return _reason_action(request, pk, action)


def _requests_with_signatures(requests: Any) -> list[dict[str, Any]]:
    requests = list(requests)
    sigs: dict[str, list[Signature]] = {}
    for sig in Signature.objects.filter(
        record_type="approvals.changerequest", record_id__in=[str(r.pk) for r in requests]
    ).order_by("signed_at", "id"):
        sigs.setdefault(sig.record_id, []).append(sig)
    return [
        {
            "request": r,
            "pk_str": str(r.pk),
            "signatures": [
                {"signature": sig, "intact": signature_intact(sig, r.signed_content())}
                for sig in sigs.get(str(r.pk), [])
            ],
        }
        for r in requests
    ]


@login_required
def role_requests(request: HttpRequest, *, status: int = 200, sign_error: str = "") -> HttpResponse:
    """The open requests for GMP signing authority, for QA approvers to decide (and administrators to see)."""
    user = request.user
    can_decide = user.has_perm(APPROVE_PERMISSION)
    if not (can_decide or user.has_perm("accounts.manage_users")):
        require(user, APPROVE_PERMISSION)
    open_requests = ChangeRequest.objects.filter(kind=grants.ROLE_GRANT, state=RequestState.REQUESTED)
    return render(
        request,
        "accounts/role_requests.html",
        {
            "requests": _requests_with_signatures(open_requests.order_by("requested_at", "id")),
            "can_decide": can_decide,
            "username_required": username_required(request),
            "sign_error": sign_error,
        },
        status=status,
    )


@login_required
@require_POST
def role_request_decide(request: HttpRequest, pk: int, decision: str) -> HttpResponse:
    """A QA approver approves (the roles take effect) or rejects a grant, with their signature."""
    require(request.user, APPROVE_PERMISSION)
    change = get_object_or_404(ChangeRequest, pk=pk, kind=grants.ROLE_GRANT)
    if decision not in {"approve", "reject"}:
        raise PermissionDenied("Unknown decision.")
    comment = request.POST.get("signer_comment", "")
    try:
        signer = signer_authenticate(
            request=request,
            username=request.POST.get("signer_username"),
            password=request.POST.get("signer_password", ""),
            meaning=Meaning.APPROVED if decision == "approve" else Meaning.REJECTED,
        )
        if decision == "approve":
            change_approve(actor=_actor(request), signer=signer, request=change, comment=comment)
        else:
            change_reject(actor=_actor(request), signer=signer, request=change, comment=comment)
    except (SignatureRefused, ChangeRefused, ReasonRequired) as exc:
        return role_requests(request, status=422, sign_error=f"{change.number}: {exc}")
    signing_session_open(signer)
    messages.success(
        request,
        f"{change.number} approved: the roles are in effect."
        if decision == "approve"
        else f"{change.number} rejected.",
    )
    return HttpResponseRedirect(reverse("role_requests"))


@login_required
@require_POST
def address_unlock(request: HttpRequest) -> HttpResponse:
    """Lift the block of a station's address, with a reason (audited)."""
    require(request.user, "accounts.manage_users")
    ip = request.POST.get("ip", "")
    try:
        lockout.address_unlock(actor=_actor(request), ip_address=ip, reason=request.POST.get("reason", ""))
    except (ReasonRequired, services.AccountError) as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Station {ip} is unblocked.")
    return HttpResponseRedirect(reverse("security"))


@login_required
@require_POST
def security_alert_acknowledge(request: HttpRequest, pk: int) -> HttpResponse:
    """A security administrator or auditor says what was done about an alert (audited)."""
    require(request.user, "accounts.view_security_events")
    alert = get_object_or_404(SecurityAlert, pk=pk)
    try:
        alerts.security_alert_acknowledge(
            actor=_actor(request),
            user=current_user(request),
            alert=alert,
            comment=request.POST.get("comment", ""),
        )
    except ReasonRequired as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Alert acknowledged.")
    return HttpResponseRedirect(reverse("security"))


# --- anyone at a station: redeeming a credential -------------------------------


def enrol(request: HttpRequest) -> HttpResponse:
    """Redeem a mailed code, or an enrolment code with a second person's identity check (P11-16)."""
    error = ""
    values: dict[str, str] = {}
    if request.method == "POST":
        post = request.POST
        values = {k: post.get(k, "") for k in ("username", "identity_check", "verifier_username")}
        if request.user.is_authenticated:
            error = "Someone is logged in at this station: log out first."
        elif post.get("new_password", "") != post.get("new_password_again", ""):
            error = "The two passwords differ."
        else:
            try:
                user = enrolment_redeem(
                    request=request,
                    username=post.get("username", ""),
                    code=post.get("code", ""),
                    new_password=post.get("new_password", ""),
                    verifier_username=post.get("verifier_username", ""),
                    verifier_password=post.get("verifier_password", ""),
                    identity_check=post.get("identity_check", ""),
                )
            except EnrolmentRefused as exc:
                error = str(exc)
            else:
                messages.success(request, f"Your password is set, {user.printed_name}. Log in with it.")
                return HttpResponseRedirect(reverse("login"))
    return render(
        request,
        "accounts/enrol.html",
        {"error": error, "values": values, "logged_in": request.user.is_authenticated},
        status=422 if error else 200,
    )


# --- everyone: personal API tokens --------------------------------------------


@login_required
def tokens(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    form = TokenForm(request.POST or None)
    raw = ""
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        _, raw = services.token_create(
            actor=_actor(request),
            user=user,
            name=data["name"],
            scope=data["scope"],
            expires_at=timezone.now() + dt.timedelta(days=data["days"]),
        )
        form = TokenForm()
    mine = ApiToken.objects.filter(user=user)
    return render(request, "accounts/tokens.html", {"form": form, "tokens": mine, "raw": raw})


@login_required
@require_POST
def token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    token = get_object_or_404(ApiToken, pk=pk)
    if token.user_id != request.user.pk and not request.user.has_perm("accounts.manage_users"):
        raise PermissionDenied("You can revoke only your own tokens.")
    try:
        services.token_revoke(actor=_actor(request), token=token, reason=request.POST.get("reason", ""))
    except services.AccountError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Token {token.name} revoked.")
    if token.user_id != request.user.pk:
        return HttpResponseRedirect(reverse("user_detail", args=[token.user_id]))
    return HttpResponseRedirect(reverse("tokens"))
