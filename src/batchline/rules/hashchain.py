"""The audit trail's hash chain (21 CFR 11.10(a) and (e); Annex 11 §9).

Each entry has a content digest, SHA-256 over the canonical serialisation of
what it says, and a hash, SHA-256 over the ASCII text of its predecessor's hash
followed by its own content digest. The link step is that simple on purpose:
PostgreSQL computes it inside the append function (``audit/chain.py``) with
its built-in ``sha256``, saving a round trip per audited write, and the test
suite holds both sides to the same result. Changing, deleting or re-ordering any entry
changes every hash after it, so one pass from the first entry finds the first
place where the stored chain and the recomputed chain part.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

GENESIS = "0" * 64

# The order of fields in the hashed payload. Changing it breaks every existing
# chain, so it is versioned: a new layout would get a new prefix.
LAYOUT = "v1"


@dataclass(frozen=True, slots=True)
class EntryContent:
    """What an audit entry says, in canonical text form."""

    at: str  # ISO 8601 UTC, microseconds, "Z"
    actor_id: int | None
    actor_username: str
    actor_name: str
    action: str
    record_type: str
    record_id: str
    changes: str  # canonical JSON text
    reason: str
    via: str

    def fields(self) -> Fields:
        return (
            self.at,
            self.actor_id,
            self.actor_username,
            self.actor_name,
            self.action,
            self.record_type,
            self.record_id,
            self.changes,
            self.reason,
            self.via,
        )


# An entry's content as a plain tuple in EntryContent's field order: what
# verification reads straight from the database, without building objects.
Fields = tuple[str, int | None, str, str, str, str, str, str, str, str]

_quote = json.encoder.encode_basestring  # the JSON encoder's own string escaping, in C


def payload(fields: Fields) -> bytes:
    """``json.dumps([LAYOUT, *fields], separators=(",", ":"), ensure_ascii=False)``, as UTF-8.

    Written out by hand because it runs once per entry when a million entries
    are verified; a test holds it equal to ``json.dumps`` for any input.
    """
    actor_id = fields[1]
    parts = [
        _quote(LAYOUT),
        _quote(fields[0]),
        "null" if actor_id is None else str(int(actor_id)),
    ]
    parts.extend(map(_quote, fields[2:]))
    return ("[" + ",".join(parts) + "]").encode()


def content_digest(content: EntryContent | Fields) -> str:
    fields = content.fields() if isinstance(content, EntryContent) else content
    return hashlib.sha256(payload(fields)).hexdigest()


def link(prev_hash: str, digest: str) -> str:
    return hashlib.sha256((prev_hash + digest).encode("ascii")).hexdigest()


def entry_hash(prev_hash: str, content: EntryContent | Fields) -> str:
    return link(prev_hash, content_digest(content))


@dataclass(frozen=True, slots=True)
class ChainBreak:
    entry_id: int
    problem: str

    def __str__(self) -> str:
        return f"audit entry #{self.entry_id}: {self.problem}"


@dataclass(slots=True)
class Head:
    """Where a chain stands: its last position, that entry's hash and time."""

    seq: int = 0
    hash: str = GENESIS
    at: str = ""


# (id, chain, seq, prev_hash, hash, content) in id order.
Row = tuple[int, int, int, str, str, "EntryContent | Fields"]


def _seconds_between(earlier: str, later: str) -> float:
    parse = dt.datetime.fromisoformat
    return (parse(later) - parse(earlier)).total_seconds()


def verify(
    rows: Iterable[Row], *, heads: dict[int, Head] | None = None, clock_tolerance: float = 120.0
) -> Iterator[ChainBreak]:
    """Yield every break in the rows of one or more chains, given in entry id order.

    Within a chain the positions run 1, 2, 3, ... without a hole, each entry
    links to the one before, its content matches its hash, and its time does
    not run more than ``clock_tolerance`` seconds behind its predecessor's
    (writers stamp an entry before they take the chain, so a little
    disorder is normal). ``heads`` is filled with where each chain ends.
    After a break the check carries on from the stored values, so one tampered
    entry is reported once rather than poisoning everything after it.
    """
    heads = {} if heads is None else heads
    last_id = 0
    sha256 = hashlib.sha256
    for entry_id, chain, seq, prev_hash, stored_hash, content in rows:
        fields = content.fields() if isinstance(content, EntryContent) else content
        head = heads.get(chain)
        if head is None:
            head = heads[chain] = Head()
        if entry_id <= last_id:
            yield ChainBreak(entry_id, "out of order")  # rows must come in id order
        if seq > head.seq + 1:
            missing = (
                f"position {head.seq + 1}" if seq == head.seq + 2 else f"positions {head.seq + 1}-{seq - 1}"
            )
            yield ChainBreak(
                entry_id, f"chain {chain} lacks {missing} before this entry: entries were removed"
            )
        elif seq <= head.seq:
            yield ChainBreak(
                entry_id, f"chain {chain} position {seq} comes after position {head.seq}: entries were moved"
            )
        elif prev_hash != head.hash:
            yield ChainBreak(
                entry_id,
                "does not follow its predecessor "
                f"(points at {prev_hash[:12]}…, predecessor is {head.hash[:12]}…): "
                "an entry before it was changed, removed or moved",
            )
        digest = sha256(payload(fields)).hexdigest()
        if sha256((prev_hash + digest).encode("ascii")).hexdigest() != stored_hash:
            yield ChainBreak(entry_id, "content does not match its hash: the entry was changed")
        at = fields[0]
        if at < head.at and (behind := _seconds_between(at, head.at)) > clock_tolerance:
            yield ChainBreak(
                entry_id,
                f"its time {at} runs {behind:.0f} s behind the entry before it on chain {chain} "
                f"({head.at}), more than the {clock_tolerance:.0f} s tolerated: "
                "the clock was set back or the entry was back-dated",
            )
        head.seq, head.hash, head.at = seq, stored_hash, at
        last_id = entry_id
