"""The Validation page: the packages ``batchline validate`` built, and their two signatures.

Who may read a package (``validation.view_package``) sees each with what it
found; its validation lead signs it (*reviewed*), then a QA approver approves
it (*approved*), in the signing dialog; the archive itself downloads for filing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.contrib import messages
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from batchline.audit.services import Actor
from batchline.signatures.models import Meaning
from batchline.signatures.services import (
    SignatureRefused,
    signature_intact,
    signing_session_open,
    username_required,
)
from batchline.validation.models import ValidationPackage
from batchline.validation.services import (
    PackageRefused,
    next_meaning,
    package_sign,
    signatures_by_package,
    signatures_of,
)

from .access import require, signer_posted

VIEW = "validation.view_package"
LABELS: dict[str, str] = {
    Meaning.REVIEWED: "Reviewed by the validation lead",
    Meaning.APPROVED: "Approved by QA",
}


def _view(package: ValidationPackage, user: Any, signatures: list[Any]) -> dict[str, Any]:
    content = package.signed_content()
    meaning = next_meaning(package, signatures)
    may = meaning is not None and (
        (meaning == Meaning.REVIEWED and user.has_perm("validation.lead_validation"))
        or (meaning == Meaning.APPROVED and user.has_perm("approvals.approve_change"))
    )
    return {
        "p": package,
        "signatures": [
            {
                "s": s,
                "label": LABELS.get(s.meaning, s.get_meaning_display()),
                "intact": signature_intact(s, content),
            }
            for s in signatures
        ],
        "next_meaning": meaning,
        "next_label": LABELS.get(meaning, "") if meaning else "",
        "may_sign": may,
        "state": "approved"
        if meaning is None
        else (
            "waiting for QA approval" if meaning == Meaning.APPROVED else "waiting for its validation lead"
        ),
        "archive_present": Path(package.path).is_file(),
    }


def validation(request: HttpRequest) -> HttpResponse:
    require(request.user, VIEW)
    found = list(ValidationPackage.objects.all()[:100])
    signed = signatures_by_package(found)
    packages = [_view(p, request.user, signed[p.pk]) for p in found]
    return render(request, "web/validation.html", {"packages": packages})


def _detail(request: HttpRequest, pk: int, **extra: Any) -> HttpResponse:
    package = get_object_or_404(ValidationPackage, pk=pk)
    context = {
        "v": _view(package, request.user, signatures_of(package)),
        "username_required": username_required(request),
        **extra,
    }
    return render(request, "web/validation_package.html", context, status=extra.get("status", 200))


def validation_package(request: HttpRequest, pk: int) -> HttpResponse:
    require(request.user, VIEW)
    return _detail(request, pk)


@require_POST
def validation_sign(request: HttpRequest, pk: int) -> HttpResponse:
    require(request.user, VIEW)
    package = get_object_or_404(ValidationPackage, pk=pk)
    meaning = next_meaning(package) or Meaning.APPROVED
    try:
        signer = signer_posted(request, meaning)
        package_sign(
            actor=Actor.of(request.user, via="web"),
            signer=signer,
            package=package,
            comment=request.POST.get("signer_comment", ""),
        )
    except (PackageRefused, SignatureRefused) as exc:
        return _detail(
            request,
            pk,
            status=422,
            open_dialog="sign-package",
            dialog_messages=[str(exc)],
            kept={
                "signer_username": request.POST.get("signer_username", ""),
                "signer_comment": request.POST.get("signer_comment", ""),
            },
        )
    signing_session_open(signer)
    messages.success(request, f"{package.file_name}: {LABELS[meaning].lower()}, signed.")
    return HttpResponseRedirect(reverse("validation_package", args=[pk]))


def validation_download(request: HttpRequest, pk: int) -> FileResponse:
    require(request.user, VIEW)
    package = get_object_or_404(ValidationPackage, pk=pk)
    path = Path(package.path)
    if not path.is_file():
        raise Http404(f"The archive {package.file_name} is not where it was built ({path}).")
    return FileResponse(path.open("rb"), as_attachment=True, filename=package.file_name)
