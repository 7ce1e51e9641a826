"""Importing master data on a page: a file, its preview line by line, then one signed request for QA.

Thin over ``masterdata.imports``, as the API is. The preview is made from the
file on the server and shown; the file's text travels back with the form so
that "Sign and import" sends exactly what was previewed, and the import makes
the preview again from it (never trusting the page's).
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from batchline.approvals import services as approvals
from batchline.approvals.models import ChangeRequest, RequestState
from batchline.audit.services import Actor, ReasonRequired
from batchline.masterdata.definitions import KINDS
from batchline.masterdata.imports import (
    FORMATS,
    IMPORT_KIND,
    MAX_BYTES,
    ImportRefused,
    import_preview,
    import_request,
)
from batchline.masterdata.services import PERMISSION
from batchline.signatures.models import Meaning
from batchline.signatures.services import (
    SignatureRefused,
    VerifiedSigner,
    signing_session_open,
    username_required,
)

from .access import require, signer_posted

APPROVE = "approvals.approve_change"


def _signer(request: HttpRequest, meaning: str) -> VerifiedSigner:
    return signer_posted(request, meaning)


def open_imports() -> list[dict[str, Any]]:
    """Import requests waiting for a QA approver, oldest first, as the changes page shows them."""
    out = []
    for change in (
        ChangeRequest.objects.filter(kind=IMPORT_KIND, state=RequestState.REQUESTED)
        .select_related("requested_by")
        .order_by("requested_at", "id")
    ):
        head, *lines = change.summary.split("\n")
        out.append(
            {
                "id": change.pk,
                "number": change.number,
                "head": head,
                "lines": lines,
                "reason": change.reason,
                "requested_by": change.requested_by.printed_name,
                "requested_at": change.requested_at,
                "approve_dialog": f"approve-import-{change.pk}",
                "reject_dialog": f"reject-import-{change.pk}",
            }
        )
    return out


def _page(request: HttpRequest, *, status: int = 200, **extra: Any) -> HttpResponse:
    require(request.user, PERMISSION)
    post = request.POST if request.method == "POST" else {}
    context = {
        "kinds": [(k.name, k.plural) for k in KINDS.values()],
        "formats": FORMATS,
        "kind": post.get("kind", "material"),
        "format": post.get("format", "csv"),
        "reason": post.get("reason", ""),
        "username_required": username_required(request),
        "max_mb": MAX_BYTES // 1048576,
        **extra,
    }
    return render(request, "masterdata/import.html", context, status=status)


@login_required
def master_import(request: HttpRequest) -> HttpResponse:
    return _page(request)


def _file(request: HttpRequest) -> tuple[str, str]:
    """The file's name and text: a new upload, or the text previewed a moment ago."""
    upload = request.FILES.get("file")
    if upload is not None:
        if (upload.size or 0) > MAX_BYTES:
            raise ImportRefused(f"The file is larger than {MAX_BYTES // 1048576} MB: split it.")
        try:
            return upload.name or "upload", upload.read().decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ImportRefused(f"{upload.name} is not UTF-8 text: save it as UTF-8 and try again.") from None
    text = request.POST.get("text", "")
    if not text:
        raise ImportRefused("Choose the file to import.")
    return request.POST.get("file_name", "upload")[:200], text


@login_required
@require_POST
def master_import_post(request: HttpRequest) -> HttpResponse:
    """Preview (writes nothing), or import what was previewed: one signed request for QA."""
    require(request.user, PERMISSION)
    post = request.POST
    kind = post.get("kind") if post.get("format", "csv") == "csv" else None
    try:
        file_name, text = _file(request)
        # "Preview" is a submit button; the hidden action of a previewed form says "import".
        if "preview" in post.getlist("action") or "import" not in post.getlist("action"):
            preview = import_preview(data=text, file_name=file_name, format=post.get("format", ""), kind=kind)
            return _page(request, preview=preview, text=text, file_name=file_name)
        signer = _signer(request, Meaning.REQUESTED)
        done = import_request(
            actor=Actor.of(request.user, via="web"),
            signer=signer,
            data=text,
            file_name=file_name,
            format=post.get("format", ""),
            kind=kind,
            reason=post.get("reason", ""),
            comment=post.get("signer_comment", ""),
        )
    except ImportRefused as exc:
        return _page(request, status=422, refusal=[str(exc)], preview=exc.preview, **_kept(post))
    except (approvals.ChangeRefused, SignatureRefused, ReasonRequired) as exc:
        return _page(request, status=422, refusal=[str(exc)], open_dialog="sign-import", **_kept(post))
    signing_session_open(signer)
    said = [f"{len(done.applied)} descriptive changes in force now"] if done.applied else []
    if done.request is not None:
        said.append(
            f"{done.request.number} requested: a QA approver approves the rest before it takes effect"
        )
    messages.success(request, f"{file_name} imported: " + "; ".join(said) + ".")
    return HttpResponseRedirect(reverse("master_changes"))


def _kept(post: Any) -> dict[str, Any]:
    return {"text": post.get("text", ""), "file_name": post.get("file_name", "")}


@login_required
@require_POST
def master_import_decide(request: HttpRequest, pk: int, decision: str) -> HttpResponse:
    """A QA approver approves an import (every line applied in one transaction) or rejects it."""
    from .masterdata_views import decide_on_changes_page

    require(request.user, APPROVE)
    change = get_object_or_404(ChangeRequest, pk=pk, kind=IMPORT_KIND)
    return decide_on_changes_page(
        request, change, decision, dialog="import", approved="approved: every line is in force."
    )
