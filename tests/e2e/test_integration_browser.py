"""The integration pages in headless Chromium: an engineer retries a failed outbox message with a
reason, and reads which ERP message is parked and what it waits for."""

from __future__ import annotations

import pytest

from batchline.audit.models import AuditEntry
from batchline.erp import inbound
from batchline.outbox.models import Message
from tests.e2e.test_review_browser import as_user
from tests.erp.conftest import make_erp_plant
from tests.erp.documents import order
from tests.outbox.peers import Receiver
from tests.outbox.test_log_page import erp_at, failed_stream

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.req("A11-07", "A11-17", "S95-02")
def test_an_engineer_retries_a_failed_message_and_reads_the_parked_erp_message(page, live_db) -> None:
    people = make_erp_plant(materials=("API-1",))  # the ERP has not sent its lactose yet
    receiver = Receiver()
    try:
        with erp_at(receiver.url):
            first, _waiting = failed_stream(receiver)
            as_user(page, "admin")
            page.get_by_role("link", name="Configuration").click()
            page.get_by_test_id("outbox-link").click()
            page.get_by_test_id("messages").get_by_role("link", name=str(first.pk), exact=True).click()
            page.get_by_label("Reason (what was put right at the destination)").fill("ERP endpoint restarted")
            page.get_by_role("button", name="Retry").click()
            page.get_by_test_id("retry").wait_for(state="detached")
    finally:
        receiver.stop()
    first.refresh_from_db()
    assert first.state == Message.State.PENDING
    retried = AuditEntry.objects.get(action="outbox_retry")
    assert (retried.actor_username, retried.reason) == ("admin", "ERP endpoint restarted")

    reply = inbound.receive(
        order("BOD-PARKED-1", "4799").encode(),
        transport="https",
        actor=inbound.interface_actor(people["erp"], "https"),
    )
    assert reply.state == "parked", reply.words
    page.get_by_role("link", name="Master data").click()
    page.get_by_test_id("erp-messages-link").click()
    parked = page.locator("table", has_text="BOD-PARKED-1").first.inner_text()
    assert "LAC-200" in parked
