"""The audit-trail review's services on a real database (Annex 11 §9, A11-13, A11D-03, RBE-04)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.utils import timezone

from batchline.audit.models import AuditEntry
from batchline.audit.verify import verify
from batchline.auditreview import selectors, services
from batchline.auditreview.models import ReviewState, Scope, TrailReview, TrailReviewMark
from batchline.auditreview.services import TrailReviewRefused
from batchline.rules import trail
from batchline.signatures.models import Meaning, Signature
from batchline.signatures.services import SignatureRefused, signature_intact, signer_authenticate
from tests.auditreview.scenario import ALL_DAY, plant_with_batch, release
from tests.conftest import configure, make_user
from tests.execution.test_engine import A, sign
from tests.quality.scenario import run_batch
from tests.signatures.test_signing import station

pytestmark = [pytest.mark.django_db, pytest.mark.req("A11-13", "A11D-03", "VAL-10")]


def codes(exc: pytest.ExceptionInfo) -> list[str]:
    return exc.value.verdict.codes


def open_batch_review(people, number: str = "B-1") -> TrailReview:
    return services.trail_review_open(actor=A(people["reviewer"]), scope=Scope.BATCH, batch_number=number)


@pytest.mark.req("RBE-04", "P11-13")
def test_a_batch_trail_is_reviewed_exceptions_first_and_signed_once_each_is_marked() -> None:
    people, recipe, batch = plant_with_batch()
    other = run_batch(people, recipe, "B-2", weight="600")
    review = open_batch_review(people)

    # The scope is the batch's own trail: its exceptions in, the other batch's out.
    ids = set(trail.id_expand(review.entries))
    mine = {str(pk) for pk in batch.exceptions.values_list("id", flat=True)}
    theirs = {str(pk) for pk in other.exceptions.values_list("id", flat=True)}
    exception_entries = dict(
        AuditEntry.objects.filter(record_type="execution.batchexception", action="create").values_list(
            "record_id", "id"
        )
    )
    assert {exception_entries[r] for r in mine} <= ids
    assert not {exception_entries[r] for r in theirs} & ids
    assert review.entry_count == len(ids) and review.state == ReviewState.OPEN

    # What needs attention: the three exceptions, each said in words (working hours hold everything).
    why = [w for _pk, _tier, reasons in review.flagged for w in reasons]
    assert sorted(why) == [
        "A refused attempt on the floor (REFUSED_LOT_EXPIRED)",
        "An exception was recorded (CRITICAL_OUT_OF_SPECIFICATION)",
        "An exception was recorded (MANUAL_WEIGHT_ENTRY)",
    ]
    flagged = [row[0] for row in review.flagged]

    # Signing is refused while any is unmarked, and writes nothing.
    with pytest.raises(TrailReviewRefused) as refused:
        services.trail_review_sign(
            actor=A(people["reviewer"]), signer=sign(people["reviewer"], "reviewed"), review=review
        )
    assert codes(refused) == ["UNMARKED_ENTRIES"]
    assert "3 entries need attention and are not marked reviewed yet" in str(refused.value)
    assert not Signature.objects.filter(record_type="auditreview.trailreview").exists()

    services.trail_review_mark(
        actor=A(people["reviewer"]), review=review, entry_ids=flagged[:2], comment="Read."
    )
    with pytest.raises(
        TrailReviewRefused, match=r"1 entry needs attention and is not marked reviewed yet \(#"
    ):
        services.trail_review_sign(
            actor=A(people["reviewer"]), signer=sign(people["reviewer"], "reviewed"), review=review
        )
    services.trail_review_mark(actor=A(people["reviewer"]), review=review, entry_ids=flagged[2:])
    signed = services.trail_review_sign(
        actor=A(people["reviewer"]), signer=sign(people["reviewer"], "reviewed"), review=review
    )

    assert signed.state == ReviewState.SIGNED and signed.signed_by_id == people["reviewer"].pk
    signature = Signature.objects.get(record_type="auditreview.trailreview", record_id=str(review.pk))
    assert signature.meaning == Meaning.REVIEWED and signature.signer_name == people["reviewer"].printed_name
    marks = list(TrailReviewMark.objects.filter(review=review).order_by("entry_id"))
    assert signature_intact(signature, services.review_content(TrailReview.objects.get(pk=review.pk), marks))
    # Every write is in the trail: the review opened, each mark with its comment, the signing.
    assert [
        e.action
        for e in AuditEntry.objects.filter(
            record_type="auditreview.trailreview", record_id=str(review.pk)
        ).order_by("id")
    ] == ["create", "sign_review"]
    assert sorted(
        AuditEntry.objects.filter(record_type="auditreview.trailreviewmark").values_list("reason", flat=True)
    ) == ["", "Read.", "Read."]
    assert selectors.batch_trail_review("B-1") == signed
    assert selectors.batch_trail_review("B-2") is None


def test_a_signed_review_never_changes() -> None:
    people, _recipe, _batch = plant_with_batch()
    review = open_batch_review(people)
    services.trail_review_mark(
        actor=A(people["reviewer"]), review=review, entry_ids=[r[0] for r in review.flagged]
    )
    services.trail_review_sign(
        actor=A(people["reviewer"]), signer=sign(people["reviewer"], "reviewed"), review=review
    )
    with pytest.raises(TrailReviewRefused) as refused:
        services.trail_review_mark(
            actor=A(people["approver"]), review=review, entry_ids=[review.flagged[0][0]]
        )
    assert codes(refused) == ["ALREADY_SIGNED"]
    with pytest.raises(TrailReviewRefused) as refused:
        services.trail_review_sign(
            actor=A(people["approver"]), signer=sign(people["approver"], "reviewed"), review=review
        )
    assert codes(refused) == ["ALREADY_SIGNED"]
    assert Signature.objects.filter(record_type="auditreview.trailreview").count() == 1


def test_marking_refuses_an_entry_not_flagged_one_marked_already_and_ones_own_and_writes_nothing() -> None:
    configure(**ALL_DAY)
    reviewer, approver = make_user("reviewer", ["qa_reviewer"]), make_user("approver", ["qa_approver"])
    # The reviewer's own failed signature, in the trail under their name.
    with pytest.raises(SignatureRefused):
        signer_authenticate(
            request=station(reviewer), username="reviewer", password="wrong", meaning="reviewed"
        )
    review = services.trail_review_open(actor=A(approver), scope=Scope.USER, username="reviewer")
    failed = [pk for pk, tier, _why in review.flagged if tier == trail.FAILED_SIGNATURE]
    assert len(failed) == 1
    unflagged = next(i for i in trail.id_expand(review.entries) if i not in {r[0] for r in review.flagged})
    before = AuditEntry.objects.count()
    with pytest.raises(TrailReviewRefused) as refused:
        services.trail_review_mark(actor=A(reviewer), review=review, entry_ids=[failed[0], unflagged])
    assert codes(refused) == ["NOT_FLAGGED", "OWN_ENTRY"]
    assert "another person reviews it" in str(refused.value)
    assert AuditEntry.objects.count() == before
    services.trail_review_mark(
        actor=A(approver), review=review, entry_ids=failed, comment="Typing error, said so."
    )
    with pytest.raises(TrailReviewRefused, match="marked reviewed already, by Approver Person"):
        services.trail_review_mark(actor=A(approver), review=review, entry_ids=failed)


def test_entries_outside_the_working_hours_in_force_need_attention_and_the_review_says_which_hours() -> None:
    reviewer = make_user("reviewer", ["qa_reviewer"])
    configure(**ALL_DAY)
    first = services.trail_review_open(actor=A(reviewer), scope=Scope.USER, username="test-setup")
    assert first.flagged == []  # the set-up's own entries are the system's, and in working hours anyway
    # A span of an hour that begins two hours from now: an entry just made by a person is outside it.
    now = timezone.localtime(timezone.now(), selectors_zone())
    start = (now + dt.timedelta(hours=2)).strftime("%H:00")
    end = (now + dt.timedelta(hours=3)).strftime("%H:00")
    configure(working_hours=f"{start}-{end}", working_days="mon,tue,wed,thu,fri,sat,sun")
    review = services.trail_review_open(actor=A(reviewer), scope=Scope.USER, username="reviewer")
    opened = AuditEntry.objects.get(record_type="auditreview.trailreview", record_id=str(first.pk))
    assert review.entry_count == 1 and review.flagged == [
        [
            opened.pk,
            trail.OUT_OF_HOURS,
            [
                f"Made {timezone.localtime(opened.at, selectors_zone()):%a %H:%M}, outside working hours "
                f"(Mon, Tue, Wed, Thu, Fri, Sat, Sun, {start}–{end})"
            ],
        ]
    ]
    assert review.hours.startswith(
        f"Mon, Tue, Wed, Thu, Fri, Sat, Sun, {start}–{end} (GMP configuration version "
    )
    # The system's entries are never out of hours: nobody chose when they were made.
    system = services.trail_review_open(actor=A(reviewer), scope=Scope.USER, username="test-setup")
    assert system.flagged == []


def selectors_zone():
    from batchline.equipment.selectors import display_zone

    return display_zone()


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"scope": "batch", "batch_number": "NOPE"}, "NO_SUCH_BATCH"),
        ({"scope": "batch"}, "BATCH_REQUIRED"),
        ({"scope": "period", "since": dt.date(2026, 1, 1)}, "PERIOD_REQUIRED"),
        ({"scope": "record_type"}, "RECORD_TYPE_REQUIRED"),
        ({"scope": "user"}, "USER_REQUIRED"),
        ({"scope": "user", "username": "nobody-at-all"}, "EMPTY_SCOPE"),
        ({"scope": "everything"}, "UNKNOWN_SCOPE"),
        ({"scope": "period", "since": dt.date(2026, 2, 1), "until": dt.date(2026, 1, 1)}, "PERIOD_BACKWARDS"),
    ],
)
def test_a_scope_that_names_nothing_to_review_is_refused_in_words(kwargs, code) -> None:
    reviewer = make_user("reviewer", ["qa_reviewer"])
    with pytest.raises(TrailReviewRefused) as refused:
        services.trail_review_open(actor=A(reviewer), **kwargs)
    assert codes(refused) == [code]
    assert not TrailReview.objects.exists()


def test_a_period_scope_holds_exactly_the_entries_of_its_days() -> None:
    configure(**ALL_DAY)
    reviewer = make_user("reviewer", ["qa_reviewer"])
    today = timezone.localdate(timezone.now(), selectors_zone())
    before = AuditEntry.objects.count()
    review = services.trail_review_open(actor=A(reviewer), scope=Scope.PERIOD, since=today, until=today)
    assert review.entry_count == before  # every entry of this test was made today
    assert review.scope_text == f"period {today} to {today}"
    yesterday = today - dt.timedelta(days=1)
    with pytest.raises(TrailReviewRefused) as refused:
        services.trail_review_open(actor=A(reviewer), scope=Scope.PERIOD, since=yesterday, until=yesterday)
    assert codes(refused) == ["EMPTY_SCOPE"]


@pytest.mark.req("P11-01", "P11-14")
def test_the_signature_binds_the_scope_and_every_mark_and_the_trail_verifies() -> None:
    people, _recipe, _batch = plant_with_batch()
    review = open_batch_review(people)
    services.trail_review_mark(
        actor=A(people["reviewer"]), review=review, entry_ids=[r[0] for r in review.flagged], comment="ok"
    )
    services.trail_review_sign(
        actor=A(people["reviewer"]), signer=sign(people["reviewer"], "reviewed"), review=review
    )
    signature = Signature.objects.get(record_type="auditreview.trailreview")
    review.refresh_from_db()
    marks = list(TrailReviewMark.objects.filter(review=review).order_by("entry_id"))
    content = services.review_content(review, marks)
    assert signature_intact(signature, content)
    assert not signature_intact(
        signature, {**content, "marks": [[*m[:2], "changed", m[3]] for m in content["marks"]]}
    )
    assert not signature_intact(signature, {**content, "entries_sha256": "0" * 64})
    assert json.dumps(content)  # plain data, as the archive and verifier need
    # The review, its marks and its signature replay against the trail like every GMP record.
    report = verify()
    assert report.ok, [str(f) for f in report.findings]


def test_the_report_says_which_batch_trails_and_periodic_reviews_are_done_and_overdue() -> None:
    people, recipe, batch = plant_with_batch()
    run_batch(people, recipe, "B-2", weight="600")
    release(people, batch)  # released without a review of its trail
    now = timezone.now()
    report = selectors.report(now=now)
    assert {b.batch.number: b.status for b in report.batches} == {"B-1": "overdue", "B-2": "due"}
    assert report.overdue_batches == 1
    assert report.last_periodic is None and not report.periodic_overdue  # a new installation: due in 30 days
    assert selectors.report(now=now + dt.timedelta(days=31)).periodic_overdue

    review = open_batch_review(people, "B-2")
    services.trail_review_mark(
        actor=A(people["reviewer"]), review=review, entry_ids=[r[0] for r in review.flagged]
    )
    services.trail_review_sign(
        actor=A(people["reviewer"]), signer=sign(people["reviewer"], "reviewed"), review=review
    )
    late = open_batch_review(people, "B-1")
    services.trail_review_mark(
        actor=A(people["approver"]), review=late, entry_ids=[r[0] for r in late.flagged]
    )
    services.trail_review_sign(
        actor=A(people["approver"]), signer=sign(people["approver"], "reviewed"), review=late
    )
    today = timezone.localdate(timezone.now(), selectors_zone())
    period = services.trail_review_open(
        actor=A(people["reviewer"]), scope=Scope.PERIOD, since=today, until=today
    )
    services.trail_review_mark(
        actor=A(people["approver"]),
        review=period,
        entry_ids=[
            pk
            for pk, _t, _w in period.flagged
            if AuditEntry.objects.get(pk=pk).actor_id != people["approver"].pk
        ],
    )
    own = [
        pk for pk, _t, _w in period.flagged if AuditEntry.objects.get(pk=pk).actor_id == people["approver"].pk
    ]
    if own:
        services.trail_review_mark(actor=A(people["reviewer"]), review=period, entry_ids=own)
    signed = services.trail_review_sign(
        actor=A(people["reviewer"]), signer=sign(people["reviewer"], "reviewed"), review=period
    )
    report = selectors.report(now=timezone.now())
    assert {b.batch.number: b.status for b in report.batches} == {
        "B-1": "reviewed after release",
        "B-2": "reviewed",
    }
    assert report.last_periodic == signed and not report.periodic_overdue
    assert report.periodic_due == signed.signed_at + dt.timedelta(days=30)
    assert selectors.report(now=signed.signed_at + dt.timedelta(days=31)).periodic_overdue
