"""ERP outbound tests: an ERP destination configured, and every document checked by two validators.

libxml2 (through lxml) is what Batchline validates with; ``xmlschema`` is an independent
implementation of XSD 1.0, so a quirk of one cannot pass an invalid document unseen. Its
compiled schema (about 2 s) is made once per session.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest
import xmlschema

from batchline.erp import outbound
from batchline.reports.batchml import schema_dir

ERP = {"erp": {"type": "webhook", "url": "http://127.0.0.1:9/erp"}}


@pytest.fixture(scope="session")
def independent_xsd() -> xmlschema.XMLSchema10:
    return xmlschema.XMLSchema10(str(schema_dir() / "AllSchemas.xsd"))


def check_both(xml: bytes, xsd: xmlschema.XMLSchema10) -> None:
    """``xml`` is valid B2MML V0700 for lxml (Batchline's own check) and for xmlschema."""
    assert outbound.validate(xml) == [], outbound.validate(xml)
    errors = [str(e.reason) for e in xsd.iter_errors(io.BytesIO(xml))]
    assert errors == [], errors


def errors_of_both(xml: bytes, xsd: xmlschema.XMLSchema10) -> tuple[list[str], list[str]]:
    return outbound.validate(xml), [str(e.reason) for e in xsd.iter_errors(io.BytesIO(xml))]


@pytest.fixture
def erp(settings: Any, db: None, independent_xsd: xmlschema.XMLSchema10) -> Iterator[list[Any]]:
    """The installation sends to an ERP; after the test, every message it wrote is checked by both
    validators (so every document the suite produces is, not only those a test looks at)."""
    from batchline.outbox.models import Message

    settings.OUTBOX_DESTINATIONS = ERP
    checked: list[Any] = []
    yield checked
    for message in Message.objects.filter(destination="erp").order_by("id"):
        assert message.content_type == "application/xml"
        check_both(message.body.encode("utf-8"), independent_xsd)
        checked.append(message.key)
