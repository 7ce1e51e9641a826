"""One entry point for every transport: idempotent by BODID, refusals in words, nothing written on refusal.

Every message is kept as an InboundMessage, refusals too (the record of a refused exchange, A11-07):
"nothing written" below means nothing but that record and its audit entry.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from django.db import connections

from batchline.audit.models import AuditEntry
from batchline.audit.services import Actor
from batchline.audit.verify import verify
from batchline.erp import inbound
from batchline.erp.models import ErpOrder, InboundMessage
from batchline.execution.models import Batch
from tests.conftest import make_user

from .documents import NS, area, assert_valid, order, reply_status, send

pytestmark = pytest.mark.django_db


def writes_since(mark: int) -> list[str]:
    """Audit entries after ``mark`` other than those of the refused messages' own records."""
    return [
        f"{e.action} {e.record_type}"
        for e in AuditEntry.objects.filter(id__gt=mark).order_by("id")
        if not (e.record_type == "erp.inboundmessage" and e.action == "message_refused")
    ]


def last() -> int:
    return AuditEntry.objects.order_by("-id").values_list("id", flat=True).first() or 0


@pytest.mark.req("S95-02", "A11-07")
def test_the_same_order_received_a_hundred_times_makes_one_batch(plant) -> None:
    body = order("BOD-100", "4711")
    first = send(plant["erp"], body)
    assert first.state == "applied" and not first.repeat
    mark = last()
    replies = [send(plant["erp"], body, transport=("https", "folder", "nats")[i % 3]) for i in range(99)]
    assert Batch.objects.count() == 1 and ErpOrder.objects.count() == 1
    assert InboundMessage.objects.count() == 1
    assert all(r.repeat and r.state == "applied" and r.xml == first.xml for r in replies)
    assert AuditEntry.objects.filter(id__gt=mark).count() == 0  # a repeat writes nothing


@pytest.mark.req("S95-02", "A11-07")
def test_a_resend_with_another_body_under_the_same_bodid_is_refused_in_words_and_kept(plant) -> None:
    send(plant["erp"], order("BOD-7", "4711"))
    mark = last()
    reply = send(plant["erp"], order("BOD-7", "4712"))
    assert reply.state == "refused" and reply.code == "BODID_REUSED"
    assert "a BODID names one message, so this one is not applied" in reply.words
    assert reply_status(reply) == ("Rejected", "Refused", "BODID_REUSED")
    assert not ErpOrder.objects.filter(order_id="4712").exists()
    conflicting = InboundMessage.objects.get(pk=reply.message_id)
    assert conflicting.repeat_of.bodid == "BOD-7" and conflicting.state == "refused"
    assert writes_since(mark) == []
    again = send(plant["erp"], order("BOD-7", "4712"))
    assert again.repeat and again.xml == reply.xml and InboundMessage.objects.count() == 2


@pytest.mark.req("A11-07", "DI-04", "P11-05")
def test_each_message_is_kept_with_its_body_hash_sender_and_reply_attributed_to_the_interface(plant) -> None:
    body = order("BOD-K", "4711")
    reply = send(plant["erp"], body)
    m = InboundMessage.objects.get(bodid="BOD-K")
    assert bytes(m.body) == body.encode() and m.size == len(body.encode())
    import hashlib

    assert m.body_sha256 == hashlib.sha256(body.encode()).hexdigest()
    assert (m.verb, m.noun, m.sender, m.transport, m.state) == (
        "Process",
        "OperationsSchedule",
        "SAP-PRD-100",
        "https",
        "applied",
    )
    assert m.reply.encode() == reply.xml and m.received_by == plant["erp"]
    trail = [
        (e.action, e.actor_username, e.via)
        for e in AuditEntry.objects.filter(record_type="erp.inboundmessage").order_by("id")
    ]
    assert trail == [
        ("message_received", "erp-sap", "erp-https"),
        ("message_applied", "erp-sap", "erp-https"),
    ]
    assert verify().ok


BILLION_LAUGHS = f"""<?xml version="1.0"?>
<!DOCTYPE ProcessOperationsSchedule [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<ProcessOperationsSchedule xmlns="{NS}" releaseID="7.0">{area("BOMB-1")}<DataArea><Process/>
<OperationsSchedule><ID>&lol9;</ID></OperationsSchedule></DataArea></ProcessOperationsSchedule>"""


def external_entity(path: Path) -> str:
    return f"""<?xml version="1.0"?>
<!DOCTYPE ProcessOperationsSchedule [<!ENTITY secret SYSTEM "file://{path}">]>
<ProcessOperationsSchedule xmlns="{NS}" releaseID="7.0">{area("XXE-1")}<DataArea><Process/>
<OperationsSchedule><ID>&secret;</ID></OperationsSchedule></DataArea></ProcessOperationsSchedule>"""


BAD = {
    "malformed": (order("BAD-1").replace("</DataArea>", ""), "MALFORMED", "not well-formed XML"),
    "wrong namespace": (
        order("BAD-2").replace(NS, "http://example.com/not-b2mml"),
        "WRONG_NAMESPACE",
        "namespace",
    ),
    "unknown verb": (
        order("BAD-3").replace("ProcessOperationsSchedule", "FrobOperationsSchedule"),
        "UNKNOWN_MESSAGE",
        "does not take a FrobOperationsSchedule document",
    ),
    "verb not taken": (
        order("BAD-4")
        .replace("ProcessOperationsSchedule", "SyncOperationsSchedule")
        .replace("<Process>", "<Sync>")
        .replace("</Process>", "</Sync>"),
        "UNKNOWN_MESSAGE",
        "does not take Sync of OperationsSchedule",
    ),
    "noun not taken": (
        f'<SyncEquipment xmlns="{NS}" releaseID="7.0">{area("BAD-5")}<DataArea><Sync/><Equipment><ID>GRAN-01</ID>'
        "</Equipment></DataArea></SyncEquipment>",
        "UNKNOWN_MESSAGE",
        "does not take Sync of Equipment",
    ),
    "not valid": (
        order("BAD-6").replace("<ProcessSegmentID>", "<Colour>red</Colour><ProcessSegmentID>"),
        "INVALID",
        "line",
    ),
    "no bodid": (order(None), "NO_BODID", "has no ApplicationArea/BODID"),
    "billion laughs": (BILLION_LAUGHS, "DOCTYPE", "has a DOCTYPE"),
}


@pytest.mark.req("A11-07", "A11-05", "S95-02")
@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_document_is_refused_in_words_and_nothing_else_is_written(plant, case: str) -> None:
    body, code, words = BAD[case]
    mark, batches = last(), Batch.objects.count()
    reply = send(plant["erp"], body, valid=False)
    assert (reply.state, reply.code) == ("refused", code), reply.words
    assert words in reply.words
    assert reply_status(reply)[0] == "Rejected"
    assert Batch.objects.count() == batches and not ErpOrder.objects.exists()
    assert writes_since(mark) == []
    kept = InboundMessage.objects.get(pk=reply.message_id)
    assert kept.state == "refused" and bytes(kept.body) == body.encode()


@pytest.mark.req("A11-07", "A11-05")
def test_an_external_entity_reaches_no_file(plant, tmp_path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    mark = last()
    reply = send(plant["erp"], external_entity(secret), valid=False)
    assert reply.code == "DOCTYPE" and b"TOP-SECRET" not in reply.xml
    kept = InboundMessage.objects.get(pk=reply.message_id)
    assert "TOP-SECRET" not in kept.reason and writes_since(mark) == []


@pytest.mark.req("A11-07", "A11-05")
def test_an_oversized_document_is_refused_unread_and_its_body_not_kept(plant, settings) -> None:
    settings.BATCHLINE_ERP_MAX_BYTES = 4096
    body = order("BIG-1", "4711").replace(
        "<ID>SCHED-1</ID>", "<ID>SCHED-1</ID>" + "<Description>x</Description>" * 400
    )
    reply = send(plant["erp"], body, valid=False)
    assert (reply.state, reply.code) == ("refused", "TOO_LARGE")
    assert "at most 4,096 bytes" in reply.words
    kept = InboundMessage.objects.get(pk=reply.message_id)
    assert bytes(kept.body) == b"" and kept.size == len(body) and kept.bodid == ""
    assert not Batch.objects.exists()


@pytest.mark.req("P11-07", "A11-07")
def test_an_account_without_the_interface_role_is_refused_and_nothing_is_kept(plant) -> None:
    mark = last()
    with pytest.raises(inbound.NotAllowed, match=r"erp\.send_message"):
        inbound.receive(
            order("BOD-X").encode(), transport="https", actor=Actor.of(plant["supervisor"], via="api")
        )
    assert AuditEntry.objects.filter(id__gt=mark).count() == 0 and not InboundMessage.objects.exists()
    outsider = make_user("outsider", [])
    with pytest.raises(inbound.NotAllowed):
        inbound.receive(order("BOD-Y").encode(), transport="nats", actor=Actor.of(outsider, via="cli"))


def test_the_documents_of_these_tests_are_valid_b2mml() -> None:
    assert_valid(order("BOD-V"))


@pytest.mark.django_db(transaction=True)
@pytest.mark.req("S95-02", "A11-07", "NFR-06")
def test_two_doors_delivering_the_same_message_at_once_make_one_batch(live_db) -> None:
    from .conftest import make_erp_plant

    plant = make_erp_plant()  # committed: each thread reads it on its own connection
    body = order("BOD-RACE", "4711").encode()
    assert_valid(body)
    barrier = threading.Barrier(2)
    replies: dict[str, inbound.Reply] = {}

    def deliver(transport: str) -> None:
        try:
            barrier.wait()
            replies[transport] = inbound.receive(
                body, transport=transport, actor=Actor.of(plant["erp"], via="api")
            )
        finally:
            connections.close_all()

    threads = [threading.Thread(target=deliver, args=(t,)) for t in ("https", "nats")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.state for r in replies.values()) == ["applied", "applied"], replies
    assert sorted(r.repeat for r in replies.values()) == [False, True]
    assert replies["https"].xml == replies["nats"].xml
    assert_valid(replies["https"].xml)
    assert Batch.objects.count() == 1 and InboundMessage.objects.count() == 1
    assert verify().ok


@pytest.mark.req("P11-07", "A11-16")
def test_the_interface_role_signs_nothing_and_is_granted_by_two_people_never_to_an_administrator(
    plant,
) -> None:
    from batchline.accounts import grants
    from batchline.accounts.roles import ROLES

    permissions = ROLES["erp_interface"][2]
    assert "erp.send_message" in permissions
    assert not [p for p in permissions if p.startswith("signatures.")]
    assert grants.needs_approval(plant["supervisor"], ["supervisor", "erp_interface"])
    assert grants.incompatible(["administrator", "erp_interface"]) == [
        "Engineer / administrator and ERP interface"
    ]
