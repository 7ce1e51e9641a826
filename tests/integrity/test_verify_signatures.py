"""``audit verify`` names a BROKEN signature: a value under a signature changed behind the application."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from batchline.execution.models import StepValue
from batchline.integrity.verification import full_verify
from tests.signatures.test_status import by_meaning, plant, released, sql

__all__ = ["plant"]  # the fixture, used by name


@pytest.mark.req("P11-01", "P11-14")
def test_audit_verify_names_a_signature_whose_content_changed(plant, no_triggers) -> None:
    people, recipe = plant
    batch = released(people, recipe)
    assert not [f for f in full_verify().findings if f.kind == "signature"]
    value = StepValue.objects.get(step__batch=batch, name="mean_weight")
    sql("UPDATE execution_stepvalue SET text = %s WHERE id = %s", ["605.00", value.pk])
    verified = by_meaning(batch, "execution.batchstep", "verified")
    found = [str(f) for f in full_verify().findings if f.kind == "signature"]
    assert any(f"signature #{verified.pk} (verified" in f and "BROKEN" in f for f in found), found
    out = StringIO()
    with pytest.raises(CommandError, match="does NOT verify"):
        call_command("audit", "verify", stdout=out, stderr=out)
    assert f"FAIL signature: batch {batch.number}: signature #{verified.pk}" in out.getvalue()
