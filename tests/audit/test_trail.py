"""The audit trail on a real database (SQLite or PostgreSQL, as DATABASE_URL says)."""

from __future__ import annotations

import itertools
import json
from contextlib import suppress

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction

from batchline.audit.models import AuditBypassError, AuditEntry
from batchline.audit.services import Actor, ReasonRequired, audit_together, record_create, record_update
from batchline.audit.verify import verify
from batchline.equipment.models import Site
from tests.conftest import entries

pytestmark = pytest.mark.django_db
ACTOR = Actor(id=41, username="eve", name="Eve Engineer", via="web")


def site(code: str = "bs1") -> Site:
    with transaction.atomic():
        return record_create(Site(code=code, name="Basel plant"), actor=ACTOR, reason="new site")


def sql(statement: str, params: list | None = None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement, params or [])


@pytest.mark.req("P11-05", "DI-01", "A11D-03")
def test_creating_a_record_appends_who_when_what() -> None:
    s = site()
    (entry,) = entries(record_type="equipment.site", record_id=str(s.pk))
    assert entry.action == "create"
    assert (entry.actor_id, entry.actor_username, entry.actor_name, entry.via) == (
        41,
        "eve",
        "Eve Engineer",
        "web",
    )
    assert json.loads(entry.changes)["name"] == [None, "Basel plant"]
    assert entry.reason == "new site"
    assert entry.at.utcoffset().total_seconds() == 0


@pytest.mark.req("P11-05", "A11-13")
def test_an_update_records_old_and_new_value_and_the_reason() -> None:
    s = site()
    with transaction.atomic():
        changes = record_update(s, actor=ACTOR, values={"name": "Basel plant 2"}, reason="renamed")
    assert changes == {"name": ["Basel plant", "Basel plant 2"]}
    last = entries(record_type="equipment.site")[-1]
    assert json.loads(last.changes) == {"name": ["Basel plant", "Basel plant 2"]}
    assert last.reason == "renamed"


def test_an_update_that_changes_nothing_writes_nothing() -> None:
    s = site()
    before = AuditEntry.objects.count()
    with transaction.atomic():
        assert record_update(s, actor=ACTOR, values={"name": "Basel plant"}) == {}
    assert AuditEntry.objects.count() == before


@pytest.mark.req("A11-13")
def test_a_change_that_needs_a_reason_is_refused_without_one_and_writes_nothing() -> None:
    s = site()
    before = AuditEntry.objects.count()
    with pytest.raises(ReasonRequired), transaction.atomic():
        record_update(s, actor=ACTOR, values={"name": "X"}, reason=" ", reason_required=True)
    assert AuditEntry.objects.count() == before
    assert Site.objects.get(pk=s.pk).name == "Basel plant"


@pytest.mark.req("P11-05")
def test_a_record_and_its_entry_commit_or_roll_back_together() -> None:
    before = (Site.objects.count(), AuditEntry.objects.count())
    with pytest.raises(RuntimeError), transaction.atomic():
        record_create(Site(code="tmp", name="Temporary"), actor=ACTOR)
        raise RuntimeError("something later in the same action failed")
    assert (Site.objects.count(), AuditEntry.objects.count()) == before


@pytest.mark.req("P11-05")
@pytest.mark.parametrize(
    "write",
    [
        lambda: Site.objects.filter(code="bs1").update(name="sneaky"),
        lambda: Site.objects.filter(code="bs1").delete(),
        lambda: Site.objects.bulk_create([Site(code="x", name="x")]),
        lambda: Site.objects.bulk_update(list(Site.objects.all()), ["name"]),
        lambda: Site.objects.create(code="y", name="y"),
        lambda: Site.objects.get(code="bs1").save(),
        lambda: Site.objects.get(code="bs1").delete(),
    ],
    ids=["update", "delete", "bulk_create", "bulk_update", "create", "save", "instance-delete"],
)
@pytest.mark.req("P11-03")
def test_writes_that_would_bypass_the_trail_are_refused(write) -> None:
    site()
    with pytest.raises(AuditBypassError):
        write()
    assert Site.objects.get(code="bs1").name == "Basel plant"


def test_an_entry_is_only_written_inside_the_transaction_of_its_change() -> None:
    from batchline.audit.services import audit_append

    with pytest.raises(RuntimeError, match="inside the transaction"):
        audit_append(actor=ACTOR, action="login", record_type="accounts.user", record_id=1)


@pytest.mark.req("P11-05", "P11-01")
@pytest.mark.parametrize(
    "statement",
    ["UPDATE audit_auditentry SET reason = 'rewritten'", "DELETE FROM audit_auditentry"],
    ids=["update", "delete"],
)
def test_the_database_refuses_to_change_the_audit_trail(statement: str) -> None:
    site()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        sql(statement)
    assert AuditEntry.objects.filter(reason="rewritten").count() == 0


def test_the_model_refuses_to_change_an_entry_too() -> None:
    site()
    entry = AuditEntry.objects.last()
    entry.reason = "x"
    with pytest.raises(AuditBypassError):
        entry.save()
    with pytest.raises(AuditBypassError):
        entry.delete()


@pytest.mark.req("P11-01")
def test_each_entry_points_at_its_predecessor() -> None:
    site("a")
    site("b")
    rows = list(AuditEntry.objects.order_by("id").values_list("prev_hash", "hash"))
    for (_, prev_hash), (next_prev, _) in itertools.pairwise(rows):
        assert next_prev == prev_hash


# --- rows written by the audit services' own statements ----------------------------------


def test_a_record_pointing_at_an_unsaved_one_is_refused_as_save_refuses_it() -> None:
    from batchline.execution.models import BatchStep, StepValue

    with pytest.raises(ValueError, match="unsaved related object"), transaction.atomic():
        record_create(StepValue(step=BatchStep(key="x"), name="v", label="V", source="entered"), actor=ACTOR)


def test_an_update_of_a_row_that_is_gone_raises_and_appends_nothing() -> None:
    s = site()
    ghost = Site.objects.get(pk=s.pk)
    ghost.pk = s.pk + 1000
    before = AuditEntry.objects.count()
    with pytest.raises(DatabaseError, match="did not affect any rows"), transaction.atomic():
        record_update(ghost, actor=ACTOR, values={"name": "Nowhere"})
    assert AuditEntry.objects.count() == before


def test_a_model_with_signal_receivers_is_saved_through_the_orm() -> None:
    from django.db.models.signals import post_save

    seen = []

    def receiver(sender, instance, created, **kwargs):
        seen.append((instance.code, created))

    post_save.connect(receiver, sender=Site)
    try:
        s = site("sig")
        with transaction.atomic():
            record_update(s, actor=ACTOR, values={"name": "Renamed"})
    finally:
        post_save.disconnect(receiver, sender=Site)
    assert seen == [("sig", True), ("sig", False)]
    assert verify().ok


# --- entries appended together ------------------------------------------------------


def trail() -> list[tuple[str, str, str]]:
    return list(AuditEntry.objects.order_by("id").values_list("action", "record_type", "record_id"))


@pytest.mark.req("P11-01", "P11-05")
def test_entries_appended_together_make_the_chain_one_by_one_would() -> None:
    a = site("a")
    before = AuditEntry.objects.count()
    with transaction.atomic(), audit_together():
        b = record_create(Site(code="b", name="B"), actor=ACTOR)
        record_update(b, actor=ACTOR, values={"name": "B2"}, reason="renamed")
        record_update(a, actor=ACTOR, values={"name": "A2"}, reason="renamed")
        assert AuditEntry.objects.count() == before  # made, appended at the end of the block
    assert trail()[before:] == [
        ("create", "equipment.site", str(b.pk)),
        ("update", "equipment.site", str(b.pk)),
        ("update", "equipment.site", str(a.pk)),
    ]
    rows = list(AuditEntry.objects.order_by("id").values_list("prev_hash", "hash"))
    for (_, prev_hash), (next_prev, _) in itertools.pairwise(rows):
        assert next_prev == prev_hash
    assert verify().ok  # every hash recomputed, every change replayed against the table


@pytest.mark.req("P11-05")
def test_a_block_that_fails_part_way_still_appends_the_entries_of_what_it_wrote() -> None:
    # A caller that catches the failure inside its transaction commits what was written: with its entries.
    with transaction.atomic(), suppress(ValueError), audit_together():
        c = record_create(Site(code="c", name="C"), actor=ACTOR)
        raise ValueError("something later in the block failed")
    assert trail()[-1] == ("create", "equipment.site", str(c.pk))
    assert verify().ok


@pytest.mark.req("P11-05")
def test_a_savepoint_inside_the_block_keeps_its_entries_if_released_and_drops_them_if_rolled_back() -> None:
    before = AuditEntry.objects.count()
    with transaction.atomic(), audit_together():
        d = record_create(Site(code="d", name="D"), actor=ACTOR)
        with transaction.atomic():  # released: its entries keep their place in the order made
            e = record_create(Site(code="e", name="E"), actor=ACTOR)
            with suppress(ValueError), transaction.atomic():  # rolled back inside a released one
                record_create(Site(code="f", name="F"), actor=ACTOR)
                raise ValueError("the inner savepoint fails")
            record_update(e, actor=ACTOR, values={"name": "E2"}, reason="renamed")
        with suppress(ValueError), transaction.atomic():  # rolled back: its rows and entries go
            g = record_create(Site(code="g", name="G"), actor=ACTOR)
            record_update(g, actor=ACTOR, values={"name": "G2"}, reason="renamed")
            raise ValueError("the savepoint fails")
        record_update(d, actor=ACTOR, values={"name": "D2"}, reason="renamed")
        assert AuditEntry.objects.count() == before
    assert trail()[before:] == [
        ("create", "equipment.site", str(d.pk)),
        ("create", "equipment.site", str(e.pk)),
        ("update", "equipment.site", str(e.pk)),
        ("update", "equipment.site", str(d.pk)),
    ]
    assert not Site.objects.filter(code__in=["f", "g"]).exists()
    assert not AuditEntry.objects.filter(record_type="equipment.site", record_id=str(g.pk)).exists()
    assert verify().ok  # every entry's change replayed against the table: none missing, none extra


@pytest.mark.req("P11-05")
def test_a_failed_block_appends_only_the_entries_of_savepoints_that_were_released() -> None:
    before = AuditEntry.objects.count()
    with transaction.atomic(), suppress(KeyError), audit_together():
        with transaction.atomic():
            h = record_create(Site(code="h", name="H"), actor=ACTOR)
        with transaction.atomic():
            record_create(Site(code="i", name="I"), actor=ACTOR)
            raise KeyError("fails in a savepoint, and the block with it")
    assert trail()[before:] == [("create", "equipment.site", str(h.pk))]
    assert list(Site.objects.filter(code__in=["h", "i"]).values_list("code", flat=True)) == ["h"]
    assert verify().ok


# --- batchline audit verify -------------------------------------------------------


def run_verify() -> str:
    from io import StringIO

    out = StringIO()
    call_command("audit", "verify", stdout=out, stderr=out)
    return out.getvalue()


@pytest.mark.req("P11-01", "A11-09")
def test_verify_passes_on_an_untouched_database() -> None:
    site()
    assert "OK: audit trail verifies" in run_verify()


def verify_fails_with(text: str) -> str:
    with pytest.raises(CommandError) as failure:
        run_verify()
    report = verify()
    assert not report.ok
    assert text in str(report.findings[0]), [str(f) for f in report.findings]
    return str(failure.value)


@pytest.mark.req("P11-01", "P11-05", "A11-09")
def test_verify_names_a_modified_entry(no_triggers: None) -> None:
    s = site()
    target = AuditEntry.objects.get(record_type="equipment.site", record_id=str(s.pk))
    sql("UPDATE audit_auditentry SET actor_name = 'Somebody Else' WHERE id = %s", [target.pk])
    verify_fails_with(f"audit entry #{target.pk}: content does not match its hash")


@pytest.mark.req("P11-01", "P11-05", "A11-09")
def test_verify_names_a_deleted_entry(no_triggers: None) -> None:
    site("a")
    site("b")
    ids = list(AuditEntry.objects.order_by("id").values_list("id", flat=True))
    victim, successor = ids[-2], ids[-1]
    sql("DELETE FROM audit_auditentry WHERE id = %s", [victim])
    verify_fails_with(f"audit entry #{successor}: chain 0 lacks position")


@pytest.mark.req("P11-01", "P11-05", "A11-09")
def test_verify_names_reordered_entries(no_triggers: None) -> None:
    site("a")
    site("b")
    first, second = AuditEntry.objects.order_by("-id")[:2][::-1]
    # Swap the two rows' ids: history told in a different order.
    sql("UPDATE audit_auditentry SET id = -1 WHERE id = %s", [first.pk])
    sql("UPDATE audit_auditentry SET id = %s WHERE id = %s", [first.pk, second.pk])
    sql("UPDATE audit_auditentry SET id = %s WHERE id = -1", [second.pk])
    verify_fails_with(f"audit entry #{first.pk}: chain 0 lacks position {first.seq}")


@pytest.mark.req("P11-01", "DI-10", "A11-09")
def test_verify_names_a_business_record_edited_with_raw_sql() -> None:
    s = site()
    sql("UPDATE equipment_site SET name = 'Edited behind the back' WHERE id = %s", [s.pk])
    message = verify_fails_with(f'equipment.site #{s.pk}: name is "Edited behind the back" in the table')
    assert "does NOT verify" in message


@pytest.mark.req("P11-01", "A11-09")
def test_verify_finds_a_raw_edit_that_a_later_change_overwrote() -> None:
    s = site()
    sql("UPDATE equipment_site SET name = 'Tampered' WHERE id = %s", [s.pk])
    with transaction.atomic():
        record_update(
            Site.objects.get(pk=s.pk), actor=ACTOR, values={"name": "Legit rename"}, reason="rename"
        )
    verify_fails_with('found name = "Tampered", but the trail had set it to "Basel plant"')


@pytest.mark.req("P11-01", "A11-09")
def test_verify_finds_a_record_inserted_and_one_deleted_behind_the_back() -> None:
    s = site()
    sql("INSERT INTO equipment_site (code, name, time_zone, address) VALUES ('ghost', 'Ghost', 'UTC', '')")
    sql("DELETE FROM equipment_site WHERE id = %s", [s.pk])
    findings = [str(f) for f in verify().findings]
    assert any("has no audit trail: created outside the application" in f for f in findings)
    assert any(f"equipment.site #{s.pk} is in the audit trail but not in the table" in f for f in findings)


@pytest.mark.req("P11-01", "A11-09")
def test_verify_finds_roles_granted_behind_the_back(personas) -> None:
    from django.contrib.auth.models import Group

    operator = personas["operator"]
    operator.groups.add(Group.objects.get(name="qa_approver"))  # the ORM, but no service: no entry
    verify_fails_with(f"accounts.user #{operator.pk}: roles is")


@pytest.mark.req("P11-01", "P11-14", "A11-09")
def test_verify_finds_a_password_hash_swapped_behind_the_back(personas) -> None:
    victim, other = personas["qa_approver"], personas["operator"]
    sql("UPDATE accounts_user SET password = %s WHERE id = %s", [other.password + "x", victim.pk])
    verify_fails_with(f"accounts.user #{victim.pk}: password is")


@pytest.mark.req("P11-01", "P11-14", "A11-09")
def test_verify_finds_a_signature_edited_or_removed_behind_the_back(personas, no_triggers) -> None:
    from batchline.signatures.models import Signature
    from tests.signatures.test_signing import sign_roles, station

    sign_roles(
        personas["admin"],
        personas["operator"],
        ["supervisor"],
        station(personas["admin"]),
        username="admin",
        password="correct-horse-battery-7",
    )
    sig = Signature.objects.get()
    sql("UPDATE signatures_signature SET signer_name = 'Somebody Else' WHERE id = %s", [sig.pk])
    verify_fails_with(f'signatures.signature #{sig.pk}: signer_name is "Somebody Else"')
    sql("DELETE FROM signatures_signature WHERE id = %s", [sig.pk])
    verify_fails_with(f"signatures.signature #{sig.pk} is in the audit trail but not in the table")


@pytest.mark.req("P11-01", "P11-05")
def test_decimals_are_recorded_at_their_column_scale_so_replay_agrees(db) -> None:
    from batchline.recipes import services as recipes
    from tests.conftest import make_user
    from tests.recipes.test_recipe_services import SMALL

    author = make_user("author", ["recipe_author"])
    recipe = recipes.recipe_import(actor=Actor.of(author, via="web"), text=SMALL)
    created = entries(record_type="recipes.masterrecipe", record_id=str(recipe.pk))[0]
    assert json.loads(created.changes)["nominal_quantity"] == [None, "1000.000000"]
    assert verify().ok
