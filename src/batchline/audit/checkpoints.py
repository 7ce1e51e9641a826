"""Signed checkpoints of the audit trail (21 CFR 11.10(a), (e); Annex 11 §7, §9).

A hash chain alone proves nothing against someone who can write to the
database: they can rewrite an entry and recompute every hash after it, or cut
off the newest entries. A checkpoint records where every chain stands (its
last position and hash) and the total, links to the checkpoint before it, and
is signed with the installation key, which is not in the database
(``batchline/keys.py``). It is kept in the database and also written to every
anchor outside it (``audit/anchors.py``). ``audit verify`` then holds the
database to the newest anchored checkpoint: a rewritten chain no longer
matches the signed hashes, a truncated one ends before the signed positions,
and a restored older database lacks checkpoints the anchor holds.

The payload is canonical JSON (sorted keys, no spaces), signed as UTF-8; its
format is versioned by the ``format`` member, so an inspector's own script can
check it with any Ed25519 implementation.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from batchline import keys
from batchline.rules.hashchain import GENESIS

from .anchors import Anchor, Anchored, AnchorProblem, configured_anchors
from .chain import CHAINS
from .models import Checkpoint

FORMAT = "batchline.checkpoint/1"
_LOCK_KEY = 0x6261_7463_6B70  # serialises checkpoint numbering on PostgreSQL


def chain_heads() -> dict[int, tuple[int, str]]:
    """Every chain that has entries: its last position and that entry's hash, as committed."""
    heads = {}
    with connection.cursor() as cursor:
        for chain in range(CHAINS):
            cursor.execute(
                "SELECT seq, hash FROM audit_auditentry WHERE chain = %s ORDER BY seq DESC LIMIT 1", [chain]
            )
            row = cursor.fetchone()
            if row:
                heads[chain] = (int(row[0]), str(row[1]))
    return heads


def payload_text(
    *,
    number: int,
    at: dt.datetime,
    heads: dict[int, tuple[int, str]],
    prev: str,
    key_fingerprint: str,
    recovery: dict[str, Any] | None = None,
) -> str:
    data = {
        "format": FORMAT,
        "number": number,
        "at": at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "entries": sum(seq for seq, _ in heads.values()),
        "heads": [[chain, seq, hash_] for chain, (seq, hash_) in sorted(heads.items())],
        "prev": prev,
        "key": key_fingerprint,
    }
    if recovery is not None:
        data["recovery"] = recovery
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class Signed:
    """A checkpoint's signed payload, parsed; from the database or from an anchor."""

    number: int
    payload: str
    signature: str
    key_fingerprint: str

    @property
    def data(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.payload)
        return parsed

    @property
    def hash(self) -> str:
        return hashlib.sha256(self.payload.encode()).hexdigest()

    def abandons(self) -> tuple[int, int] | None:
        """For a recovery checkpoint: the anchored checkpoints it declares lost with the restored-over data."""
        recovery = self.data.get("recovery")
        if not recovery:
            return None
        first, last = recovery["abandons"]
        return int(first), int(last)

    def heads(self) -> dict[int, tuple[int, str]]:
        return {int(c): (int(s), str(h)) for c, s, h in self.data["heads"]}

    def signature_valid(self, public_key_pem: bytes) -> bool:
        try:
            signature = base64.b64decode(self.signature, validate=True)
        except ValueError:
            return False
        return keys.verify(public_key_pem, self.payload.encode(), signature)

    def anchored(self) -> Anchored:
        return Anchored(self.number, self.payload, self.signature, self.key_fingerprint)

    @classmethod
    def of(cls, checkpoint: Checkpoint | Anchored) -> Signed:
        return cls(checkpoint.number, checkpoint.payload, checkpoint.signature, checkpoint.key_fingerprint)


@dataclass
class Made:
    checkpoint: Checkpoint
    anchor_problems: list[str]


def checkpoint_create(
    *,
    key: keys.InstallationKey | None = None,
    anchors: Sequence[Anchor] | None = None,
    recovery: dict[str, Any] | None = None,
    number: int | None = None,
) -> Made:
    """Sign where every chain stands now, store it, then write it (and any not yet anchored) to the anchors.

    The database row commits first: an anchor that is down must not stop the
    trail being checkpointed, and the next run writes what it missed. The
    anchors' problems are returned for the caller to raise as an alert.
    """
    key = key or keys.installation_key()
    fingerprint = keys.fingerprint(key.public_key_pem())
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])
        last = Checkpoint.objects.order_by("-number").first()
        number = number or (last.number + 1 if last else 1)
        at = timezone.now()
        heads = chain_heads()
        text = payload_text(
            number=number,
            at=at,
            heads=heads,
            prev=last.hash if last else GENESIS,
            key_fingerprint=fingerprint,
            recovery=recovery,
        )
        checkpoint = Checkpoint(
            number=number,
            at=at,
            entries=sum(seq for seq, _ in heads.values()),
            payload=text,
            hash=hashlib.sha256(text.encode()).hexdigest(),
            signature=base64.b64encode(key.sign(text.encode())).decode(),
            key_fingerprint=fingerprint,
        )
        checkpoint.save()
    return Made(checkpoint, anchor_pending(configured_anchors() if anchors is None else anchors))


def anchor_pending(anchors: Sequence[Anchor]) -> list[str]:
    """Write to each anchor the checkpoints it does not hold yet, oldest first; the problems met."""
    problems = []
    newest = Checkpoint.objects.order_by("-number").first()
    if newest is None:
        return []
    for anchor in anchors:
        try:
            if anchor.readable:
                held = anchor.newest()
                after = held.number if held else 0
                pending = Checkpoint.objects.filter(number__gt=after).order_by("number")
            else:
                pending = Checkpoint.objects.filter(pk=newest.pk)
            for checkpoint in pending:
                anchor.write(Signed.of(checkpoint).anchored())
        except AnchorProblem as exc:
            problems.append(str(exc))
    return problems


def checkpoint_due(interval: dt.timedelta) -> bool:
    """Whether the trail moved since the newest checkpoint and that is at least ``interval`` old."""
    last = Checkpoint.objects.order_by("-number").first()
    heads = chain_heads()
    if last is None:
        return bool(heads)
    if timezone.now() - last.at < interval:
        return False
    return Signed.of(last).heads() != heads


class NothingToRecover(Exception):
    """The database already extends every anchor: there is no gap to account for."""


def recovery_record(*, actor: Any, reason: str, anchors: Sequence[Anchor] | None = None) -> Made:
    """Account, on the record, for a database restored from a backup older than the anchors.

    After an authorised recovery the anchors rightly hold checkpoints the
    restored database lacks, and ``audit verify`` says so until this is done.
    A person (QA) states why; an audit entry names them, and a checkpoint
    numbered after the anchors' newest is signed, declaring the checkpoints
    between the database's newest and the anchors' newest abandoned. It is
    written to every anchor, so the anchors themselves record the recovery.
    Someone who can write to the database but has not got the key cannot make
    one; and a recovery is never silent: it raises a security alert.
    """
    from .services import audit_append

    anchors = configured_anchors() if anchors is None else anchors
    if not reason.strip():
        raise ValueError("a recovery needs a reason: which backup was restored, why, and under which change")
    anchored = 0
    for anchor in anchors:
        if anchor.readable:
            held = anchor.newest()  # AnchorProblem goes to the caller: a recovery needs every anchor read
            anchored = max(anchored, held.number if held else 0)
    last = Checkpoint.objects.order_by("-number").first()
    newest = last.number if last else 0
    if anchored <= newest:
        raise NothingToRecover(
            f"the database's newest checkpoint ({newest or 'none'}) is as new as every anchor's: nothing to recover"
        )
    recovery = {"abandons": [newest + 1, anchored], "reason": reason.strip(), "by": actor.username}
    with transaction.atomic():
        audit_append(
            actor=actor,
            action="recovery",
            record_type="audit.trail",
            record_id="all",
            changes={"abandons": [None, f"{newest + 1}-{anchored}"]},
            reason=reason,
        )
        made = checkpoint_create(anchors=[], recovery=recovery, number=anchored + 1)
    made.anchor_problems = anchor_pending(anchors)  # once committed, as every checkpoint
    return made
