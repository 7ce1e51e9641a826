"""A witness's signature on a weight typed by hand binds the weight, its reason and the container it went
into (execution.dispensing); it was judged as a correction's and read BROKEN everywhere (issue 11)."""

from __future__ import annotations

import re
from io import StringIO

import pytest
from django.core.management import call_command

from batchline.signatures import status
from batchline.signatures.models import Signature
from tests.signatures.test_status import sql
from tests.web.test_quality_pages import plant, text

pytestmark = pytest.mark.django_db

__all__ = ["plant"]  # the fixture, used by name


def audit_verify() -> str:
    out = StringIO()
    call_command("audit", "verify", stdout=out, stderr=out)  # raises CommandError on any finding
    return out.getvalue()


def shown(page: str) -> list[str]:
    return re.findall(r'data-status="(\w+)"', page)


@pytest.mark.req("P11-14", "WD-09")
def test_the_witness_signature_of_a_hand_typed_weight_is_valid_on_the_screen_the_review_and_in_verify(
    plant, login
) -> None:
    people, batch = plant
    (witnessed,) = Signature.objects.filter(record_type="execution.stepvalue", witness=True)
    _, judged = status.statuses_of(batch)
    assert judged[witnessed.pk].state == "valid", judged[witnessed.pk]
    screen = text(login(people["supervisor"]).get("/batches/B-1/", {"step": "disp_api"}))
    assert shown(screen) and "broken" not in shown(screen)
    review = text(login(people["reviewer"]).get("/batches/B-1/review/"))
    row = review.split(f'data-signature="{witnessed.pk}"')[1].split("</tr>")[0]
    assert shown(row) == ["valid"] and "BROKEN" not in review
    assert not status.broken_signatures()
    assert "OK: audit trail verifies" in audit_verify()


@pytest.mark.req("P11-14", "WD-09")
def test_a_witnessed_weight_changed_behind_the_application_breaks_the_witness_signature(
    plant, no_triggers
) -> None:
    _people, batch = plant
    (witnessed,) = Signature.objects.filter(record_type="execution.stepvalue", witness=True)
    sql("UPDATE execution_stepvalue SET text = %s WHERE id = %s", ["1.8", int(witnessed.record_id)])
    _, judged = status.statuses_of(batch)
    assert judged[witnessed.pk].broken and "(dispensed = 1.8 kg)" in judged[witnessed.pk].text
    assert any(f"signature #{witnessed.pk} (verified" in f for f in status.broken_signatures())
