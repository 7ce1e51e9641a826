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


def chain(n: int) -> list[tuple[int, str, str, EntryContent]]:
    rows, prev = [], hashchain.GENESIS
    for i in range(1, n + 1):
        c = content(i)
        h = hashchain.entry_hash(prev, c)
        rows.append((i, prev, h, c))
        prev = h
    return rows


@pytest.mark.req("P11-01", "P11-05")
def test_an_untouched_chain_verifies() -> None:
    assert list(hashchain.verify(chain(50))) == []


@pytest.mark.req("P11-01")
def test_a_modified_entry_is_named() -> None:
    rows = chain(10)
    i, prev, h, c = rows[4]
    rows[4] = (i, prev, h, dataclasses.replace(c, changes='{"full_name":["A","Mallory"]}'))
    breaks = list(hashchain.verify(rows))
    assert [b.entry_id for b in breaks] == [5]
    assert "changed" in str(breaks[0])


@pytest.mark.req("P11-01")
def test_a_deleted_entry_is_found_at_its_successor() -> None:
    rows = chain(10)
    del rows[3]
    breaks = list(hashchain.verify(rows))
    assert [b.entry_id for b in breaks] == [5]
    assert "removed" in str(breaks[0])


@pytest.mark.req("P11-01")
def test_reordered_entries_are_found() -> None:
    rows = chain(10)
    # Swap the contents of entries 3 and 4, keeping their ids: history re-ordered.
    a, b = rows[2], rows[3]
    rows[2] = (a[0], *b[1:])
    rows[3] = (b[0], *a[1:])
    breaks = list(hashchain.verify(rows))
    assert breaks and breaks[0].entry_id == 3


@pytest.mark.req("P11-01")
def test_a_rewritten_entry_with_a_fresh_hash_still_breaks_the_next_link() -> None:
    rows = chain(10)
    i, prev, _, c = rows[4]
    forged = dataclasses.replace(c, actor_name="Somebody Else")
    rows[4] = (i, prev, hashchain.entry_hash(prev, forged), forged)
    breaks = list(hashchain.verify(rows))
    assert [b.entry_id for b in breaks] == [6]


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
