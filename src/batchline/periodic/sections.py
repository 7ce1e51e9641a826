"""A report's content as sections of labelled values and tables: one reading for the page and the PDF.

Plain Python over the report's stored JSON (never the live records), so the
page, the PDF and a later reader show exactly what was signed. ``when`` prints
a stored time (ISO 8601 UTC) in the site's zone, with its name.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

When = Callable[[str | None], str]


@dataclass
class Section:
    title: str
    key: str  # a stable name: the page's data-testid, the PDF's order
    notes: list[str] = field(default_factory=list)
    fields: list[tuple[str, Any]] = field(default_factory=list)
    head: Sequence[str] = ()
    rows: list[list[Any]] = field(default_factory=list)
    widths: Sequence[float] = ()

    @property
    def has_table(self) -> bool:
        return bool(self.head)


def _who(person: dict[str, Any] | None) -> str:
    return f"{person['name']} ({person['username']})" if person else ""


def _roles(roles: Sequence[str]) -> str:
    return ", ".join(roles) or "none"


def _findings(data: dict[str, Any]) -> Section:
    return Section(
        "What the reviewer should look at",
        "findings",
        notes=list(data["findings"]) or ["Nothing stands out in the records."],
    )


# --- the access review ---------------------------------------------------------------------------


def _signing(a: dict[str, Any]) -> str:
    s = a["signing"]
    if s["enabled"]:
        return f"yes: {_roles(s['gmp_signing_roles'])}"
    if not s["gmp_signing_roles"]:
        return "no GMP signing role"
    return f"no: {'; '.join(s['blocked_by'])}"


def _identity(a: dict[str, Any], when: When) -> str:
    i = a["identity"]
    if not i:
        return "no credential redeemed (set up by an administrator at the console, or before enrolment)"
    if i["identity_checked_by"]:
        return (
            f"checked by {_who(i['identity_checked_by'])} at {when(i['redeemed_at'])}: {i['identity_check']}"
        )
    return f"{i['purpose']}: mailed to the person's own address, redeemed {when(i['redeemed_at'])}"


def access_review_sections(data: dict[str, Any], when: When) -> list[Section]:
    summary = data["summary"]
    config = data["configuration"]
    accounts = Section(
        "Accounts",
        "accounts",
        notes=["Every account there is, active or not: accounts are never deleted."],
        head=(
            "User ID",
            "Name",
            "Active",
            "Roles",
            "Can sign GMP records",
            "Identity",
            "Last login",
            "Password changed",
            "API tokens",
        ),
        widths=(0.08, 0.11, 0.05, 0.12, 0.15, 0.2, 0.1, 0.13, 0.06),
    )
    for a in data["accounts"]:
        accounts.rows.append(
            [
                a["username"],
                a["name"],
                "yes" if a["active"] else "NO (deactivated)",
                _roles(a["roles"])
                + (
                    f" — HELD TOGETHER: {'; '.join(a['incompatible_roles'])}"
                    if a["incompatible_roles"]
                    else ""
                ),
                _signing(a),
                _identity(a, when),
                when(a["last_login"]) or "never",
                (when(a["password_changed_at"]) or "never")
                + f" ({a['password_changes_in_period']} in the period)",
                str(a["api_tokens_valid"]),
            ]
        )
    changes = Section(
        "Changes of roles in the period",
        "role-changes",
        notes=[
            "A GMP signing role takes effect only on a QA approver's signed approval of the administrator's "
            "signed request; a role taken away, and a role without signing authority, under the "
            "administrator's signature."
        ],
        head=("When", "Person", "Roles before → after", "Made or requested by", "Approved by", "Reason"),
        widths=(0.13, 0.15, 0.2, 0.15, 0.19, 0.18),
    )
    for r in data["role_changes"]:
        approved = (
            f"{_who(r['approved_by'])}, {r['change_request']}, {when(r['approved_at'])}"
            if r["change_request"]
            else "at once (nothing granted that needs approval)"
        )
        changes.rows.append(
            [
                when(r["at"]),
                _who(r["user"]),
                f"{_roles(r['before'])} → {_roles(r['after'])}",
                _who(r["requested_by"]),
                approved,
                r["reason"],
            ]
        )
    unsigned = Section(
        "Changes of roles without a signed role change",
        "role-changes-unsigned",
        notes=[
            "What the audit trail holds besides the signed changes: the first administrator "
            "(createsuperuser), the first QA approver (batchline accounts first-approver), set-up."
        ],
        head=("When", "Person", "Roles before → after", "By", "Recorded as", "Reason"),
        widths=(0.13, 0.12, 0.22, 0.15, 0.12, 0.26),
    )
    for r in data["role_changes_without_signature"]:
        unsigned.rows.append(
            [
                when(r["at"]),
                r["user"],
                f"{_roles(r['before'])} → {_roles(r['after'])}",
                _who(r["by"]),
                r["action"],
                r["reason"],
            ]
        )
    waiting = Section(
        "Requests for GMP signing authority still waiting",
        "role-requests",
        head=("Request", "What", "Requested by", "At"),
        widths=(0.12, 0.5, 0.2, 0.18),
        rows=[
            [r["change_request"], r["summary"], _who(r["requested_by"]), when(r["requested_at"])]
            for r in data["role_requests_waiting"]
        ],
    )
    overview = Section(
        "Overview",
        "overview",
        fields=[
            ("Accounts", f"{summary['accounts']} ({summary['active']} active)"),
            ("Can sign GMP records", summary["signing_enabled"]),
            ("Changes of roles in the period", summary["role_changes"]),
            ("… without a signed role change", summary["role_changes_without_signature"]),
            ("Requests waiting", summary["role_requests_waiting"]),
            (
                "GMP configuration",
                f"version {config['version']}: roles kept apart "
                f"{', '.join(':'.join(p) for p in config['incompatible_roles']) or 'none'}; passwords expire "
                f"after {config['password_max_age_days']} days; a review every "
                f"{config['access_review_interval_days']} days",
            ),
        ],
    )
    return [overview, _findings(data), accounts, changes, unsigned, waiting]


# --- the periodic evaluation ---------------------------------------------------------------------


def _deviation_rows(rows: list[dict[str, Any]], when: When) -> list[list[Any]]:
    return [
        [
            d["number"],
            d["title"],
            d["classification"],
            d["state"],
            when(d["raised_at"]),
            when(d["closed_at"]),
            d["capa"],
        ]
        for d in rows
    ]


DEVIATION_HEAD = ("Deviation", "Title", "Class", "State now", "Raised", "Closed", "CAPA")
DEVIATION_WIDTHS = (0.12, 0.3, 0.08, 0.12, 0.14, 0.14, 0.1)


def evaluation_sections(data: dict[str, Any], when: When) -> list[Section]:
    ex = data["exceptions"]
    dev = data["deviations"]
    trail = data["audit_trail"]
    last = trail["last_run"]
    cps = trail["checkpoints"]
    sections = [
        _findings(data),
        Section(
            "Exceptions by type",
            "exceptions",
            notes=[
                f"{ex['total']} exceptions recorded in the period; by severity: "
                + (", ".join(f"{k} {v}" for k, v in ex["by_severity"].items()) or "none")
                + "."
            ],
            head=("Category", "Type", "Recorded", "Dispositioned", "Escalated to a deviation", "Waiting"),
            widths=(0.18, 0.34, 0.12, 0.12, 0.12, 0.12),
            rows=[
                [
                    t["category"],
                    t["type"],
                    t["count"],
                    t["dispositioned"],
                    t["escalated_to_deviation"],
                    t["waiting"],
                ]
                for t in ex["by_type"]
            ],
        ),
        Section(
            "Deviations raised in the period",
            "deviations",
            notes=[
                "By classification: "
                + (", ".join(f"{k} {v}" for k, v in dev["by_classification"].items()) or "none")
                + f"; closed in the period: {dev['closed_in_period']}."
            ],
            head=DEVIATION_HEAD,
            widths=DEVIATION_WIDTHS,
            rows=_deviation_rows(dev["raised"], when),
        ),
        Section(
            "Open deviations and CAPA",
            "capa",
            notes=[
                dev["capa"]["note"],
                "Open without a CAPA reference: "
                + (", ".join(dev["capa"]["open_without_reference"]) or "none")
                + ".",
            ],
            head=DEVIATION_HEAD,
            widths=DEVIATION_WIDTHS,
            rows=_deviation_rows(dev["capa"]["open_with_reference"], when),
        ),
        Section(
            "Audit trail: scheduled verifications and checkpoints",
            "audit-trail",
            fields=[
                (
                    "Scheduled verifications",
                    f"{trail['scheduled_runs']} ({trail['runs_ok']} without findings)",
                ),
                (
                    "Last verification",
                    f"{when(last['at'])}: {last['result']}, {last['entries']} entries" if last else "none",
                ),
                (
                    "Signed checkpoints",
                    f"{cps['count']}"
                    + (
                        f": number {cps['first']['number']} ({when(cps['first']['at'])}) to "
                        f"{cps['last']['number']} ({when(cps['last']['at'])})"
                        if cps["count"]
                        else ""
                    ),
                ),
                (
                    "Recoveries recorded",
                    "; ".join(
                        f"{when(r['at'])} by {_who(r['by'])}: {r['reason']}" for r in trail["recoveries"]
                    )
                    or "none",
                ),
            ],
            head=("Verification with findings", "Result", "Findings", "Entries"),
            widths=(0.4, 0.2, 0.2, 0.2),
            rows=[
                [when(r["at"]), r["result"], r["findings"], r["entries"]] for r in trail["runs_with_findings"]
            ],
        ),
        Section(
            "Security alerts and incidents",
            "alerts",
            notes=[data["incidents"]["note"]],
            head=("Raised", "Kind", "Severity", "Message", "Acknowledged"),
            widths=(0.13, 0.12, 0.08, 0.4, 0.27),
            rows=[
                [
                    when(a["raised_at"]),
                    a["kind"],
                    a["severity"],
                    a["message"],
                    f"{when(a['acknowledged_at'])} by {_who(a['acknowledged_by'])}: {a['acknowledgement']}"
                    if a["acknowledged_at"]
                    else "not yet",
                ]
                for a in data["security_alerts"]
            ],
        ),
        Section(
            "Changes of the GMP configuration",
            "configuration",
            head=(
                "Version",
                "In force from",
                "Changes (old → new)",
                "Reason",
                "Request",
                "Requested / approved by",
            ),
            widths=(0.07, 0.14, 0.3, 0.22, 0.1, 0.17),
            rows=[
                [
                    c["version"],
                    when(c["effective_at"]),
                    "; ".join(c["changes"]) or "first version",
                    c["reason"],
                    c["change_request"] or "",
                    f"{c['requested_by'] or ''} / {c['approved_by'] or ''}" if c["change_request"] else "",
                ]
                for c in data["configuration_changes"]
            ],
        ),
        Section(
            "Master recipes: new versions and changes of state",
            "recipes",
            head=("When", "Recipe", "Version", "Name", "What", "By", "Reason"),
            widths=(0.13, 0.1, 0.06, 0.2, 0.16, 0.15, 0.2),
            rows=[
                [when(r["at"]), r["recipe"], r["version"], r["name"], r["event"], _who(r["by"]), r["reason"]]
                for r in data["recipe_changes"]
            ],
        ),
        Section(
            "Change requests (roles, configuration, master data)",
            "change-requests",
            head=("Request", "Kind", "What", "State", "Requested", "Decided"),
            widths=(0.1, 0.1, 0.36, 0.1, 0.17, 0.17),
            rows=[
                [
                    r["change_request"],
                    r["kind"],
                    r["summary"],
                    r["state"],
                    f"{when(r['requested_at'])} {_who(r['requested_by'])}",
                    f"{when(r['decided_at'])} {_who(r['decided_by'])}" if r["decided_at"] else "",
                ]
                for r in data["change_requests"]
            ],
        ),
        Section(
            "Backups and restores",
            "backups",
            notes=[data["backups"]["note"]],
            head=("When", "What", "By", "File", "SHA-256 / outcome"),
            widths=(0.13, 0.08, 0.12, 0.3, 0.37),
            rows=[
                [when(b["at"]), "backup", b["by"], b["file"], b["sha256"]] for b in data["backups"]["backups"]
            ]
            + [
                [
                    when(r["at"]),
                    "restore",
                    r["by"],
                    r["file"],
                    "verified" if r["verified"] else f"{r['differences']} differences",
                ]
                for r in data["backups"]["restores"]
            ],
        ),
        Section(
            "Access reviews signed in the period",
            "access-reviews",
            head=("Review", "Signed", "By"),
            widths=(0.3, 0.35, 0.35),
            rows=[[r["number"], when(r["signed_at"]), _who(r["signed_by"])] for r in data["access_reviews"]],
        ),
        Section(
            "Software",
            "software",
            notes=[data["software"]["note"]],
            fields=[
                ("Batchline version", data["software"]["version"]),
                ("GMP configuration version", data["software"]["configuration_version"]),
            ],
        ),
    ]
    return sections


def sections_of(data: dict[str, Any], when: When) -> list[Section]:
    if data["kind"] == "access_review":
        return access_review_sections(data, when)
    return evaluation_sections(data, when)
