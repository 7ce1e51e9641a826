"""Every signature of a batch has one status, shown everywhere (issue 10 item 3; 21 CFR 11.50, 11.70).

Valid; superseded by a correction or a later audited change (who, when, why); or
BROKEN when what it signed was changed outside the application. Played on a real
database: the attacker drops the append-only triggers and edits rows directly.
"""

from __future__ import annotations

import pytest
from django.core.cache import caches
from django.db import connection

from batchline.accounts.services import user_update
from batchline.execution import services as ex
from batchline.execution.models import BatchException, StepValue
from batchline.reports.content import record_content
from batchline.reports.pdf import render_pdf
from batchline.signatures.models import Signature
from batchline.signatures.status import batch_statuses, broken_signatures
from batchline.web import screens
from tests.execution.test_engine import A, complete, effective_recipe, new_batch, sign, start
from tests.quality.test_quality_services import (
    close,
    disposition,
    finish,
    make_people,
    raise_deviation,
    stage,
)
from tests.reports.test_records import pdf_text

pytestmark = pytest.mark.django_db


@pytest.fixture
def plant(db):
    return make_people()


def released(people, recipe, *, deviation: bool = True):
    """A batch held and resumed, with a deviation, dispositioned, reviewed in three stages and released."""
    batch = new_batch(people, recipe)
    sup = people["supervisor"]
    ex.batch_command(actor=A(sup), batch=batch, command="hold", signer=sign(sup), reason="alarm")
    ex.batch_command(actor=A(sup), batch=batch, command="resume", signer=sign(sup))
    batch = finish(people, batch)
    dev = raise_deviation(people, [batch.number]) if deviation else None
    disposition(
        people,
        list(
            BatchException.objects.filter(batch=batch, disposition__isnull=True).values_list("id", flat=True)
        ),
    )
    if dev:
        close(people, dev)
    stage(people, batch, "production_review", "supervisor")
    stage(people, batch, "qa_review", "reviewer")
    stage(people, batch, "released", "approver", comment="Reviewed by exception.")
    batch.refresh_from_db()
    assert batch.state == "qa_released"
    return batch


def sql(statement: str, params: list) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


def by_meaning(batch, record_type: str, meaning: str) -> Signature:
    sigs = [s for s in Signature.objects.filter(record_type=record_type, meaning=meaning)]
    content, _ = batch_statuses(batch)
    ids = {s["id"] for s in content["signature_records"]}
    found = [s for s in sigs if s.pk in ids]
    assert len(found) == 1, found
    return found[0]


@pytest.mark.req("P11-14", "A11-18")
def test_every_signature_of_an_untouched_released_batch_is_valid(plant) -> None:
    people, recipe = plant
    batch = released(people, recipe)
    content, statuses = batch_statuses(batch)
    kinds = {s["record_type"] for s in content["signature_records"]}
    assert kinds == {
        "execution.batch",
        "execution.batchstep",
        "execution.exceptiondisposition",
        "quality.deviation",
        "quality.reviewstage",
    }
    states = {i: st.state for i, st in statuses.items()}
    deviation_ids = sorted(
        s["id"] for s in content["signature_records"] if s["record_type"] == "quality.deviation"
    )
    # Each step of the deviation's workflow is followed by the next; the closing one holds.
    assert [states[i] for i in deviation_ids] == ["superseded"] * 3 + ["valid"]
    assert all(st == "valid" for i, st in states.items() if i not in deviation_ids[:-1])
    assert broken_signatures() == []
    # The release binds the complete record it approves.
    release = content["review"]["stages"][-1]
    assert release["stage"] == "released" and len(release["record_sha256"]) == 64


@pytest.mark.req("P11-14", "P11-01", "P11-13")
def test_a_value_changed_in_the_database_under_a_verification_signature_is_broken_everywhere(
    plant, no_triggers, client, tmp_path
) -> None:
    people, recipe = plant
    batch = released(people, recipe)
    value = StepValue.objects.get(step__batch=batch, name="mean_weight")
    sql("UPDATE execution_stepvalue SET text = %s WHERE id = %s", ["605.00", value.pk])
    verified = by_meaning(batch, "execution.batchstep", "verified")
    release = by_meaning(batch, "quality.reviewstage", "released")
    _, statuses = batch_statuses(batch)
    assert statuses[verified.pk].state == "broken"
    assert "changed outside the application" in statuses[verified.pk].text
    assert statuses[release.pk].state == "broken"  # the record it released holds a broken signature
    findings = broken_signatures()
    assert any(
        f.startswith(f"batch {batch.number}: signature #{verified.pk} (verified, ") and "BROKEN" in f
        for f in findings
    ), findings
    assert any(f"signature #{release.pk} (released" in f for f in findings)

    # The PDF says so beside the signature and in its table of signatures.
    text = pdf_text(render_pdf(record_content(batch)), tmp_path)
    assert "BROKEN: the signed content changed outside the application" in " ".join(text.split())

    client.force_login(people["reviewer"])
    for page in (f"/batches/{batch.number}/review/", f"/batches/{batch.number}/record/"):
        html = client.get(page).content.decode()
        assert f'<tr data-signature="{verified.pk}" class="out">' in html, page
        assert "A signature of this batch is BROKEN" in html, page
        assert 'data-status="broken"' in html


SIGNED = """
format: batchline.recipe/1
recipe: {code: SIG-1, name: Signature status, product_code: SIG, product_name: Signature test, batch_size: {quantity: 100, unit: kg}}
operations:
  - key: ipc
    name: In-process control
    steps:
      - key: weights
        kind: data_entry
        title: Tablet weight
        signs: true
        inputs:
          - {name: w1, label: Weight 1, unit: mg, target: 600, plausible: {low: 300, high: 900}, specification: {low: 570, high: 630}}
      - key: mean
        kind: calculation
        title: Weight check
        calculations:
          - {name: m, label: Weight check, formula: "mean(w1, w1)", unit: mg}
        verify: true
      - key: clearance
        kind: checklist
        title: Line clearance
        checklist: [Line cleared]
"""


@pytest.mark.req("P11-14", "P11-05", "DI-05")
def test_a_correction_supersedes_the_signatures_and_names_who_when_and_why(
    plant, no_triggers, client
) -> None:
    people, _recipe = plant
    recipe = effective_recipe(people, SIGNED)
    batch = new_batch(people, recipe, number="B-SIG")
    op, sup = people["operator"], people["supervisor"]
    start(people, batch, "weights")
    complete(people, batch, "weights", entries={"w1": "598"}, signer=sign(op))
    start(people, batch, "mean")
    complete(people, batch, "mean")
    ex.step_verify(actor=A(sup), user=sup, batch=batch, step_key="mean", signer=sign(sup, "verified"))
    ex.value_correct(
        user=op,
        actor=A(op),
        batch=batch,
        step_key="weights",
        name="w1",
        text="599",
        reason="transcription error: balance showed 599",
        signer=sign(op),
    )
    steps = {s.key: s.pk for s in batch.steps.all()}
    performed = Signature.objects.get(record_type="execution.batchstep", record_id=str(steps["weights"]))
    verified = Signature.objects.get(record_type="execution.batchstep", record_id=str(steps["mean"]))
    correction = StepValue.objects.get(step__batch=batch, name="w1", corrects__isnull=False)
    recalculated = StepValue.objects.get(step__batch=batch, name="m", corrects__isnull=False)
    _, statuses = batch_statuses(batch)
    st = statuses[performed.pk]
    assert st.state == "superseded", st.text
    assert f"correction #{correction.pk} of w1 (598 → 599) by {op.printed_name}" in st.text
    assert "transcription error: balance showed 599" in st.text
    # The verifier's signature: superseded by the recalculation the correction caused.
    assert statuses[verified.pk].state == "superseded", statuses[verified.pk].text
    assert f"correction #{recalculated.pk} of m" in statuses[verified.pk].text
    assert broken_signatures() == []
    # The execution screen shows the same status on the step's signature.
    client.force_login(op)
    html = client.get(f"/batches/{batch.number}/?step=weights").content.decode()
    assert 'data-status="superseded"' in html and "transcription error" in html

    # The correction's reason edited behind the application's back breaks its signature, and the
    # step's signature is no longer explained by a signed correction.
    sql("UPDATE execution_stepvalue SET reason = %s WHERE id = %s", ["typo", correction.pk])
    _, statuses = batch_statuses(batch)
    corr_sig = Signature.objects.get(record_type="execution.stepvalue", record_id=str(correction.pk))
    assert statuses[corr_sig.pk].state == "broken"
    assert statuses[performed.pk].state == "broken"
    assert "without a signed correction" in statuses[performed.pk].text
    # The screen's rendering is cached under the audit trail's head, which a write behind the
    # application's back does not move: the next audited write anywhere, or a new cache, shows it.
    caches[screens.CACHE_ALIAS].clear()
    html = client.get(f"/batches/{batch.number}/?step=weights").content.decode()
    assert 'data-status="broken"' in html


@pytest.mark.req("P11-14", "RBE-06")
def test_the_release_binds_the_record_and_a_later_audited_change_supersedes_it(plant) -> None:
    people, recipe = plant
    batch = released(people, recipe, deviation=False)
    release = by_meaning(batch, "quality.reviewstage", "released")
    # A deviation raised afterwards names the batch: audited, so the release no longer matches, explained.
    raise_deviation(people, [batch.number], title="Complaint: chipped tablets")
    _, statuses = batch_statuses(batch)
    st = statuses[release.pk]
    assert st.state == "superseded", st.text
    assert "the record changed after this signature" in st.text and "quality.deviation" in st.text
    assert broken_signatures() == []


@pytest.mark.req("P11-14")
def test_a_hidden_edit_to_unsigned_record_content_breaks_the_release(plant, no_triggers) -> None:
    people, recipe = plant
    batch = released(people, recipe, deviation=False)
    release = by_meaning(batch, "quality.reviewstage", "released")
    exc = BatchException.objects.filter(batch=batch).first()
    # The exception's severity is under the disposition's signature too: both break.
    sql("UPDATE execution_batchexception SET severity = %s WHERE id = %s", ["low", exc.pk])
    _, statuses = batch_statuses(batch)
    assert statuses[release.pk].state == "broken"
    disp = Signature.objects.get(
        record_type="execution.exceptiondisposition", record_id=str(exc.disposition.pk)
    )
    assert statuses[disp.pk].state == "broken"


@pytest.mark.req("P11-13", "P11-14")
def test_a_later_name_change_shows_as_such_and_changes_no_performed_by(plant, tmp_path) -> None:
    people, recipe = plant
    batch = released(people, recipe, deviation=False)
    op = people["operator"]
    before = op.printed_name
    user_update(
        actor=A(people["engineer"]), user=op, full_name="Olga Newname", email=op.email, reason="married"
    )
    content, statuses = batch_statuses(batch)
    weights = next(s for s in content["steps"] if s["key"] == "weights")
    assert weights["completed_by"] == {"username": op.username, "name": before, "name_now": "Olga Newname"}
    assert all(v["entered_by"]["name"] == before for v in weights["values"])
    assert all(st.state != "broken" for st in statuses.values())
    text = " ".join(pdf_text(render_pdf(content), tmp_path).split())
    assert f"{before} ({op.username}, now Olga Newname)" in text
    assert f"{before} — Performed" in text  # the manifestation keeps the name signed under


def same_judgement(batch) -> None:
    from batchline.rules import bindings
    from batchline.signatures.status import lean_record, statuses_of

    full, full_statuses = batch_statuses(batch)
    lean = lean_record(batch)
    assert bindings.approved_content(lean, None) == bindings.approved_content(full, None)
    assert bindings.record_sha256(lean, None) == bindings.record_sha256(full, None)
    _, lean_statuses = statuses_of(batch)
    assert {i: s.state for i, s in lean_statuses.items()} == {i: s.state for i, s in full_statuses.items()}
    assert len(full_statuses) == len(full["signature_records"]) > 0


@pytest.mark.req("P11-14")
def test_the_lean_read_approves_the_same_record_as_the_full_one(plant) -> None:
    """The review page and audit verify judge from ``lean_record``; the PDF and archive from the full
    record: the record a stage approves must hash the same from both, and every status agree."""
    people, recipe = plant
    batch = released(people, recipe)
    same_judgement(batch)
    raise_deviation(people, [batch.number], title="Complaint")  # a change after the release
    same_judgement(batch)


@pytest.mark.req("P11-14")
def test_the_lean_read_agrees_on_a_batch_with_materials_equipment_and_a_correction(db) -> None:
    from tests.reports.helpers import complete_batch

    same_judgement(complete_batch("B-LEAN")[1])
