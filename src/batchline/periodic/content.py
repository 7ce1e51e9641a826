"""What a periodic report holds, read from the records themselves (selectors: read only).

:func:`access_review_content` (21 CFR 11.300(b); Annex 11 §12): every account,
its roles, whether it can sign, how its identity was checked, its last login
and password change, and every change of roles in the period, with who
requested and who approved it. :func:`evaluation_content` (Annex 11 §11): the
period's exceptions by type, deviations, the open CAPA references, the
scheduled verifications and checkpoints of the audit trail, security alerts,
changes of configuration, recipes and master data, backups and restores, and
the access reviews signed. Where Batchline keeps no record of something the
evaluation asks for (incidents, upgrades, restore drills run in a scratch
instance), the report says so instead of inventing it.

Both return plain, canonical data (``rules.canonical.normalise``): the report
stores it as canonical JSON and its SHA-256, which the signature binds.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Iterable
from typing import Any

from django.db.models import Q

import batchline
from batchline.accounts.models import ApiToken, Enrolment, RoleChange, SecurityAlert, User
from batchline.accounts.passwords import password_expired
from batchline.accounts.roles import role_label
from batchline.approvals.models import ChangeRequest, RequestState
from batchline.audit.models import AuditEntry, Checkpoint
from batchline.configuration.definitions import GMP_SIGNING_ROLES, GmpConfig
from batchline.configuration.selectors import versions_history
from batchline.execution.models import BatchException
from batchline.quality.models import Deviation, DeviationState
from batchline.recipes.models import MasterRecipe
from batchline.rules import canonical
from batchline.rules.exceptions import classify

from .models import PeriodicReport, ReportKind, ReportState

ACCESS_FORMAT = "batchline.access-review/1"
EVALUATION_FORMAT = "batchline.periodic-evaluation/1"


def in_period(field: str, since: dt.datetime | None, until: dt.datetime) -> Q:
    """``since`` exclusive (the previous report's end), ``until`` inclusive."""
    q = Q(**{f"{field}__lte": until})
    return q & Q(**{f"{field}__gt": since}) if since is not None else q


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _person(user: Any) -> dict[str, str] | None:
    return {"username": user.username, "name": user.printed_name} if user is not None else None


def _entry_changes(entry: AuditEntry) -> dict[str, Any]:
    return json.loads(entry.changes)


def _previous(kind: str, until: dt.datetime) -> dict[str, Any] | None:
    last = (
        PeriodicReport.objects.filter(kind=kind, state=ReportState.SIGNED, signed_at__lte=until)
        .select_related("signed_by")
        .order_by("-signed_at", "-id")
        .first()
    )
    if last is None:
        return None
    return {
        "number": last.number,
        "period_end": last.period_end,
        "signed_at": last.signed_at,
        "signed_by": _person(last.signed_by),
    }


# --- the access review ---------------------------------------------------------------------------


def _signing(user: User, roles: list[str], *, until: dt.datetime) -> dict[str, Any]:
    """Whether the account can sign GMP records, and if not, every reason in words."""
    blockers = []
    if not user.is_active:
        blockers.append("deactivated")
    if not user.has_usable_password():
        blockers.append("no password yet: the credential issued has not been redeemed")
    elif user.must_change_password:
        blockers.append("must change the password issued before signing")
    elif password_expired(user, now=until):
        blockers.append("password expired")
    if user.esig_acknowledged_at is None:
        blockers.append("e-signature statement not acknowledged")
    signing_roles = [r for r in roles if r in GMP_SIGNING_ROLES]
    return {
        "gmp_signing_roles": signing_roles,
        "enabled": bool(signing_roles) and not blockers,
        "acknowledged_at": user.esig_acknowledged_at,
        "blocked_by": blockers,
    }


def _identity_checks(until: dt.datetime) -> dict[int, dict[str, Any]]:
    """Each account's newest redeemed credential: mailed to the person, or checked by a second person."""
    out: dict[int, dict[str, Any]] = {}
    for e in (
        Enrolment.objects.filter(redeemed_at__isnull=False, redeemed_at__lte=until)
        .select_related("identity_checked_by")
        .order_by("user_id", "redeemed_at", "id")
    ):
        out[e.user_id] = {
            "purpose": e.purpose,
            "delivery": e.delivery,
            "redeemed_at": e.redeemed_at,
            "identity_checked_by": _person(e.identity_checked_by),
            "identity_check": e.identity_check,
        }
    return out


def _password_changes(since: dt.datetime | None, until: dt.datetime) -> Counter[str]:
    """How often each account's password was set in the period, as the audit trail records it."""
    counts: Counter[str] = Counter()
    for record_id, changes in AuditEntry.objects.filter(
        in_period("at", since, until), record_type="accounts.user", changes__contains='"password_changed_at":'
    ).values_list("record_id", "changes"):
        old, new = json.loads(changes)["password_changed_at"]
        if new is not None and new != old:
            counts[record_id] += 1
    return counts


def _role_changes(since: dt.datetime | None, until: dt.datetime) -> tuple[list[Any], list[Any]]:
    """Signed role changes in the period, and changes of roles the audit trail holds without one
    (the first administrator, the first QA approver, set-up): nothing escapes the review."""
    signed = list(
        RoleChange.objects.filter(in_period("changed_at", since, until))
        .select_related("user", "changed_by", "change_request__decided_by")
        .order_by("changed_at", "id")
    )
    rows = []
    seen: Counter[tuple[str, str, str]] = Counter()
    for rc in signed:
        before, after = sorted(rc.roles_before), sorted(rc.roles_after)
        seen[(str(rc.user_id), json.dumps(before), json.dumps(after))] += 1
        cr = rc.change_request
        rows.append(
            {
                "at": rc.changed_at,
                "user": _person(rc.user),
                "before": before,
                "after": after,
                "added": sorted(set(after) - set(before)),
                "removed": sorted(set(before) - set(after)),
                "gmp_signing_added": sorted((set(after) - set(before)) & set(GMP_SIGNING_ROLES)),
                "reason": rc.reason,
                "requested_by": _person(rc.changed_by),
                "change_request": cr.number if cr else None,
                "approved_by": _person(cr.decided_by) if cr else None,
                "approved_at": cr.decided_at if cr else None,
            }
        )
    unsigned = []
    for entry in AuditEntry.objects.filter(
        in_period("at", since, until), record_type="accounts.user", changes__contains='"roles":'
    ).order_by("at", "id"):
        change = _entry_changes(entry).get("roles")
        if not isinstance(change, list) or len(change) != 2:
            continue
        before, after = sorted(change[0] or []), sorted(change[1] or [])
        if before == after:
            continue
        key = (entry.record_id, json.dumps(before), json.dumps(after))
        if seen[key]:
            seen[key] -= 1
            continue
        unsigned.append(
            {
                "at": entry.at,
                "user_id": entry.record_id,
                "before": before,
                "after": after,
                "action": entry.action,
                "by": {"username": entry.actor_username, "name": entry.actor_name},
                "reason": entry.reason,
            }
        )
    return rows, unsigned


def access_review_content(
    *, since: dt.datetime | None, until: dt.datetime, config: GmpConfig
) -> dict[str, Any]:
    """Every account as it stands at ``until`` and every change of roles after ``since``."""
    users = list(User.objects.prefetch_related("groups").order_by("username"))
    usernames = {str(u.pk): u.username for u in users}
    identity = _identity_checks(until)
    passwords = _password_changes(since, until)
    tokens = Counter(
        ApiToken.objects.filter(revoked_at__isnull=True)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=until))
        .values_list("user_id", flat=True)
    )
    idle_after = dt.timedelta(days=config.access_review_interval_days)
    clashes = [tuple(pair) for pair in config.incompatible_roles]
    accounts = []
    findings = []
    for u in users:
        roles = u.role_names
        signing = _signing(u, roles, until=until)
        held_together = [
            f"{role_label(a)} and {role_label(b)}" for a, b in clashes if a in roles and b in roles
        ]
        accounts.append(
            {
                "username": u.username,
                "name": u.printed_name,
                "active": u.is_active,
                "roles": roles,
                "signing": signing,
                "identity": identity.get(u.pk),
                "last_login": u.last_login,
                "password_changed_at": u.password_changed_at,
                "password_changes_in_period": passwords.get(str(u.pk), 0),
                "api_tokens_valid": tokens.get(u.pk, 0),
                "incompatible_roles": held_together,
            }
        )
        who = f"{u.printed_name} ({u.username})"
        if held_together:
            findings.append(f"{who} holds {'; '.join(held_together)} together.")
        if not u.is_active and roles:
            findings.append(f"{who} is deactivated and still holds {', '.join(map(role_label, roles))}.")
        if u.is_active and signing["gmp_signing_roles"]:
            if u.last_login is None:
                findings.append(f"{who} holds GMP signing roles and has never logged in.")
            elif until - u.last_login > idle_after:
                findings.append(
                    f"{who} holds GMP signing roles and has not logged in for "
                    f"{(until - u.last_login).days} days."
                )
    role_changes, unsigned = _role_changes(since, until)
    for row in unsigned:
        row["user"] = usernames.get(row.pop("user_id"), "?")
        findings.append(
            f"The roles of {row['user']} changed ({', '.join(row['before']) or 'none'} → "
            f"{', '.join(row['after']) or 'none'}) by {row['action']} of {row['by']['username']} "
            "without a signed role change."
        )
    waiting = [
        {
            "change_request": r.number,
            "summary": r.summary,
            "requested_by": _person(r.requested_by),
            "requested_at": r.requested_at,
        }
        for r in ChangeRequest.objects.filter(kind="role_grant", state=RequestState.REQUESTED)
        .select_related("requested_by")
        .order_by("requested_at", "id")
    ]
    return canonical.normalise(  # type: ignore[return-value]
        {
            "format": ACCESS_FORMAT,
            "kind": ReportKind.ACCESS_REVIEW.value,
            "period": {"start": since, "end": until},
            "previous": _previous(ReportKind.ACCESS_REVIEW, until),
            "configuration": {
                "version": config.version,
                "incompatible_roles": [list(p) for p in config.incompatible_roles],
                "password_max_age_days": config.password_max_age_days,
                "access_review_interval_days": config.access_review_interval_days,
            },
            "summary": {
                "accounts": len(users),
                "active": sum(1 for u in users if u.is_active),
                "signing_enabled": sum(1 for a in accounts if a["signing"]["enabled"]),
                "role_changes": len(role_changes),
                "role_changes_without_signature": len(unsigned),
                "role_requests_waiting": len(waiting),
            },
            "accounts": accounts,
            "role_changes": role_changes,
            "role_changes_without_signature": unsigned,
            "role_requests_waiting": waiting,
            "findings": findings,
        }
    )


# --- the periodic evaluation ---------------------------------------------------------------------


def _exceptions(since: dt.datetime | None, until: dt.datetime) -> dict[str, Any]:
    rows = BatchException.objects.filter(in_period("at", since, until)).values_list(
        "code", "severity", "disposition__decision"
    )
    by_type: dict[tuple[str, str], Counter[str]] = {}
    severities: Counter[str] = Counter()
    for code, severity, decision in rows:
        t = classify(code)
        counts = by_type.setdefault((t.category, t.kind), Counter())
        counts["count"] += 1
        counts["dispositioned" if decision else "waiting"] += 1
        if decision == "deviation":
            counts["escalated"] += 1
        severities[severity] += 1
    return {
        "total": sum(severities.values()),
        "by_type": [
            {
                "category": category,
                "type": kind,
                "count": c["count"],
                "dispositioned": c["dispositioned"],
                "escalated_to_deviation": c["escalated"],
                "waiting": c["waiting"],
            }
            for (category, kind), c in sorted(by_type.items(), key=lambda kv: (-kv[1]["count"], kv[0]))
        ],
        "by_severity": dict(sorted(severities.items())),
    }


def _deviation(d: Deviation) -> dict[str, Any]:
    return {
        "number": d.number,
        "title": d.title,
        "classification": d.classification,
        "state": d.state,
        "raised_at": d.raised_at,
        "closed_at": d.closed_at,
        "capa": d.capa_reference,
    }


def _deviations(since: dt.datetime | None, until: dt.datetime) -> dict[str, Any]:
    raised = list(Deviation.objects.filter(in_period("raised_at", since, until)).order_by("raised_at", "id"))
    open_now = list(
        Deviation.objects.exclude(state=DeviationState.CLOSED)
        .filter(raised_at__lte=until)
        .order_by("raised_at", "id")
    )
    return {
        "raised": [_deviation(d) for d in raised],
        "by_classification": dict(sorted(Counter(d.classification for d in raised).items())),
        "closed_in_period": Deviation.objects.filter(in_period("closed_at", since, until)).count(),
        "open": [_deviation(d) for d in open_now],
        "capa": {
            "note": (
                "Batchline keeps no CAPA record of its own: a deviation holds the reference of its CAPA in "
                "the quality system. Listed: the deviations not yet closed that name a CAPA, and those "
                "not yet closed that name none; the CAPAs' own state is in the quality system."
            ),
            "open_with_reference": [_deviation(d) for d in open_now if d.capa_reference],
            "open_without_reference": [d.number for d in open_now if not d.capa_reference],
        },
    }


def _verifications(since: dt.datetime | None, until: dt.datetime) -> dict[str, Any]:
    runs = []
    for e in AuditEntry.objects.filter(in_period("at", since, until), action="audit_verify").order_by(
        "at", "id"
    ):
        c = _entry_changes(e)
        runs.append(
            {
                "at": e.at,
                "result": c.get("result", [None, None])[1],
                "findings": c.get("findings", [None, None])[1],
                "entries": c.get("entries", [None, None])[1],
            }
        )
    failed = [r for r in runs if r["result"] != "ok"]
    checkpoints = list(
        Checkpoint.objects.filter(in_period("at", since, until)).order_by("number").values("number", "at")
    )
    recoveries = [
        {"at": e.at, "by": {"username": e.actor_username, "name": e.actor_name}, "reason": e.reason}
        for e in AuditEntry.objects.filter(in_period("at", since, until), action="recovery").order_by("id")
    ]
    return {
        "scheduled_runs": len(runs),
        "runs_ok": len(runs) - len(failed),
        "runs_with_findings": failed,
        "last_run": runs[-1] if runs else None,
        "checkpoints": {
            "count": len(checkpoints),
            "first": checkpoints[0] if checkpoints else None,
            "last": checkpoints[-1] if checkpoints else None,
        },
        "recoveries": recoveries,
    }


def _alerts(since: dt.datetime | None, until: dt.datetime) -> list[dict[str, Any]]:
    return [
        {
            "raised_at": a.raised_at,
            "kind": a.kind,
            "severity": a.severity,
            "message": a.message,
            "acknowledged_at": a.acknowledged_at,
            "acknowledged_by": _person(a.acknowledged_by),
            "acknowledgement": a.acknowledgement,
        }
        for a in SecurityAlert.objects.filter(in_period("raised_at", since, until))
        .select_related("acknowledged_by")
        .order_by("raised_at", "id")
    ]


def _configuration(since: dt.datetime | None, until: dt.datetime) -> list[dict[str, Any]]:
    def inside(at: dt.datetime) -> bool:
        return at <= until and (since is None or at > since)

    return [
        {
            "version": v["number"],
            "effective_at": v["effective_at"],
            "changes": [f"{c['label']}: {c['old']} → {c['new']}" for c in v["changes"]],
            "reason": v["reason"],
            "change_request": v["change_request"],
            "requested_by": v["requested_by_username"],
            "approved_by": v["approved_by_username"],
        }
        for v in reversed(versions_history())
        if inside(v["effective_at"])
    ]


def _recipes(since: dt.datetime | None, until: dt.datetime) -> list[dict[str, Any]]:
    entries = [
        e
        for e in AuditEntry.objects.filter(in_period("at", since, until), record_type="recipes.masterrecipe")
        .filter(Q(action="create") | Q(changes__contains='"status":'))
        .order_by("at", "id")
    ]
    recipes = MasterRecipe.objects.in_bulk([int(e.record_id) for e in entries])
    rows = []
    for e in entries:
        status = _entry_changes(e).get("status", [None, None])
        recipe = recipes.get(int(e.record_id))
        rows.append(
            {
                "at": e.at,
                "recipe": recipe.code if recipe else e.record_id,
                "version": recipe.version if recipe else None,
                "name": recipe.name if recipe else "",
                "event": "created" if e.action == "create" else f"{status[0]} → {status[1]}",
                "by": {"username": e.actor_username, "name": e.actor_name},
                "reason": e.reason,
            }
        )
    return rows


def _change_requests(since: dt.datetime | None, until: dt.datetime) -> list[dict[str, Any]]:
    return [
        {
            "change_request": r.number,
            "kind": r.kind,
            "summary": r.summary,
            "state": r.state,
            "requested_by": _person(r.requested_by),
            "requested_at": r.requested_at,
            "decided_by": _person(r.decided_by),
            "decided_at": r.decided_at,
        }
        for r in ChangeRequest.objects.filter(
            in_period("requested_at", since, until) | in_period("decided_at", since, until)
        )
        .select_related("requested_by", "decided_by")
        .order_by("requested_at", "id")
    ]


def _backups(since: dt.datetime | None, until: dt.datetime) -> dict[str, Any]:
    def rows(action: str) -> Iterable[tuple[AuditEntry, dict[str, Any]]]:
        for e in AuditEntry.objects.filter(in_period("at", since, until), action=action).order_by("at", "id"):
            yield e, _entry_changes(e)

    return {
        "backups": [
            {
                "at": e.at,
                "by": e.actor_username,
                "file": c.get("file", [None, None])[1],
                "sha256": c.get("sha256", [None, None])[1],
                "checkpoint": c.get("checkpoint", [None, None])[1],
            }
            for e, c in rows("backup")
        ],
        "restores": [
            {
                "at": e.at,
                "by": e.actor_username,
                "file": c.get("file", [None, None])[1],
                "verified": c.get("verified", [None, None])[1],
                "differences": c.get("differences", [None, None])[1],
            }
            for e, c in rows("restore")
        ],
        "note": (
            "A restore drill restores a backup into a scratch database: its signed drill report "
            "(batchline restore --report) and its audit entry stay with that scratch instance, not in "
            "this database. Restores listed here are those recorded in this database's own trail; keep "
            "the period's drill reports with this evaluation."
        ),
    }


def _reports(kind: str, since: dt.datetime | None, until: dt.datetime) -> list[dict[str, Any]]:
    return [
        {"number": r.number, "signed_at": r.signed_at, "signed_by": _person(r.signed_by)}
        for r in PeriodicReport.objects.filter(in_period("signed_at", since, until), kind=kind)
        .select_related("signed_by")
        .order_by("signed_at", "id")
    ]


def evaluation_content(*, since: dt.datetime | None, until: dt.datetime, config: GmpConfig) -> dict[str, Any]:
    """The period ``since`` (exclusive) to ``until`` (inclusive) from the records."""
    exceptions = _exceptions(since, until)
    deviations = _deviations(since, until)
    verification = _verifications(since, until)
    alerts = _alerts(since, until)
    backups = _backups(since, until)
    access_reviews = _reports(ReportKind.ACCESS_REVIEW, since, until)
    findings = []
    if verification["runs_with_findings"]:
        runs = len(verification["runs_with_findings"])
        findings.append(f"{_count(runs, 'scheduled verification', 'scheduled verifications')} had findings.")
    if not verification["scheduled_runs"]:
        findings.append(
            "No scheduled verification of the audit trail ran in the period: is the worker running?"
        )
    if not backups["backups"]:
        findings.append("No backup was recorded in the period.")
    if not access_reviews:
        findings.append("No access review was signed in the period.")
    if deviations["capa"]["open_without_reference"]:
        n = len(deviations["capa"]["open_without_reference"])
        findings.append(f"{_count(n, 'open deviation names', 'open deviations name')} no CAPA yet.")
    critical = [a for a in alerts if a["severity"] == "critical"]
    if critical:
        findings.append(
            f"{_count(len(critical), 'critical security alert was', 'critical security alerts were')} raised."
        )
    return canonical.normalise(  # type: ignore[return-value]
        {
            "format": EVALUATION_FORMAT,
            "kind": ReportKind.PERIODIC_EVALUATION.value,
            "period": {"start": since, "end": until},
            "previous": _previous(ReportKind.PERIODIC_EVALUATION, until),
            "software": {
                "version": batchline.__version__,
                "configuration_version": config.version,
                "note": (
                    "Batchline records the version in force when this report was prepared; it keeps no "
                    "history of upgrades. The plant's change control holds that."
                ),
            },
            "exceptions": exceptions,
            "deviations": deviations,
            "audit_trail": verification,
            "security_alerts": alerts,
            "incidents": {
                "note": (
                    "Batchline keeps no incident log (system failures, data errors, interface failures): "
                    "the security alerts above are the incidents it records itself. Incidents recorded "
                    "in the plant's incident or quality system are not in this report."
                )
            },
            "configuration_changes": _configuration(since, until),
            "recipe_changes": _recipes(since, until),
            "change_requests": _change_requests(since, until),
            "backups": backups,
            "access_reviews": access_reviews,
            "findings": findings,
        }
    )
