"""Master data set up the way a plant sets up its own: the demo's seed goes through here.

Each item is a master-data request (:func:`~.services.master_create`) signed
"requested" by one person and approved with another person's signature
(``approvals.services.change_approve``): its history shows both, as a plant's
would, and nothing is written past the checks a plant's own data meets.

A set of items of one kind is requested under one signing and approved under
one, as a person chooses several and signs once for them (11.200(a)(1)(i); the
QA disposition of several exceptions does the same): each request still has
its own signature records, bound to its own content. It also keeps the demo
quick, one password hash per signing rather than per item.

Run again, it keeps what is there: an item that exists is returned as it is
(never compared or changed), and a request an interrupted run left open is
approved rather than asked for twice (the approvals refuse a second open one) —
only if it asks for exactly what the seed would: the seed's approver signs what
the seed states, never an open request someone else changed or made.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from batchline.approvals.models import ChangeRequest, RequestState
from batchline.approvals.services import ChangeRefused, change_approve
from batchline.audit.services import Actor
from batchline.signatures.models import Meaning
from batchline.signatures.services import VerifiedSigner

from .definitions import Invalid, kind_of, parse_values
from .services import CHANGE_KIND, full_values, master_create, model_of

# sign(username, meaning): that person re-authenticated for one signing, outside any transaction.
Sign = Callable[[str, str], VerifiedSigner]


def master_seed(
    *,
    kind: str,
    rows: Sequence[Mapping[str, Any]],
    requester: Any,
    approver: Any,
    sign: Sign,
    reason: str,
    comment: str,
) -> list[Any]:
    """The items ``rows`` describe, in their order; those missing are requested by ``requester``
    and approved by ``approver`` first, one signing each for the set, none if nothing is missing.

    Raises :class:`~batchline.approvals.services.ChangeRefused` in words, as a
    plant's request would be refused; what was approved before it stays.
    """
    k = kind_of(kind)
    model = model_of(k)
    codes = [str(values[k.key.name]) for values in rows]
    there = set(model.objects.filter(code__in=codes).values_list("code", flat=True))
    waiting = {
        request.subject_id: request
        for request in ChangeRequest.objects.filter(
            kind=CHANGE_KIND,
            subject_type=k.subject_type,
            subject_id__in=[c for c in codes if c not in there],
            state=RequestState.REQUESTED,
        )
    }
    missing = [(code, values) for code, values in zip(codes, rows, strict=True) if code not in there]
    for code, values in missing:
        request = waiting.get(code)
        if request is None:
            continue
        try:
            stated = full_values(k, parse_values(k, values, creating=True))
        except Invalid as exc:
            raise ChangeRefused(str(exc)) from None
        if request.payload.get("operation") != "create" or request.payload.get("values") != stated:
            raise ChangeRefused(
                f"{request.number}, an open request for {k.label.lower()} {code}, asks for something other "
                "than the demo's data: decide or withdraw it first; the seed approves only what it states."
            )
    if any(code not in waiting for code, _values in missing):
        signer = sign(requester.get_username(), Meaning.REQUESTED)
        for code, values in missing:
            if code not in waiting:
                waiting[code] = master_create(
                    actor=Actor.of(requester, via="cli"),
                    signer=signer,
                    kind=kind,
                    values=values,
                    reason=reason,
                )
    if missing:
        signer = sign(approver.get_username(), Meaning.APPROVED)
        for code, _values in missing:
            change_approve(
                actor=Actor.of(approver, via="cli"), signer=signer, request=waiting[code], comment=comment
            )
    found = {item.code: item for item in model.objects.filter(code__in=codes)}
    return [found[code] for code in codes]
