"""``batchline gateway``: its upkeep subcommands, and a refusal to run with nothing configured."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from batchline.audit.services import Actor
from batchline.gateway import services as svc
from batchline.gateway import store
from batchline.gateway.models import StoredReading

from .conftest import reading, tag_configured

pytestmark = pytest.mark.django_db


@pytest.mark.req("S95-06")
def test_the_command_prints_the_configured_connections_and_refuses_to_run_without_any(
    plant: dict[str, Any], capsys: Any
) -> None:
    with pytest.raises(CommandError, match="No gateway endpoint with tags is configured"):
        call_command("gateway")
    engineer = Actor.of(plant["engineer"], via="web")
    svc.endpoint_create(
        actor=engineer,
        code="dryer",
        name="Dryer",
        protocol="mqtt-json",
        address="mqtt://127.0.0.1:1883",
        reason="r",
    )
    tag_configured(
        plant["engineer"],
        plant["approver"],
        endpoint="dryer",
        equipment=plant["units"]["DRY-01"],
        tag="dryer/01/moisture",
        name="product moisture",
        unit_of_measure="%",
        deadband="0.1",
        reason="r",
    )
    call_command("gateway", "connections")
    assert capsys.readouterr().out.splitlines() == [
        "mqtt-json mqtt://127.0.0.1:1883",
        "  DRY-01 dryer/01/moisture = product moisture [%] every 1000 ms, deadband 0.1",
    ]


@pytest.mark.req("P11-03")
def test_retention_from_the_command_line_and_partitions_ahead(capsys: Any, settings: Any) -> None:
    settings.GATEWAY_RETENTION_DAYS = 0
    with pytest.raises(CommandError, match="Retention is off"):
        call_command("gateway", "retention")
    old = dt.datetime.now(dt.UTC) - dt.timedelta(days=20)
    store.rows_store(store.rows_of([reading(1.0, at=old), reading(2.0, at=dt.datetime.now(dt.UTC))]))
    call_command("gateway", "retention", "--days", "10")
    assert list(StoredReading.objects.values_list("value_num", flat=True)) == [2.0]
    capsys.readouterr()
    call_command("gateway", "partitions", "--ahead", "1")
    out = capsys.readouterr().out
    if connection.vendor == "postgresql":
        assert len(out.split()) == 2 and out.startswith("gateway_reading_p")
    else:
        assert "not PostgreSQL" in out
