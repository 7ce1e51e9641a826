"""The configuration page and API: the version in force, its history, and a change under two signatures."""

from __future__ import annotations

import json
import re

import pytest

from batchline.approvals.models import ChangeRequest
from batchline.configuration.models import ConfigVersion
from batchline.configuration.selectors import current
from tests.conftest import PASSWORD, entries

pytestmark = pytest.mark.django_db


def form_fields(html: str, testid: str) -> dict[str, str]:
    form = re.search(rf'<form[^>]*data-testid="{testid}".*?</form>', html, re.S).group(0)
    fields = dict(re.findall(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', form))
    for name, body in re.findall(r'<select[^>]*name="([^"]+)"[^>]*>(.*?)</select>', form, re.S):
        fields[name] = re.search(r'<option value="([^"]*)" selected', body).group(1)
    return fields


@pytest.mark.req("A11-14", "P11-11", "P11-07")
def test_a_change_on_the_page_needs_the_administrators_and_a_qa_approvers_signatures(personas, login) -> None:
    admin = login(personas["admin"])
    page = admin.get("/configuration/").content.decode()
    assert 'data-testid="version">1<' in page and "Idle timeout (minutes)" in page
    fields = form_fields(page, "request")
    assert fields["setting_idle_timeout_minutes"] == "15" and fields["setting_qp_certification"] == "no"

    # No reason, or a wrong password: refused in words, nothing written.
    refused = admin.post(
        "/configuration/request/",
        {
            **fields,
            "setting_qp_certification": "yes",
            "reason": "",
            "signer_username": "admin",
            "signer_password": PASSWORD,
        },
    )
    assert refused.status_code == 422 and "Give a reason" in refused.content.decode()
    refused = admin.post(
        "/configuration/request/",
        {
            **fields,
            "setting_qp_certification": "yes",
            "reason": "licence",
            "signer_username": "admin",
            "signer_password": "wrong",
        },
    )
    assert refused.status_code == 422
    assert not ConfigVersion.objects.filter(number=2).exists()

    requested = admin.post(
        "/configuration/request/",
        {
            **fields,
            "setting_qp_certification": "yes",
            "setting_late_entry_minutes": "30",
            "reason": "the new licence needs QP certification",
            "signer_username": "admin",
            "signer_password": PASSWORD,
        },
    )
    assert requested.status_code == 302
    assert current().qp_certification is False  # requested, not in force
    page = admin.get("/configuration/").content.decode()
    assert 'data-testid="pending"' in page and "QP certification" in page
    (pending_id,) = re.findall(r"/configuration/requests/(\d+)/approve/", page) or [None]
    assert pending_id is None  # the administrator may not approve: no approve form for them
    open_id = ChangeRequest.objects.get(state="requested").pk
    refused = admin.post(f"/configuration/requests/{open_id}/approve/", {"signer_password": PASSWORD})
    assert refused.status_code == 403

    approver = login(personas["qa_approver"])
    page = approver.get("/configuration/").content.decode()
    (pending_id,) = re.findall(r"/configuration/requests/(\d+)/approve/", page)
    approved = approver.post(
        f"/configuration/requests/{pending_id}/approve/",
        {"signer_username": "qa_approver", "signer_password": PASSWORD, "signer_comment": "per CC-12"},
    )
    assert approved.status_code == 302
    config = current()
    assert (config.version, config.qp_certification, config.late_entry_minutes) == (2, True, 30)
    page = approver.get("/configuration/").content.decode()
    history = re.search(r'<tr data-version="2">.*?</tr>', page, re.S).group(0)
    assert "QP certification: no → yes" in history and "Late entry (minutes): 60 → 30" in history
    assert "the new licence needs QP certification" in history
    assert "Admin Person — Requested" in history and "Qa Approver Person — Approved" in history
    version = ConfigVersion.objects.get(number=2)
    (entry,) = entries(record_type="configuration.configversion", record_id=str(version.pk))
    assert entry.actor_username == "qa_approver" and entry.reason == "the new licence needs QP certification"
    assert json.loads(entry.changes)["values"][1]["qp_certification"] is True
    # The request's own entry holds both: what stood (old) and what is applied (new), with the reason.
    (asked,) = entries(record_type="approvals.changerequest", action="change_request")
    changes = json.loads(asked.changes)
    assert changes["before"][1]["values"]["qp_certification"] is False
    assert changes["payload"][1]["values"]["qp_certification"] is True


@pytest.mark.req("A11-14", "P11-11")
def test_the_api_shows_the_version_and_changes_it_under_two_signatures(personas, login) -> None:
    admin, approver = login(personas["admin"]), login(personas["qa_approver"])
    got = admin.get("/api/v1/configuration").json()
    assert got["version"] == 1 and got["values"]["self_approval"] is False
    assert got["history"][0]["number"] == 1 and got["history"][0]["changes"] == []

    body = {
        "values": {"self_approval": True},
        "reason": "SOP-QA-017 rev 4",
        "signature": {"username": "admin", "password": PASSWORD},
    }
    made = admin.post("/api/v1/configuration/change-requests", body, content_type="application/json")
    assert made.status_code == 201, made.content
    cr = made.json()
    assert cr["state"] == "requested" and cr["version_in_force"] == 1
    again = admin.post("/api/v1/configuration/change-requests", body, content_type="application/json")
    assert again.status_code == 422 and "already waiting" in again.json()["detail"]

    own = admin.post(
        f"/api/v1/configuration/change-requests/{cr['id']}/approve",
        {"signature": {"username": "admin", "password": PASSWORD}},
        content_type="application/json",
    )
    assert own.status_code == 403  # administrators do not approve
    done = approver.post(
        f"/api/v1/configuration/change-requests/{cr['id']}/approve",
        {"signature": {"username": "qa_approver", "password": PASSWORD, "comment": "ok"}},
        content_type="application/json",
    )
    assert done.status_code == 200 and done.json()["version_in_force"] == 2
    got = login(personas["auditor"]).get("/api/v1/configuration").json()
    assert got["version"] == 2 and got["values"]["self_approval"] is True
    (latest, _first) = got["history"]
    assert latest["changes"] == [
        {"setting": "self_approval", "label": "Self-approval of exceptions", "old": "no", "new": "yes"}
    ]
    assert (latest["requested_by_username"], latest["approved_by_username"]) == ("admin", "qa_approver")
    assert [s["meaning"] for s in latest["signatures"]] == ["requested", "approved"]
    assert login(personas["operator"]).get("/api/v1/configuration").status_code == 403
