"""The validation package as a GMP record: registered when built, signed by its lead, approved by QA.

- :func:`package_register` writes the record of an archive ``batchline validate``
  built (its hash, what it found), audited, as the command's actor.
- :func:`package_sign` adds a signature: first the validation lead's (meaning
  *reviewed*, permission ``validation.lead_validation``), then a QA approver's
  (*approved*, ``approvals.approve_change``), never the same person. The
  archive is hashed again before each signature: an archive changed since it
  was built (or gone) is not signed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

from django.db import IntegrityError, transaction

from batchline.audit.services import Actor, record_create
from batchline.signatures.models import Meaning, Signature
from batchline.signatures.services import VerifiedSigner, signature_apply

from .models import ValidationPackage
from .package import Built

LEAD_PERMISSION = "validation.lead_validation"
APPROVE_PERMISSION = "approvals.approve_change"


class PackageRefused(Exception):
    """A signature that cannot be given; the message says why."""


def package_register(built: Built, *, engine: str, actor: Actor) -> ValidationPackage:
    content = built.document
    summary = content["trace"]["summary"]
    project = content["project"]
    try:
        with transaction.atomic():
            return record_create(
                ValidationPackage(
                    file_name=built.path.name,
                    path=str(built.path.resolve()),
                    sha256=built.sha256,
                    generated_at=dt.datetime.fromisoformat(content["generated_at"]),
                    engine=engine,
                    release=f"{project.get('version')} ({project.get('describe') or 'no checkout'})"[:100],
                    commit=project.get("commit") or "",
                    key_fingerprint=content.get("key_fingerprint", ""),
                    verdict_ok=content["verdict"]["ok"],
                    p0=summary["p0"],
                    p0_shown=summary["p0_shown"],
                    tests=summary["tests"],
                    tests_failed=summary["tests_failed"],
                    findings=content["verdict"]["findings"],
                ),
                actor=actor,
                reason="validation package built by 'batchline validate'",
            )
    except IntegrityError:
        raise PackageRefused(f"{built.path.name} (sha256 {built.sha256}) is registered already.") from None


def signatures_of(package: ValidationPackage) -> list[Signature]:
    return list(
        Signature.objects.filter(
            record_type="validation.validationpackage", record_id=str(package.pk)
        ).order_by("signed_at", "id")
    )


def signatures_by_package(packages: list[ValidationPackage]) -> dict[int, list[Signature]]:
    """The signatures of several packages in one query (the Validation page's list)."""
    out: dict[int, list[Signature]] = {p.pk: [] for p in packages}
    for s in Signature.objects.filter(
        record_type="validation.validationpackage", record_id__in=[str(p.pk) for p in packages]
    ).order_by("signed_at", "id"):
        out[int(s.record_id)].append(s)
    return out


def next_meaning(package: ValidationPackage, signatures: list[Signature] | None = None) -> str | None:
    """The signature the package waits for: the lead's, then QA's approval; None once approved."""
    meanings = {s.meaning for s in (signatures_of(package) if signatures is None else signatures)}
    if Meaning.REVIEWED not in meanings:
        return Meaning.REVIEWED
    if Meaning.APPROVED not in meanings:
        return Meaning.APPROVED
    return None


def package_sign(
    *, actor: Actor, signer: VerifiedSigner, package: ValidationPackage, comment: str = ""
) -> Signature:
    user = signer.user
    if user.pk != actor.id:
        raise PackageRefused("A package is signed by the person who acts.")
    with transaction.atomic():
        locked = ValidationPackage.objects.select_for_update().get(pk=package.pk)
        meaning = next_meaning(locked)
        if meaning is None:
            raise PackageRefused(f"{locked.file_name} is approved already.")
        if meaning == Meaning.REVIEWED and not user.has_perm(LEAD_PERMISSION):
            raise PackageRefused("The validation lead signs a package first; your roles do not make you one.")
        if meaning == Meaning.APPROVED:
            if not user.has_perm(APPROVE_PERMISSION):
                raise PackageRefused("A QA approver approves a package after its validation lead signed it.")
            if any(s.signer_id == user.pk for s in signatures_of(locked)):
                raise PackageRefused("You signed this package as its lead: another person approves it.")
        if not user.has_perm(f"signatures.sign_{meaning}"):
            raise PackageRefused(f"Your roles do not allow you to sign as '{Meaning(meaning).label}'.")
        archive = Path(locked.path)
        try:
            digest = hashlib.sha256(archive.read_bytes()).hexdigest()
        except OSError:
            raise PackageRefused(
                f"The archive {archive} cannot be read: a package is signed as it lies."
            ) from None
        if digest != locked.sha256:
            raise PackageRefused(
                f"The archive {archive} is not the one built (its SHA-256 is {digest}): it is not signed."
            )
        return signature_apply(
            signer=signer,
            meaning=meaning,
            record=locked,
            content=locked.signed_content(),
            actor=actor,
            comment=comment,
        )
