"""A lot's status set by the ERP's quality management, through the audited interface (S95-04, MAT-06).

In Batchline QA changes a lot's status with an e-signature (``services.lot_disposition``).
Some plants decide quality in the ERP (SAP QM's usage decision) and want that
decision to hold here as well. Only the GMP configuration decides whether it
does (``erp_lot_status``, off by default, changed by QA's approval like every
GMP setting); then the change is written under the ERP interface's account, with
the message it came in, never by a write to the database around the services.
An interface is no person and signs nothing: the record names the account and
the message, and QA's own decision in the ERP is where the signature lives.
"""

from __future__ import annotations

from django.db import transaction

from batchline.audit.services import Actor, ReasonRequired, record_update
from batchline.configuration import selectors as configuration

from .models import Lot, LotStatus
from .services import MaterialRefused

_refuse = MaterialRefused.because


def lot_status_from_erp(*, actor: Actor, lot: Lot, status: str, reason: str) -> Lot:
    """Set ``lot``'s status as the ERP sent it, if the GMP configuration allows; locks the lot.

    Refused in words (nothing written) when the setting is off, for an unknown
    status, for a batch's output lot to be released (its batch's review releases
    it, RBE-07) and when the lot holds that status already.
    """
    if not reason.strip():
        raise ReasonRequired("Name the ERP's decision that changes the lot's status.")
    if status not in LotStatus.values:
        raise _refuse("UNKNOWN_STATUS", f"{status!r} is not a lot status.")
    config = configuration.current()
    if not config.erp_lot_status:
        raise _refuse(
            "ERP_STATUS_NOT_ALLOWED",
            f"Lot {lot.number} of {lot.material.code}: a lot's status is not taken from the ERP here "
            f"(GMP configuration version {config.version}, 'Lot status from the ERP' is off). QA changes it "
            "in Batchline, with an e-signature.",
        )
    with transaction.atomic():
        locked = Lot.objects.select_for_update().select_related("material").get(pk=lot.pk)
        if locked.produced_by_batch and status == LotStatus.RELEASED:
            raise _refuse(
                "RELEASED_BY_ITS_BATCH",
                f"Lot {locked.number} is the output of batch {locked.produced_by_batch}: it is released "
                "by QA's release of that batch, after its review, not by the ERP.",
            )
        if locked.status == status:
            raise _refuse(
                "NO_CHANGE", f"Lot {locked.number} is {locked.get_status_display().lower()} already."
            )
        record_update(locked, actor=actor, values={"status": status}, action="disposition_erp", reason=reason)
    return locked
