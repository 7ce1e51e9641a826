"""The gateway's disk spool alone: bounded, oldest dropped first, every loss counted and remembered."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from batchline.gateway import store
from batchline.gateway.spool import Spool

from .conftest import T0, minute_readings


@pytest.mark.req("DI-06", "A11-20")
def test_rows_come_back_as_they_went_in_oldest_first_and_go_only_when_removed(tmp_path: Path) -> None:
    rows = store.rows_of(minute_readings(5))
    spool = Spool(tmp_path / "g.spool.sqlite3", max_rows=100)
    spool.put(rows[:3])
    spool.put(rows[3:])
    last_id, first = spool.peek(2)
    assert first == rows[:2] and len(spool) == 5
    spool.remove_upto(last_id)
    assert spool.peek(10)[1] == rows[2:] and len(spool) == 3


@pytest.mark.req("DI-06", "A11-17")
def test_a_full_spool_drops_the_oldest_counts_them_and_remembers_it_after_a_restart(tmp_path: Path) -> None:
    rows = store.rows_of(minute_readings(8))
    path = tmp_path / "g.spool.sqlite3"
    spool = Spool(path, max_rows=5)
    assert spool.put(rows[:4]) == 0
    assert spool.put(rows[4:], now=T0) == 3
    assert spool.peek(10)[1] == rows[3:]  # the five newest
    spool.close()
    again = Spool(path, max_rows=5)
    assert len(again) == 5
    losses = again.losses()
    assert (losses.dropped, losses.reported, losses.unreported, losses.last_at) == (3, 0, 3, T0)
    again.losses_reported(3)
    assert again.losses().unreported == 0
    assert again.put(store.rows_of(minute_readings(1, start=T0 + dt.timedelta(days=1)))) == 1
    assert again.losses().unreported == 1
