"""Destinations from the environment: the scheme chooses the transport; a wrong one is refused in words."""

from __future__ import annotations

import re

import pytest

from batchline.outbox.destinations import DestinationError, from_environment, parse


@pytest.mark.req("A11-07")
def test_each_scheme_chooses_its_transport_and_the_secrets_stay_out_of_what_is_shown() -> None:
    found = from_environment(
        {
            "BATCHLINE_OUTBOX_ERP": "https://erp.example/b2mml",
            "BATCHLINE_OUTBOX_ERP_SECRET": "s3cret",
            "BATCHLINE_OUTBOX_ERP_MAX_ATTEMPTS": "5",
            "BATCHLINE_OUTBOX_LIMS": "amqp://mes:pa55@rabbit.example:5672/%2Fplant?exchange=lims&routing_key=samples&heartbeat=30",
            "BATCHLINE_OUTBOX_QMS": "nats://token123@nats.example:4222?subject=batchline.qms&stream=BATCHLINE_OUT",
            "BATCHLINE_OUTBOX_SOURCE": "site-a",  # not a destination
        }
    )
    assert sorted(found) == ["erp", "lims", "qms"]
    erp, lims, qms = (parse(name, found[name]) for name in ("erp", "lims", "qms"))
    assert (erp.type, erp.secret, erp.max_attempts, erp.timeout) == ("webhook", "s3cret", 5, 10.0)
    assert (lims.type, lims.exchange, lims.routing_key) == ("amqp", "lims", "samples")
    # the client library gets its own parameters, not Batchline's
    assert lims.connect_url == "amqp://mes:pa55@rabbit.example:5672/%2Fplant?heartbeat=30"
    assert lims.shown == "amqp://mes:***@rabbit.example:5672/%2Fplant exchange lims routing key samples"
    assert (qms.type, qms.subject, qms.stream, qms.duplicate_window) == (
        "nats",
        "batchline.qms",
        "BATCHLINE_OUT",
        86400,
    )
    assert qms.connect_url == "nats://token123@nats.example:4222"
    assert "token123" not in qms.shown and qms.shown.startswith("nats://***@nats.example:4222")


@pytest.mark.req("A11-07", "DEV-03")
def test_the_qms_webhook_variables_of_old_configure_the_qms_destination() -> None:
    found = from_environment(
        {
            "BATCHLINE_QMS_WEBHOOK_URL": "https://qms.example/hooks/batchline",
            "BATCHLINE_QMS_WEBHOOK_SECRET": "qms-key",
            "BATCHLINE_QMS_TIMEOUT": "3",
            "BATCHLINE_QMS_MAX_ATTEMPTS": "4",
        }
    )
    qms = parse("qms", found["qms"])
    assert (qms.type, qms.url, qms.secret, qms.timeout, qms.max_attempts) == (
        "webhook",
        "https://qms.example/hooks/batchline",
        "qms-key",
        3.0,
        4,
    )
    assert from_environment({}) == {}


@pytest.mark.req("A11-05")
@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("ftp://erp.example/in", "no known scheme"),
        ("erp.example/b2mml", "no known scheme"),
        ("https:///nohost", "names no host"),
        ("https://erp.example:99999999/x", "is not a URL"),
        ("nats://127.0.0.1:4222", "needs ?subject="),
        ("nats://127.0.0.1:4222?subject=a.*", "needs ?subject="),
        ("nats://127.0.0.1:4222?subject=a&stream=A.B", "may not hold"),
        ("nats://127.0.0.1:4222?subject=a&duplicate_window=soon", "is not a number"),
    ],
)
def test_a_destination_that_cannot_work_is_refused_at_start_up_naming_the_variable(
    url: str, words: str
) -> None:
    with pytest.raises(DestinationError, match=re.escape(words)) as refused:
        from_environment({"BATCHLINE_OUTBOX_ERP": url})
    assert str(refused.value).startswith("BATCHLINE_OUTBOX_ERP")
    with pytest.raises(DestinationError, match="BATCHLINE_OUTBOX_ERP_TIMEOUT"):
        from_environment(
            {"BATCHLINE_OUTBOX_ERP": "https://erp.example/", "BATCHLINE_OUTBOX_ERP_TIMEOUT": "nan"}
        )
