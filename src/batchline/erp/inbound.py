"""ERP inbound: the one entry point every transport calls, :func:`receive` (S95-02, A11-07).

``receive(body, transport=..., actor=...)`` reads a B2MML V0700 message (size
first, then a parser that expands nothing and fetches nothing, then the
schema), applies it through the services, keeps it as an
:class:`~batchline.erp.models.InboundMessage` and returns the :class:`Reply`: a
ConfirmBOD naming what was done or why not, and the state (applied, parked,
refused). The HTTPS endpoint, a watched folder and a NATS subject differ only
in how the bytes arrive and how the reply leaves.

Exactly one effect per message, identified by its ApplicationArea/BODID:

- the message row is inserted *first*, in the transaction that applies it; its
  BODID is unique in the database, so a second delivery of the same message
  (another door, the same moment) waits on that insert and fails there, and is
  answered with the stored reply once the first has committed: never a check
  followed by an insert that two could pass at once;
- a repeat gets the stored reply; a repeat whose body differs is refused in
  words and kept beside the first.

A message that needs what Batchline does not know yet is *parked* with the
keys it waits for (``handling.py``) and applied when one arrives: the apps that
make materials and recipes announce them (``batchline.arrivals``), on commit;
the worker's round (:func:`parked_due`) tries again what an announcement missed
and expires what waited longer than ``BATCHLINE_ERP_PARKED_HOURS`` into a refusal.

Every message is kept, refusals too (the record of a refused exchange, A11-07),
with its body as received (not above the size limit) and its SHA-256.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from batchline import arrivals
from batchline.accounts.backends import ModelBackend
from batchline.approvals.services import ChangeRefused
from batchline.audit.services import Actor, ReasonRequired, audit_together, record_create, record_update
from batchline.execution.models import Batch
from batchline.masterdata.imports import ImportRefused
from batchline.materials.models import Material
from batchline.recipes.models import MasterRecipe, RecipeStatus
from batchline.rules.verdict import Refused

from . import b2mml, material, orders
from .b2mml import Answer, Envelope
from .handling import Context, MessageRefused, Outcome, key_words
from .models import ErpOrder, InboundMessage, MessageState

log = logging.getLogger("batchline.erp")

SEND_PERMISSION = "erp.send_message"

HANDLERS: dict[str, Callable[[Context], Outcome]] = {
    "ProcessOperationsSchedule": orders.process,
    "ChangeOperationsSchedule": orders.change,
    "CancelOperationsSchedule": orders.cancel,
    "SyncMaterialDefinition": material.sync_material_definition,
    "SyncMaterialLot": material.sync_material_lot,
}


class NotAllowed(PermissionError):
    """The account may not send ERP messages; nothing was read or kept."""


class Busy(RuntimeError):
    """A record the message writes was written by someone else at the same moment: nothing was kept; send again."""


@dataclass(frozen=True)
class Reply:
    state: str  # applied, parked, refused, expired
    code: str  # the outcome as a stable code: APPLIED, WAITING, TOO_LARGE, NO_EFFECTIVE_RECIPE, …
    words: str
    xml: bytes  # the ConfirmBOD
    message_id: int | None
    repeat: bool = False


def _may_send(user_id: int | None) -> Any:
    """The active account with the interface's permission, or None: its row and permissions in one statement."""
    user = ModelBackend().get_user(user_id) if user_id else None
    return user if user is not None and user.has_perm(SEND_PERMISSION) else None


def _sender(actor: Actor) -> Any:
    user = _may_send(actor.id)
    if user is None:
        raise NotAllowed(
            f"The account {actor.username} may not send ERP messages ({SEND_PERMISSION}): it is the ERP "
            "interface's role. Nothing was read or kept."
        )
    return user


def interface_actor(user: Any, transport: str) -> Actor:
    """The interface account as the audited actor, through the door the message came by (``erp-https``)."""
    return Actor(
        id=user.pk,
        username=user.get_username(),
        name=user.printed_name,
        via=f"erp-{transport}"[:20],
    )


def receive(body: bytes, *, transport: str, actor: Actor) -> Reply:
    """Receive one message through ``transport`` from ``actor`` (the ERP interface's account).

    Raises :class:`NotAllowed` (nothing kept) when the account may not send, and
    :class:`Busy` (nothing kept) when what it writes was written by someone else
    at that moment; otherwise the message is kept and the reply says what became of it.
    """
    user = _sender(actor)
    actor = interface_actor(user, transport)
    now = timezone.now()
    env = b2mml.read(body, max_bytes=settings.BATCHLINE_ERP_MAX_BYTES)
    size = len(body)
    if env.code == "TOO_LARGE":
        body, sha = b"", ""  # not read, not kept: only its size and the refusal
    else:
        sha = hashlib.sha256(body).hexdigest()
    message = InboundMessage(
        bodid=env.bodid,
        transport=transport[:20],
        verb=env.verb,
        noun=env.noun,
        sender=env.sender,
        received_by=user,
        received_at=now,
        size=size,
        body_sha256=sha,
        body=body,
    )
    if env.bodid:
        first = InboundMessage.objects.filter(bodid=env.bodid, repeat_of__isnull=True).first()
        if first is not None:
            return _repeat(first, message, env, actor)
    inserted = False
    try:
        with transaction.atomic(), audit_together():
            if not env.ok:
                outcome = Outcome("refused", env.code, (env.problem,))
                _fill(message, outcome, env, now)
                record_create(message, actor=actor, action="message_refused", reason=env.problem)
                return _reply(message)
            record_create(message, actor=actor, action="message_received", reason=f"{env.root} {env.bodid}")
            inserted = True
            _settle(message, _run(Context(actor, message, env, body), sender_checked=True), env, actor, now)
    except IntegrityError:
        if inserted:  # written by the handler's services: a unique record taken meanwhile
            raise Busy(
                "What this message writes was written by someone else at the same moment; nothing was "
                "kept. Send it again (the same BODID): it is judged anew."
            ) from None
        # The same BODID, delivered through another door at the same moment, committed first.
        first = InboundMessage.objects.get(bodid=env.bodid, repeat_of__isnull=True)
        return _repeat(first, message, env, actor)
    return _reply(message)


def _reply(message: InboundMessage, *, repeat: bool = False) -> Reply:
    return Reply(
        state=message.state,
        code=message.code,
        words=message.reason,
        xml=message.reply.encode(),
        message_id=message.pk,
        repeat=repeat,
    )


def _repeat(first: InboundMessage, message: InboundMessage, env: Envelope, actor: Actor) -> Reply:
    """The stored reply for the same message again; a refusal, kept, for another body under its BODID."""
    if first.body_sha256 == message.body_sha256:
        log.info(
            "message %s received again through %s: the stored reply answers", env.bodid, message.transport
        )
        return _reply(first, repeat=True)
    earlier = first.conflicting_repeats.filter(body_sha256=message.body_sha256).first()
    if earlier is not None:
        return _reply(earlier, repeat=True)
    words = (
        f"BODID {env.bodid} names message {first.pk}, received {first.received_at:%Y-%m-%d %H:%M:%S} UTC, whose "
        f"content differs (SHA-256 {first.body_sha256[:16]}…, this one {message.body_sha256[:16]}…): a BODID "
        "names one message, so this one is not applied. Send a new message under a new BODID."
    )
    message.repeat_of = first
    outcome = Outcome("refused", "BODID_REUSED", (words,))
    with transaction.atomic(), audit_together():
        _fill(message, outcome, env, message.received_at)
        record_create(message, actor=actor, action="message_refused", reason=words)
    return _reply(message)


class _Undo(Exception):
    def __init__(self, outcome: Outcome) -> None:
        self.outcome = outcome


def _run(ctx: Context, *, sender_checked: bool = False) -> Outcome:
    """The handler's outcome; whatever it wrote is rolled back unless the message was applied.

    A parked message is judged again later: its account must still be allowed to send then.
    """
    if not sender_checked and _may_send(ctx.actor.id) is None:
        return Outcome(
            "refused", "NOT_ALLOWED", (f"The account {ctx.actor.username} may no longer send ERP messages.",)
        )
    try:
        with transaction.atomic():
            outcome = HANDLERS[ctx.env.root](ctx)
            if outcome.state != MessageState.APPLIED:
                raise _Undo(outcome)
    except _Undo as undo:
        return undo.outcome
    except MessageRefused as exc:
        return Outcome("refused", exc.code, tuple(exc.lines))
    except Refused as exc:
        return Outcome(
            "refused", exc.verdict.reasons[0].code if exc.verdict.reasons else "REFUSED", (str(exc),)
        )
    except (ChangeRefused, ImportRefused, ReasonRequired) as exc:
        return Outcome("refused", "REFUSED", (str(exc),))
    return outcome


def _expires(parked_at: dt.datetime) -> dt.datetime:
    return parked_at + dt.timedelta(hours=settings.BATCHLINE_ERP_PARKED_HOURS)


def _outcome_values(
    message: InboundMessage, outcome: Outcome, env: Envelope, now: dt.datetime
) -> dict[str, object]:
    """The message's outcome and its answer, as the values its record takes."""
    lines = list(outcome.lines)
    parked_at = message.parked_at
    if outcome.state == MessageState.PARKED:
        parked_at = parked_at or now
        waits = "; ".join(key_words(k) for k in outcome.waits_for)
        lines.append(
            f"Parked, waiting for {waits}: applied as soon as that is in Batchline, or refused if it is not by "
            f"{_expires(parked_at):%Y-%m-%d %H:%M} UTC."
        )
    xml = b2mml.confirm(Answer(outcome.state, outcome.code, lines), env, at=now)
    values: dict[str, object] = {
        "state": outcome.state,
        "code": outcome.code,
        "reason": " ".join(lines),
        "reply": xml.decode(),
        "waits_for": list(outcome.waits_for),
        "parked_at": parked_at,
        "settled_at": None if outcome.state == MessageState.PARKED else now,
    }
    return values


def _fill(message: InboundMessage, outcome: Outcome, env: Envelope, now: dt.datetime) -> None:
    """A message not yet written takes its outcome (a refusal before anything was applied)."""
    for name, value in _outcome_values(message, outcome, env, now).items():
        setattr(message, name, value)


def _settle(message: InboundMessage, outcome: Outcome, env: Envelope, actor: Actor, now: dt.datetime) -> None:
    values = _outcome_values(message, outcome, env, now)
    record_update(
        message, actor=actor, values=values, action=f"message_{outcome.state}", reason=str(values["reason"])
    )
    for key in outcome.announce:
        arrivals.announce(key)


# --- parked messages: applied when what they wait for arrives, or expired ------------------------


def _retry(message_id: int, *, now: dt.datetime | None = None) -> str | None:
    """Judge a parked message again; its new state if it moved on, else None (nothing written)."""
    with transaction.atomic(), audit_together():
        message = (
            InboundMessage.objects.select_for_update()
            .select_related("received_by")
            .filter(pk=message_id)
            .first()
        )
        if message is None or message.state != MessageState.PARKED:
            return None
        body = bytes(message.body)
        env = b2mml.read(body, max_bytes=max(len(body), 1))
        actor = interface_actor(message.received_by, message.transport)
        outcome = _run(Context(actor, message, env, body))
        if outcome.state == MessageState.PARKED and list(outcome.waits_for) == list(message.waits_for):
            return None
        _settle(message, outcome, env, actor, now or timezone.now())
        return outcome.state


def _parked(key: str | None = None) -> list[tuple[int, str, list[str]]]:
    """(id, BODID, keys) of the parked messages (waiting for ``key``), oldest first; no bodies read."""
    found = InboundMessage.objects.filter(state=MessageState.PARKED).order_by("received_at", "id")
    return [
        (pk, bodid, waits)
        for pk, bodid, waits in found.values_list("pk", "bodid", "waits_for")
        if key is None or key in waits
    ]


def on_arrival(key: str) -> None:
    """``key`` became known (``batchline.arrivals``): apply the messages parked for it, oldest first."""
    for pk, bodid, _waits in _parked(key):
        state = _retry(pk)
        if state:
            log.info("parked message %s is %s now: %s arrived", bodid, state, key)


def present(key: str) -> bool:
    """Whether what ``key`` names is in Batchline now."""
    kind, _, code = key.partition(":")
    if kind == "material":
        return Material.objects.filter(code=code, retired_at__isnull=True).exists()
    if kind == "recipe":
        return MasterRecipe.objects.filter(product__code=code, status=RecipeStatus.EFFECTIVE).exists()
    if kind == "order":
        return ErpOrder.objects.filter(order_id=code).exists()
    return False


@dataclass
class Due:
    applied: list[str]
    expired: list[str]


def parked_due(now: dt.datetime | None = None) -> Due:
    """The worker's round: apply what an announcement missed (a process that stopped before it could),
    then expire what waited longer than ``BATCHLINE_ERP_PARKED_HOURS`` into a refusal."""
    now = now or timezone.now()
    done = Due([], [])
    for pk, bodid, waits in _parked():
        if any(present(k) for k in waits) and _retry(pk, now=now) == MessageState.APPLIED:
            done.applied.append(bodid)
    cutoff = now - dt.timedelta(hours=settings.BATCHLINE_ERP_PARKED_HOURS)
    expiring = InboundMessage.objects.filter(state=MessageState.PARKED, parked_at__lte=cutoff)
    for pk, bodid in expiring.values_list("pk", "bodid"):
        if _expire(pk, cutoff=cutoff, now=now):
            done.expired.append(bodid)
    return done


def _expire(message_id: int, *, cutoff: dt.datetime, now: dt.datetime) -> bool:
    with transaction.atomic(), audit_together():
        message = InboundMessage.objects.select_for_update().select_related("received_by").get(pk=message_id)
        if message.state != MessageState.PARKED or message.parked_at is None or message.parked_at > cutoff:
            return False
        waits = "; ".join(key_words(k) for k in message.waits_for)
        hours = f"{settings.BATCHLINE_ERP_PARKED_HOURS:g}"
        words = (
            f"Expired: waited {hours} h (since {message.parked_at:%Y-%m-%d %H:%M} UTC) for {waits}, which did not "
            "arrive. Nothing was done. Send the message again under a new BODID once that is in Batchline."
        )
        body = bytes(message.body)
        env = b2mml.read(body, max_bytes=max(len(body), 1))
        first_reason = message.reason.split(" Parked, waiting for")[0]
        outcome = Outcome("expired", "EXPIRED", (words, first_reason))
        _settle(message, outcome, env, interface_actor(message.received_by, message.transport), now)
        return True


def batch_of_order(order_id: str) -> Batch | None:
    found = ErpOrder.objects.select_related("batch").filter(order_id=order_id).first()
    return found.batch if found else None
