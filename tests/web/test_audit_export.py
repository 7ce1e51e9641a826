"""The audit trail's CSV export carries exactly what the page's filter selects (Annex 11 §9, P11-05).

The export link lives in the part of the page htmx replaces on every filter, so what a person
filtered is what they export: every matching entry (not only the 100 on the page shown), and
nothing else, with the filter named in the file's first lines and in its name.
"""

from __future__ import annotations

import csv
import datetime as dt
import html
import io
import re

import pytest
from django.db import transaction
from django.utils import timezone

from batchline.audit.selectors import AuditFilter, audit_entries
from batchline.audit.services import Actor, audit_append

pytestmark = pytest.mark.django_db


def trail(personas) -> None:
    """130 updates of one batch by the operator (more than one page of 100), and entries that differ
    from them in one condition each: another record, another user, another action."""
    operator, supervisor = (Actor.of(personas[p], via="web") for p in ("operator", "supervisor"))
    with transaction.atomic():
        for i in range(130):
            audit_append(
                actor=operator,
                action="update",
                record_type="execution.batch",
                record_id="7",
                changes={"state": ["running", f"held {i}"]},
            )
        for actor, action, record_id in (
            (operator, "update", "8"),
            (supervisor, "update", "7"),
            (operator, "create", "7"),
        ):
            audit_append(
                actor=actor, action=action, record_type="execution.batch", record_id=record_id, changes={}
            )


def csv_of(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


@pytest.mark.req("P11-05", "A11-13", "P11-02")
def test_the_export_carries_every_entry_the_filter_selects_and_names_the_filter(personas, login) -> None:
    trail(personas)
    today = timezone.localdate()
    query = {
        "record_type": "execution.batch",
        "record_id": "7",
        "user": "operator",
        "action": "update",
        "since": today.isoformat(),
        "until": today.isoformat(),
    }
    c = login(personas["auditor"])
    # Filtering with htmx replaces the entries; the export link comes with them, carrying the filter.
    partial = c.get("/audit/", query, headers={"HX-Request": "true"}).content.decode()
    assert "Page 1 of 2 · 130 entries" in partial
    href = re.search(r'href="([^"]*export\.csv[^"]*)" data-testid="csv-export"', partial)
    assert href, "the filtered entries come with their export link"
    response = c.get(html.unescape(href.group(1)))
    rows = csv_of(response)
    wanted = AuditFilter(
        record_type="execution.batch",
        record_id="7",
        user="operator",
        action="update",
        since=today,
        until=today,
    )
    expected = {str(pk) for pk in audit_entries(wanted).values_list("pk", flat=True)}
    header = rows.index(
        next(r for r in rows if r[:3] == ["entry", "time (UTC)", "user ID"])
    )  # after the lines naming the export
    assert {r[0] for r in rows[header + 1 :]} == expected and len(expected) == 130
    assert rows[0] == ["# Batchline audit trail export"]
    assert rows[1] == [
        "# filter",
        f"record type = execution.batch; record ID = 7; user ID = operator; action = update; "
        f"from day = {today}; to day = {today}",
    ]
    assert rows[2] == ["# entries", "130"]
    assert rows[3][0] == "# exported" and rows[3][1].endswith(
        f"by {personas['auditor'].printed_name} (auditor)"
    )
    name = response["Content-Disposition"]
    assert "-record-execution.batch-record-7-user-operator-action-update-from-" in name and name.endswith(
        '.csv"'
    )


@pytest.mark.req("P11-05", "A11-13")
def test_a_filter_on_days_outside_the_entries_exports_none_of_them(personas, login) -> None:
    trail(personas)
    yesterday = timezone.localdate() - dt.timedelta(days=1)
    c = login(personas["auditor"])
    rows = csv_of(c.get("/audit/export.csv", {"user": "operator", "until": yesterday.isoformat()}))
    assert rows[1] == ["# filter", f"user ID = operator; to day = {yesterday}"]
    assert rows[2] == ["# entries", "0"] and rows[-1][0] == "entry"


@pytest.mark.req("P11-05")
def test_without_a_filter_the_export_says_it_holds_every_entry(personas, login) -> None:
    trail(personas)
    rows = csv_of(login(personas["auditor"]).get("/audit/export.csv"))
    assert rows[1] == ["# filter", "none: every entry"]
    assert int(rows[2][1]) == audit_entries(AuditFilter()).count() > 130
