"""The audit trail page and its CSV export, for auditors and QA (Annex 11 §9)."""

from __future__ import annotations

import csv
import datetime as dt
import re
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone

from batchline.audit.selectors import AuditFilter, audit_entries, changes_of, csv_rows, record_types

from .access import require


def _date(value: str | None) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value) if value else None
    except ValueError:
        return None


def _filter(request: HttpRequest) -> AuditFilter:
    g = request.GET
    return AuditFilter(
        record_type=g.get("record_type", "").strip()[:80],
        record_id=g.get("record_id", "").strip()[:64],
        user=g.get("user", "").strip()[:150],
        action=g.get("action", "").strip()[:40],
        since=_date(g.get("since")),
        until=_date(g.get("until")),
    )


@login_required
def audit_trail(request: HttpRequest) -> HttpResponse:
    require(request.user, "accounts.view_audit_trail")
    f = _filter(request)
    page = Paginator(audit_entries(f), 100).get_page(request.GET.get("page"))
    rows = [{"entry": e, "changes": changes_of(e)} for e in page.object_list]
    query = request.GET.copy()
    query.pop("page", None)
    context: dict[str, Any] = {
        "page": page,
        "rows": rows,
        "filter": f,
        "record_types": record_types(),
        "query": query.urlencode(),
    }
    template = "audit/_entries.html" if getattr(request, "htmx", False) else "audit/trail.html"
    return render(request, template, context)


class _Echo:
    def write(self, value: str) -> str:
        return value


def _file_name(f: AuditFilter, stamp: str) -> str:
    """``batchline-audit-20261207T101500Z-user-olga-action-update.csv``: the filter in the name too."""
    words = "-".join(f"{what.split()[0]}-{value}" for what, value in f.terms())
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", words)[:120]
    return f"batchline-audit-{stamp}{'-' if safe else ''}{safe}.csv"


@login_required
def audit_csv(request: HttpRequest) -> StreamingHttpResponse:
    """Exactly the entries the page's filter selects, every page of them (Annex 11 §9: intelligible,
    exportable); the file's first lines name the filter, the count, who exported it and when."""
    require(request.user, "accounts.view_audit_trail")
    f = _filter(request)
    entries = audit_entries(f)
    now = timezone.now()
    user = request.user
    preamble = [
        ["# Batchline audit trail export"],
        ["# filter", f.text()],
        ["# entries", str(entries.count())],
        ["# exported", f"{now.astimezone(dt.UTC).isoformat()} by {user.printed_name} ({user.username})"],  # type: ignore[union-attr]
    ]
    writer = csv.writer(_Echo())
    rows = (writer.writerow(row) for row in csv_rows(entries, preamble=preamble))
    response = StreamingHttpResponse(rows, content_type="text/csv; charset=utf-8")
    name = _file_name(f, now.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ"))
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
