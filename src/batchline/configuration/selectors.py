"""The GMP configuration in force: :func:`current`.

Every process reads the newest version's number on each use (one indexed
statement; once per request inside a request), so an approved change takes
effect everywhere at the next action, with no restart and no cache to expire.
The parsed values of each version are kept per process: a version never
changes once written.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import connection

from batchline.rules.numbers import Notation

from .definitions import GmpConfig, config_from
from .models import ConfigVersion

_PARSED: dict[tuple[int, str], GmpConfig] = {}
# Set for the length of one request by ConfigurationMiddleware: the version read first is the
# version the whole request acts under.
_REQUEST: ContextVar[dict[str, GmpConfig] | None] = ContextVar("batchline_config_request", default=None)


def current() -> GmpConfig:
    memo = _REQUEST.get()
    if memo is not None and "config" in memo:
        return memo["config"]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT number, effective_at FROM configuration_configversion ORDER BY number DESC LIMIT 1"
        )
        row = cursor.fetchone()
    if row is None:
        raise ImproperlyConfigured(
            "No GMP configuration version: run 'batchline migrate' (it seeds the first)."
        )
    # Keyed by the time as well as the number: a database restored under a running process
    # (or a test's rolled-back version) may hold another version N.
    key = (row[0], str(row[1]))
    config = _PARSED.get(key)
    if config is None:
        version = ConfigVersion.objects.get(number=row[0])
        config = _PARSED[key] = config_from(version.number, version.values)
    if memo is not None:
        memo["config"] = config
    return config


def notation() -> Notation:
    """How typed numbers are read and numbers shown at this site, by the version in force."""
    return current().notation


def newest_number() -> int:
    """The newest version's number read now, past this request's memo (after an approval in it)."""
    return ConfigVersion.objects.order_by("-number").values_list("number", flat=True).first() or 0


def version_in_force(at: Any) -> int | None:
    """The number of the version that was in force at ``at`` (for the batch record)."""
    return (
        ConfigVersion.objects.filter(effective_at__lte=at)
        .order_by("-number")
        .values_list("number", flat=True)
        .first()
    )


@contextmanager
def one_version() -> Iterator[None]:
    """The version read first in the block is the one the whole block acts under (a request, an action
    called outside one): read once, not at each rule that asks."""
    if _REQUEST.get() is not None:
        yield
        return
    token = _REQUEST.set({})
    try:
        yield
    finally:
        _REQUEST.reset(token)


class ConfigurationMiddleware:
    """One configuration version per request: the first read is reused for the rest of it."""

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: Any) -> Any:
        token = _REQUEST.set({})
        try:
            return self.get_response(request)
        finally:
            _REQUEST.reset(token)


# --- what the configuration page and the API show -----------------------------------------------

VIEW_PERMISSIONS = ("configuration.request_change", "approvals.approve_change", "accounts.view_audit_trail")


def may_view(user: Any) -> bool:
    """Administrators (who request), QA approvers (who approve) and readers of the audit trail."""
    return bool(user and user.is_authenticated and any(user.has_perm(p) for p in VIEW_PERMISSIONS))


def _signatures_of(request_ids: list[int]) -> dict[str, list[dict[str, Any]]]:
    from batchline.signatures.models import Signature

    out: dict[str, list[dict[str, Any]]] = {}
    for sig in Signature.objects.filter(
        record_type="approvals.changerequest", record_id__in=[str(i) for i in request_ids]
    ).order_by("signed_at", "id"):
        out.setdefault(sig.record_id, []).append(
            {
                "meaning": sig.meaning,
                "username": sig.signer_username,
                "name": sig.signer_name,
                "signed_at": sig.signed_at,
                "comment": sig.comment,
                "manifestation": sig.manifestation(),
            }
        )
    return out


def _changes(before: dict[str, Any] | None, after: dict[str, Any]) -> list[dict[str, Any]]:
    from .definitions import SETTINGS, show

    if before is None:
        return []
    return [
        {"setting": name, "label": s.label, "old": show(before.get(name)), "new": show(after.get(name))}
        for name, s in SETTINGS.items()
        if before.get(name) != after.get(name)
    ]


def versions_history() -> list[dict[str, Any]]:
    """Every version, newest first: its changes (old → new), reason, who requested and who approved."""
    versions = list(
        ConfigVersion.objects.select_related(
            "change_request__requested_by", "change_request__decided_by"
        ).order_by("number")
    )
    sigs = _signatures_of([v.change_request_id for v in versions if v.change_request_id])
    out: list[dict[str, Any]] = []
    previous: dict[str, Any] | None = None
    for v in versions:
        values = config_from(v.number, v.values).values()
        cr = v.change_request
        out.append(
            {
                "number": v.number,
                "effective_at": v.effective_at,
                "reason": v.reason,
                "changes": _changes(previous, values),
                "change_request": cr.number if cr else None,
                "requested_by": cr.requested_by.printed_name if cr else None,
                "requested_by_username": cr.requested_by.username if cr else None,
                "approved_by": cr.decided_by.printed_name if cr and cr.decided_by else None,
                "approved_by_username": cr.decided_by.username if cr and cr.decided_by else None,
                "signatures": sigs.get(str(cr.pk), []) if cr else [],
            }
        )
        previous = values
    return out[::-1]


def requests_pending() -> list[dict[str, Any]]:
    """Configuration changes waiting for a QA approver, oldest first, each with its old → new values."""
    from batchline.approvals.models import ChangeRequest, RequestState

    requests = list(
        ChangeRequest.objects.filter(kind="configuration", state=RequestState.REQUESTED)
        .select_related("requested_by")
        .order_by("requested_at", "id")
    )
    sigs = _signatures_of([r.pk for r in requests])
    return [
        {
            "request": r,
            "id": r.pk,
            "number": r.number,
            "summary": r.summary,
            "reason": r.reason,
            "requested_by": r.requested_by.printed_name,
            "requested_by_username": r.requested_by.username,
            "requested_at": r.requested_at,
            "from_version": r.before.get("version"),
            "changes": _changes(r.before.get("values", {}), r.payload.get("values", {})),
            "signatures": sigs.get(str(r.pk), []),
        }
        for r in requests
    ]


def settings_table(config: GmpConfig) -> list[dict[str, Any]]:
    """Each setting of a version with its label, help and value (as stored, and in words)."""
    from .definitions import SETTINGS, show

    values = config.values()
    return [
        {
            "name": name,
            "label": s.label,
            "help": s.help,
            "value": values[name],
            "shown": show(values[name]),
            "choices": s.choices,
        }
        for name, s in SETTINGS.items()
    ]
