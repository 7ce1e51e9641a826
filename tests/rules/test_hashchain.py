"""The hash chain, without a database."""

from __future__ import annotations

import dataclasses
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from batchline.rules import hashchain
from batchline.rules.hashchain import EntryContent


def content(n: int) -> EntryContent:
    return EntryContent(
        at=f"2026-11-24T10:00:{n:02d}.000000Z",
        actor_id=7,
        actor_username="olga",
        actor_name="Olga Operator",
        action="update",
        record_type="accounts.user",
        record_id=str(n),
        changes='{"full_name":["A","B"]}',
        reason="",
        via="web",
    )


def chain(n: int, *, chains: int = 1) -> list[hashchain.Row]:
    """``n`` entries dealt round-robin onto ``chains`` chains, in id order."""
    rows: list[hashchain.Row] = []
    heads = {k: (0, hashchain.GENESIS) for k in range(chains)}
    for i in range(1, n + 1):
        k = i % chains
        seq, prev = heads[k]
        c = content(i)
        h = hashchain.entry_hash(prev, c)
        rows.append((i, k, seq + 1, prev, h, c))
        heads[k] = (seq + 1, h)
    return rows


@pytest.mark.req("P11-01", "P11-05")
def test_an_untouched_chain_verifies() -> None:
    assert list(hashchain.verify(chain(50))) == []


@pytest.mark.req("P11-01")
def test_a_modified_entry_is_named() -> None:
    rows = chain(10)
    i, k, seq, prev, h, c = rows[4]
    rows[4] = (i, k, seq, prev, h, dataclasses.replace(c, changes='{"full_name":["A","Mallory"]}'))
    breaks = list(hashchain.verify(rows))
    assert [b.entry_id for b in breaks] == [5]
    assert "changed" in str(breaks[0])


@pytest.mark.req("P11-01")
def test_a_deleted_entry_is_found_at_its_successor() -> None:
    rows = chain(10)
    del rows[3]
    breaks = list(hashchain.verify(rows))
    assert [b.entry_id for b in breaks] == [5]
    assert "chain 0 lacks position 4 before this entry: entries were removed" in str(breaks[0])


@pytest.mark.req("P11-01")
def test_reordered_entries_are_found() -> None:
    rows = chain(10)
    # Swap the contents of entries 3 and 4, keeping their ids: history re-ordered.
    a, b = rows[2], rows[3]
    rows[2] = (a[0], a[1], a[2], *b[3:])
    rows[3] = (b[0], b[1], b[2], *a[3:])
    breaks = list(hashchain.verify(rows))
    assert breaks and breaks[0].entry_id == 3


@pytest.mark.req("P11-01")
def test_a_rewritten_entry_with_a_fresh_hash_still_breaks_the_next_link() -> None:
    rows = chain(10)
    i, k, seq, prev, _, c = rows[4]
    forged = dataclasses.replace(c, actor_name="Somebody Else")
    rows[4] = (i, k, seq, prev, hashchain.entry_hash(prev, forged), forged)
    breaks = list(hashchain.verify(rows))
    assert [b.entry_id for b in breaks] == [6]


@pytest.mark.req("P11-01", "A11-09")
def test_several_chains_verify_side_by_side_and_report_where_each_ends() -> None:
    heads: dict[int, hashchain.Head] = {}
    assert list(hashchain.verify(chain(40, chains=4), heads=heads)) == []
    assert {k: h.seq for k, h in heads.items()} == {0: 10, 1: 10, 2: 10, 3: 10}


@pytest.mark.req("P11-01", "A11-09")
def test_removed_entries_leave_a_named_gap_in_their_chain() -> None:
    rows = chain(40, chains=4)
    del rows[20:29]  # entries 21-29: positions 6-7 of three chains, 6-8 of chain 1
    breaks = list(hashchain.verify(rows))
    assert [b.entry_id for b in breaks] == [30, 31, 32, 33]
    assert "chain 2 lacks positions 6-7 before this entry: entries were removed" in str(breaks[0])
    assert "chain 1 lacks positions 6-8" in str(breaks[3])


@pytest.mark.req("P11-01", "DI-07")
def test_time_running_backwards_beyond_the_tolerance_is_a_finding() -> None:
    rows, prev = [], hashchain.GENESIS
    times = ["2026-11-24T10:00:00.000000Z", "2026-11-24T09:59:30.000000Z", "2026-11-24T09:50:00.000000Z"]
    for i, at in enumerate(times, 1):
        c = dataclasses.replace(content(i), at=at)
        h = hashchain.entry_hash(prev, c)
        rows.append((i, 0, i, prev, h, c))
        prev = h
    breaks = list(hashchain.verify(rows, clock_tolerance=60))
    assert [b.entry_id for b in breaks] == [3]
    assert "runs 570 s behind the entry before it on chain 0" in str(breaks[0])
    assert "back-dated" in str(breaks[0])


def test_every_field_is_covered_by_the_hash() -> None:
    base = content(1)
    original = hashchain.entry_hash(hashchain.GENESIS, base)
    for field in dataclasses.fields(EntryContent):
        value = getattr(base, field.name)
        changed = (value or 0) + 1 if isinstance(value, int) or value is None else value + "x"
        assert (
            hashchain.entry_hash(hashchain.GENESIS, dataclasses.replace(base, **{field.name: changed}))
            != original
        ), field.name


@given(
    st.one_of(st.none(), st.integers(min_value=-(2**63), max_value=2**63)),
    st.lists(st.text(), min_size=8, max_size=8),
)
def test_the_hand_written_payload_is_exactly_json(actor_id, texts: list[str]) -> None:
    fields = (texts[0], actor_id, *texts[1:], "web")
    expected = json.dumps([hashchain.LAYOUT, *fields], separators=(",", ":"), ensure_ascii=False)
    assert hashchain.payload(fields) == expected.encode()
