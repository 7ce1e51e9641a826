"""Field changes in words, ranked by importance: the machinery recipes and master data share (MBR-02)."""

from __future__ import annotations

import pytest

from batchline.rules.changes import FieldWords, Tier, describe_fields

MATERIAL = {
    "shelf_life_days": FieldWords("shelf life", Tier.LIMIT, "days"),
    "unit": FieldWords("unit", Tier.LIMIT),
    "storage": FieldWords("storage conditions", Tier.RESOURCE),
    "name": FieldWords("name", Tier.TEXT),
}


@pytest.mark.req("MBR-02", "VAL-06")
def test_the_most_important_change_comes_first_with_its_unit() -> None:
    got = describe_fields(
        {"name": ("Maize starch", "Maize starch, dried"), "shelf_life_days": ("730", "365")},
        MATERIAL,
        subject="Material STARCH",
    )
    assert [(d.tier, d.words) for d in got] == [
        (Tier.LIMIT, "Material STARCH: shelf life changed from 730 days to 365 days"),
        (Tier.TEXT, "Material STARCH: name changed from 'Maize starch' to 'Maize starch, dried'"),
    ]
    assert [d.field for d in got] == ["shelf_life_days", "name"]


def test_a_value_set_or_removed_says_so() -> None:
    got = describe_fields({"storage": (None, "2–8 °C"), "shelf_life_days": (30, None)}, MATERIAL)
    assert [d.words for d in got] == [
        "Shelf life removed (was 30 days)",
        "Storage conditions set to '2–8 °C' (none before)",
    ]


def test_a_unit_change_shows_each_number_in_its_own_unit() -> None:
    fields = {"quantity": FieldWords("quantity", Tier.LIMIT, "kg", "g")}
    (d,) = describe_fields({"quantity": ("1.5", "1500")}, fields)
    assert d.words == "Quantity changed from 1.5 kg to 1500 g"


def test_yes_no_and_lists_read_as_what_changed() -> None:
    fields = {
        "verify": FieldWords("second person verifies", Tier.RESOURCE),
        "checks": FieldWords("checks", Tier.RESOURCE),
    }
    got = describe_fields({"verify": (True, False), "checks": (["a", "b"], ["b", "c"])}, fields, subject="S")
    assert [d.words for d in got] == [
        "S: second person verifies: no (was yes)",
        "S: checks: added 'c'; removed 'a'",
    ]


def test_an_unchanged_pair_is_left_out() -> None:
    assert describe_fields({"name": ("A", "A")}, MATERIAL) == []


def test_a_field_nobody_classified_is_ranked_first_not_hidden_among_texts() -> None:
    got = describe_fields({"name": ("A", "B"), "potency_basis": ("dry", "as is")}, MATERIAL)
    assert [(d.tier, d.field) for d in got] == [(Tier.LIMIT, "potency_basis"), (Tier.TEXT, "name")]
    assert got[0].words == "Potency basis changed from 'dry' to 'as is'"
