"""Canonical values: the same logical value always hashes the same."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from batchline.rules import canonical


@pytest.mark.req("P11-05", "NFR-02")
def test_datetimes_become_utc_with_microseconds() -> None:
    zurich = zoneinfo.ZoneInfo("Europe/Zurich")
    value = dt.datetime(2026, 11, 24, 15, 5, 0, 12, tzinfo=zurich)
    assert canonical.normalise(value) == "2026-11-24T14:05:00.000012Z"


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        canonical.normalise(dt.datetime(2026, 1, 1))


def test_decimals_keep_their_scale() -> None:
    assert canonical.normalise(Decimal("1.500")) == "1.500"


def test_dumps_is_order_independent_and_compact() -> None:
    assert canonical.dumps({"b": 1, "a": [True, None]}) == '{"a":[true,null],"b":1}'
    assert canonical.dumps({"a": 1, "b": 2}) == canonical.dumps({"b": 2, "a": 1})


def test_unknown_types_are_refused() -> None:
    with pytest.raises(TypeError):
        canonical.normalise(object())


@pytest.mark.req("P11-05")
def test_diff_lists_old_and_new_of_changed_fields_only() -> None:
    assert canonical.diff({"a": 1, "b": 2}, {"a": 1, "b": 3, "c": None}) == {"b": [2, 3]}
    assert canonical.diff({"a": 1}, {"a": 1}) == {}


@given(st.dictionaries(st.text(max_size=5), st.one_of(st.integers(), st.text(), st.booleans(), st.none())))
def test_dumps_round_trips_plain_json(value: dict) -> None:
    import json

    assert json.loads(canonical.dumps(value)) == value
