"""Permission checks for pages and the API: the server decides, for every client."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Permission
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

from batchline.accounts.models import User
from batchline.signatures.services import VerifiedSigner, signer_authenticate


def current_user(request: HttpRequest) -> User:
    """The authenticated person behind a request (views are behind login, the API behind auth)."""
    user = request.user
    if not isinstance(user, User) or not user.is_authenticated:
        raise PermissionDenied("Log in first.")
    return user


def require(user: Any, permission: str) -> None:
    if not (user and user.is_authenticated and user.is_active and user.has_perm(permission)):
        app_label, codename = permission.split(".")
        name = (
            Permission.objects.filter(content_type__app_label=app_label, codename=codename)
            .values_list("name", flat=True)
            .first()
        )
        raise PermissionDenied(f"Your roles do not allow this: {name or permission} ({permission}).")


def record_id(value: Any) -> int:
    """A record's id chosen in a form; 0 (no such record) for anything that is not one ("abc", 30 digits)."""
    text = str(value or "").strip()
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 18 else 0


def signer_posted(request: HttpRequest, meaning: str) -> VerifiedSigner:
    """The signer of a page's signing dialog (signatures/_dialog.html): its user ID, if asked, and password."""
    return signer_authenticate(
        request=request,
        username=(request.POST.get("signer_username") or "").strip() or None,
        password=request.POST.get("signer_password", ""),
        meaning=meaning,
    )
