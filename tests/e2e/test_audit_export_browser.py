"""In Chromium: the auditor filters the audit trail with htmx, then exports what the page shows."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from django.db import transaction

from batchline.audit.models import AuditEntry
from batchline.audit.services import Actor, audit_append
from tests.conftest import make_user
from tests.e2e.test_browser import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.req("P11-05", "A11-13", "DI-09")
def test_the_csv_exported_after_filtering_holds_the_filtered_entries_only(page, live_db) -> None:
    make_user("auditor", ["auditor"])
    operator = Actor.of(make_user("operator", ["operator"]), via="web")
    with transaction.atomic():
        for i in range(3):
            audit_append(
                actor=operator,
                action="update",
                record_type="execution.batch",
                record_id="7",
                changes={"state": ["running", f"held {i}"]},
            )
    log_in(page, "auditor")
    page.goto("/audit/")
    page.fill("#f-user", "operator")
    page.fill("#f-action", "update")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**action=update**")
    page.get_by_text("3 entries, every page of them").wait_for()
    with page.expect_download() as download:
        page.get_by_test_id("csv-export").click()
    assert "user-operator-action-update" in download.value.suggested_filename
    rows = list(csv.reader(io.StringIO(Path(download.value.path()).read_text())))
    assert rows[1] == ["# filter", "user ID = operator; action = update"]
    entries = {r[0] for r in rows[5:]}
    expected = {
        str(pk)
        for pk in AuditEntry.objects.filter(actor_username="operator", action="update").values_list(
            "pk", flat=True
        )
    }
    assert entries == expected and len(expected) == 3 < AuditEntry.objects.count()
