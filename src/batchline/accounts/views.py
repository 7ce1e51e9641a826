"""Pages for logging in, passwords, the e-signature statement, users and tokens.

Views parse, check access, call one service and render or redirect; the
decisions live in the services.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from batchline.audit.services import Actor, ReasonRequired
from batchline.signatures.models import Meaning, Signature
from batchline.signatures.services import (
    SignatureRefused,
    signature_intact,
    signer_authenticate,
    signing_session_open,
    username_required,
)
from batchline.web.access import require

from . import services
from .forms import PasswordChangeForm, ReasonForm, RolesForm, TokenForm, UserCreateForm
from .models import ApiToken, RoleChange, User
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
    return render(request, "accounts/users.html", {"users": everyone})


@login_required
def user_new(request: HttpRequest) -> HttpResponse:
    require(request.user, "accounts.manage_users")
    form = UserCreateForm(request.POST or None)
    error = ""
    if request.method == "POST" and form.is_valid():
        try:
            user, password = services.user_create(actor=_actor(request), **form.cleaned_data)
        except services.AccountError as exc:
            error = str(exc)
        else:
            return render(request, "accounts/one_time_password.html", {"target": user, "password": password})
    return render(
        request,
        "accounts/user_new.html",
        {"form": form, "error": error},
        status=422 if error or form.errors else 200,
    )


def _user_page(request: HttpRequest, target: User, *, status: int = 200, **extra: Any) -> HttpResponse:
    changes = RoleChange.objects.filter(user=target).select_related("changed_by")
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
        "roles_form": extra.pop("roles_form", None) or RolesForm(initial={"roles": target.role_names}),
        "locked": is_locked(target),
        "username_required": username_required(request),
        "meaning": Meaning.APPROVED.value,
        "meaning_label": Meaning.APPROVED.label,
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
            meaning=Meaning.APPROVED,
        )
        services.user_set_roles(
            actor=_actor(request),
            user=target,
            roles=form.cleaned_data["roles"],
            reason=form.cleaned_data["reason"],
            signer=signer,
        )
    except (SignatureRefused, services.AccountError, ReasonRequired) as exc:
        return _user_page(request, target, status=422, roles_form=form, sign_error=str(exc))
    signing_session_open(signer)
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
            _, password = services.user_reactivate(actor=actor, user=target, reason=reason)
            return render(
                request, "accounts/one_time_password.html", {"target": target, "password": password}
            )
        elif action == "reset":
            password = services.user_reset_password(actor=actor, user=target, reason=reason)
            return render(
                request, "accounts/one_time_password.html", {"target": target, "password": password}
            )
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


# --- everyone: personal API tokens --------------------------------------------


@login_required
def tokens(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    form = TokenForm(request.POST or None)
    raw = ""
    if request.method == "POST" and form.is_valid():
        _, raw = services.token_create(actor=_actor(request), user=user, name=form.cleaned_data["name"])
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
    return HttpResponseRedirect(reverse("tokens"))
