"""The batch record names the GMP configuration it ran under (issue 10 item 4)."""

from __future__ import annotations

import re

import pytest

from batchline.configuration.selectors import current
from batchline.reports.content import record_content
from batchline.reports.pdf import render_pdf
from tests.configuration import configure
from tests.reports.helpers import complete_batch
from tests.reports.test_records import pdf_text

pytestmark = pytest.mark.django_db


@pytest.mark.req("A11-14", "BR-01", "P11-11")
def test_the_record_content_page_and_pdf_name_the_configuration_version(tmp_path, login) -> None:
    _people, batch = complete_batch()
    first = current().version
    content = record_content(batch)
    assert content["header"]["configuration"] == {
        "at_creation": first,
        "came_into_force": [],
        "at_stages": [],
    }

    later = configure(late_entry_minutes=30)  # approved while the batch waits for its review
    content = record_content(batch)
    config = content["header"]["configuration"]
    assert config["at_creation"] == first
    assert [v["number"] for v in config["came_into_force"]] == [later.number]
    text = re.sub(r"\s+", " ", pdf_text(render_pdf(content, time_zone="UTC"), tmp_path))
    assert f"GMP configuration version {first} in force at creation; then version {later.number} from" in text

    from tests.conftest import make_user

    page = login(make_user("auditor", ["auditor"])).get(f"/batches/{batch.number}/record/").content.decode()
    shown = re.search(r'data-testid="configuration-version">(.*?)</p>', page, re.S).group(1)
    assert f"version {first} in force at creation" in shown and f"version {later.number} from" in shown
