"""Which audit entries the trail's reviewer reads first, and why (rules/trail.py): no database."""

from __future__ import annotations

import datetime as dt

import pytest

from batchline.rules import trail

pytestmark = pytest.mark.req("A11-13", "A11D-03")

HOURS = trail.working_hours("06:00-22:00", "mon,tue,wed,thu,fri")
MONDAY_NOON = dt.datetime(2026, 12, 7, 12, 0, tzinfo=dt.UTC)


def facts(action: str, **kw) -> trail.EntryFacts:
    return trail.EntryFacts(
        id=kw.pop("id", 1),
        action=action,
        record_type=kw.pop("record_type", "execution.stepvalue"),
        local_time=kw.pop("local_time", MONDAY_NOON),
        changes=kw.pop("changes", {}),
        **kw,
    )


def test_an_ordinary_entry_in_working_hours_needs_no_attention() -> None:
    assert trail.attention(facts("create", changes={"value": [None, "1"]}), hours=HOURS) is None
    assert trail.attention(facts("complete", changes={"state": ["running", "complete"]}), hours=HOURS) is None


@pytest.mark.parametrize(
    ("action", "tier", "words"),
    [
        ("signature_failed", trail.FAILED_SIGNATURE, "wrong user ID or password"),
        ("sign_as_other_refused", trail.FAILED_SIGNATURE, "sign as another person"),
        ("login_failed", trail.SECURITY, "failed login"),
        ("lockout", trail.SECURITY, "account was locked"),
        ("station_refused", trail.SECURITY, "no registered station"),
        ("refused_after_release", trail.SECURITY, "already released or rejected"),
    ],
)
def test_failed_signatures_and_security_events_need_attention_in_words(action, tier, words) -> None:
    found = trail.attention(facts(action, record_type="accounts.user"), hours=HOURS)
    assert found is not None and found.tier == tier
    assert words in found.why[0]


def test_a_correction_and_a_change_after_first_entry_name_what_changed() -> None:
    corrected = trail.attention(facts("correct", changes={"value": [None, "604"]}), hours=HOURS)
    assert corrected is not None and corrected.tier == trail.CHANGE
    assert corrected.why == ("A recorded value was corrected (the original stays readable beside it)",)
    changed = trail.attention(
        facts("update", changes={"name": ["Old", "New"], "note": [None, "x"]}), hours=HOURS
    )
    assert changed is not None and changed.tier == trail.CHANGE
    assert changed.why == ("A value was changed after it was first entered: name",)
    # An "update" that only fills what was empty changes no earlier value.
    assert trail.attention(facts("update", changes={"note": [None, "x"]}), hours=HOURS) is None


def test_a_refused_attempt_and_an_exception_on_the_floor_need_attention() -> None:
    refused = trail.attention(
        facts(
            "create", record_type="execution.batchexception", changes={"code": [None, "REFUSED_LOT_EXPIRED"]}
        ),
        hours=HOURS,
    )
    assert refused is not None and refused.tier == trail.REFUSAL
    assert refused.why == ("A refused attempt on the floor (REFUSED_LOT_EXPIRED)",)
    raised = trail.attention(
        facts(
            "create", record_type="execution.batchexception", changes={"code": [None, "MANUAL_WEIGHT_ENTRY"]}
        ),
        hours=HOURS,
    )
    assert raised is not None and raised.why == ("An exception was recorded (MANUAL_WEIGHT_ENTRY)",)


def test_a_persons_entry_outside_working_hours_needs_attention_the_systems_does_not() -> None:
    night = dt.datetime(2026, 12, 7, 23, 30, tzinfo=dt.UTC)
    sunday = dt.datetime(2026, 12, 6, 12, 0, tzinfo=dt.UTC)
    for when, day in ((night, "Mon 23:30"), (sunday, "Sun 12:00")):
        found = trail.attention(facts("create", local_time=when), hours=HOURS)
        assert found is not None and found.tier == trail.OUT_OF_HOURS
        assert found.why == (f"Made {day}, outside working hours (Mon, Tue, Wed, Thu, Fri, 06:00–22:00)",)
        assert trail.attention(facts("create", local_time=when, by_person=False), hours=HOURS) is None
    # The span's end is not in it; its start is.
    assert not HOURS.covers(dt.datetime(2026, 12, 7, 22, 0))
    assert HOURS.covers(dt.datetime(2026, 12, 7, 6, 0))


def test_a_night_shift_spans_midnight_and_24_00_ends_the_day() -> None:
    night = trail.working_hours("22:00-06:00", "mon")
    assert night.covers(dt.datetime(2026, 12, 7, 23, 0)) and night.covers(dt.datetime(2026, 12, 7, 5, 59))
    assert not night.covers(dt.datetime(2026, 12, 7, 12, 0))
    whole = trail.working_hours("00:00-24:00", "mon,tue,wed,thu,fri,sat,sun")
    assert whole.covers(dt.datetime(2026, 12, 6, 23, 59, 59)) and whole.text().endswith("00:00–24:00")


@pytest.mark.parametrize(
    ("hours", "days", "words"),
    [
        ("6-22", "mon", "is not a span of the day"),
        ("06:00-06:00", "mon", "empty span"),
        ("06:00-24:30", "mon", "a day ends at 24:00"),
        ("06:00-22:00", "mon,funday", "'fun' is not a day"),
        ("06:00-22:00", " , ", "at least one working day"),
    ],
)
def test_working_hours_that_are_no_hours_are_refused_in_words(hours, days, words) -> None:
    with pytest.raises(ValueError, match=words):
        trail.working_hours(hours, days)


def test_several_reasons_are_all_said_and_the_most_urgent_tier_orders() -> None:
    night = dt.datetime(2026, 12, 7, 2, 0, tzinfo=dt.UTC)
    found = trail.attention(facts("signature_failed", local_time=night), hours=HOURS)
    assert found is not None and found.tier == trail.FAILED_SIGNATURE and len(found.why) == 2
    order = trail.reading_order(
        [
            (5, trail.Attention(trail.OUT_OF_HOURS, ("x",))),
            (9, trail.Attention(trail.FAILED_SIGNATURE, ("x",))),
            (3, trail.Attention(trail.CHANGE, ("x",))),
            (2, trail.Attention(trail.FAILED_SIGNATURE, ("x",))),
        ]
    )
    assert [pk for pk, _ in order] == [2, 9, 3, 5]


def test_entry_ids_are_stored_as_ranges_and_read_back_whole() -> None:
    ids = [1, 2, 3, 7, 9, 10, 11, 40]
    assert trail.id_ranges(reversed(ids)) == "1-3,7,9-11,40"
    assert trail.id_expand("1-3,7,9-11,40") == ids
    assert trail.id_ranges([]) == "" and trail.id_expand("") == []
