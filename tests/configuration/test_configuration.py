"""The GMP configuration under two-person change control (21 CFR 11.10(k); Annex 11 §10)."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction

from batchline.approvals import services as approvals
from batchline.approvals.models import ChangeRequest, RequestState
from batchline.audit.services import Actor, ReasonRequired
from batchline.configuration import definitions
from batchline.configuration.models import ConfigVersion
from batchline.configuration.selectors import current
from batchline.configuration.services import configuration_change_request
from batchline.signatures.models import Signature
from batchline.signatures.services import signer_authenticate
from tests.conftest import PASSWORD, entries
from tests.signatures.test_signing import station

pytestmark = pytest.mark.django_db


def signer(user, meaning):
    return signer_authenticate(
        request=station(user), username=user.username, password=PASSWORD, meaning=meaning
    )


def request_change(user, values, reason="the SOP changed"):
    return configuration_change_request(
        actor=Actor.of(user, via="web"), signer=signer(user, "requested"), values=values, reason=reason
    )


def approve(user, request, comment="checked against SOP-IT-004"):
    return approvals.change_approve(
        actor=Actor.of(user, via="web"), signer=signer(user, "approved"), request=request, comment=comment
    )


@pytest.mark.req("A11-14", "P11-11")
def test_a_new_installation_is_seeded_from_its_environment() -> None:
    version = ConfigVersion.objects.get(number=1)
    assert "seeded from its environment" in version.reason
    config = current()
    assert (config.version, config.idle_timeout_minutes, config.lockout_failures) == (1, 15, 5)
    assert ("administrator", "qa_approver") in config.incompatible_roles


def test_the_seed_reads_the_environment_and_refuses_nonsense() -> None:
    values = definitions.seed_values(
        {"BATCHLINE_IDLE_TIMEOUT_MINUTES": "7", "BATCHLINE_SELF_APPROVAL": "yes"}
    )
    assert (values["idle_timeout_minutes"], values["self_approval"]) == (7, True)
    with pytest.raises(definitions.Invalid, match="Idle timeout"):
        definitions.seed_values({"BATCHLINE_IDLE_TIMEOUT_MINUTES": "0"})


@pytest.mark.req("A11-14", "P11-11", "P11-07")
def test_a_change_takes_an_administrators_request_and_a_qa_approvers_approval(personas) -> None:
    admin, approver = personas["admin"], personas["qa_approver"]
    request = request_change(admin, {"idle_timeout_minutes": "10", "self_approval": False})
    assert "Idle timeout (minutes): 15 → 10" in request.summary
    assert "Self-approval" not in request.summary  # unchanged settings are not part of the change
    assert current().idle_timeout_minutes == 15  # requested, not in force

    approve(approver, request)
    config = current()
    assert (config.version, config.idle_timeout_minutes) == (2, 10)
    request.refresh_from_db()
    assert request.state == RequestState.APPROVED
    meanings = Signature.objects.filter(record_type="approvals.changerequest", record_id=str(request.pk))
    assert [(s.signer_username, s.meaning) for s in meanings] == [
        ("admin", "requested"),
        ("qa_approver", "approved"),
    ]
    version = ConfigVersion.objects.get(number=2)  # its id is the database's (a sequence on PostgreSQL)
    (entry,) = entries(
        record_type="configuration.configversion", action="configure", record_id=str(version.pk)
    )
    assert entry.actor_username == "qa_approver" and entry.reason == "the SOP changed"


@pytest.mark.req("A11-14", "P11-07")
def test_nobody_approves_their_own_request_and_only_qa_approvers_approve(personas) -> None:
    admin, admin2 = personas["admin"], personas["admin2"]
    request = request_change(admin, {"lockout_failures": 4})
    with pytest.raises(approvals.ChangeRefused, match="another person"):
        approve(admin, request)
    with pytest.raises(Exception, match=r"roles do not allow|Only a QA approver"):
        approve(admin2, request)
    assert current().lockout_failures == 5


@pytest.mark.req("A11-14", "A11-05")
def test_bad_values_no_change_and_a_missing_reason_write_nothing(personas) -> None:
    admin = personas["admin"]
    before = ChangeRequest.objects.count()
    with pytest.raises(approvals.ChangeRefused, match="Lockout threshold: 1 is outside 3 to 10"):
        request_change(admin, {"lockout_failures": 1})
    with pytest.raises(approvals.ChangeRefused, match="not a GMP setting"):
        request_change(admin, {"debug": True})
    with pytest.raises(approvals.ChangeRefused, match="nothing would change"):
        request_change(admin, {"lockout_failures": 5})
    with pytest.raises(ReasonRequired):
        request_change(admin, {"lockout_failures": 4}, reason=" ")
    assert ChangeRequest.objects.count() == before


def test_an_approval_of_a_request_that_went_stale_is_refused(personas) -> None:
    admin, approver = personas["admin"], personas["qa_approver"]
    first = request_change(admin, {"late_entry_minutes": 30})
    with pytest.raises(approvals.ChangeRefused, match="already waiting"):
        request_change(personas["admin2"], {"late_entry_minutes": 45})
    approvals.change_withdraw(
        actor=Actor.of(admin, via="web"), user=admin, request=first, reason="wrong value"
    )
    second = request_change(personas["admin2"], {"late_entry_minutes": 45})
    # Someone else's change lands first (here: written straight as the approval would).
    from batchline.configuration.services import configuration_version_create

    with transaction.atomic():
        configuration_version_create(
            actor=Actor.of(approver, via="web"), values={"late_entry_minutes": 20}, reason="x"
        )
    with pytest.raises(approvals.ChangeRefused, match="no longer as it was"):
        approve(approver, second)
    assert current().late_entry_minutes == 20


@pytest.mark.req("P11-05")
def test_versions_are_append_only_in_the_database(personas) -> None:
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE configuration_configversion SET reason = 'x'")
