"""The judged number, its unit and the typed text are kept together, and every view shows the number (DI-05).

A value typed "0,5013" on a comma site keeps that text and the number
0.5013. When the site's notation later changes, every view shows the
number as the site now writes it, with what was typed beside it: nobody
reads a different number than the one judged.
"""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from batchline.execution import services as ex
from batchline.execution.models import StepValue
from batchline.reports.content import record_content
from batchline.reports.pdf import render_pdf
from tests.api.test_api import token_for
from tests.conftest import configure
from tests.execution.test_engine import A, make_plant, new_batch, run_to_weights
from tests.reports.test_records import pdf_text

pytestmark = pytest.mark.django_db


def weighed_on_a_comma_site():
    configure(decimal_separator="comma")
    people, recipe = make_plant()
    batch = new_batch(people, recipe)
    run_to_weights(people, batch)
    op = people["operator"]
    ex.step_complete(
        actor=A(op),
        user=op,
        batch=batch,
        step_key="weights",
        entries={"w1": "600,50", "w2": "650,5"},
        confirm_out_of_specification=True,  # 650,5 mg is outside 570–630 mg: the operator confirms it
    )
    return people, batch


def flat(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


@pytest.mark.req("DI-05", "DI-02")
def test_the_typed_text_the_judged_number_and_the_unit_are_stored_together() -> None:
    _people, _batch = weighed_on_a_comma_site()
    w1, w2 = StepValue.objects.filter(name__in=("w1", "w2")).order_by("name")
    assert (w1.text, w1.number, w1.unit, w1.in_specification) == ("600,50", Decimal("600.5"), "mg", True)
    assert (w2.text, w2.number, w2.in_specification) == ("650,5", Decimal("650.5"), False)
    # The exception names the number as the site writes it, with the limits in the same notation.
    assert w2.exceptions.get().message == "Weight 2 650,5 mg is outside its specification 570–630 mg."


@pytest.mark.req("DI-05", "DI-02")
def test_the_pages_show_the_number_as_the_site_writes_it_and_the_typed_text_only_where_it_reads_otherwise(
    login,
) -> None:
    people, batch = weighed_on_a_comma_site()
    client = login(people["supervisor"])
    record = flat(client.get(f"/batches/{batch.number}/record/").content.decode())
    assert "600,50 mg" in record and "650,5 mg" in record and "typed" not in record
    review = flat(client.get(f"/batches/{batch.number}/review/").content.decode())
    assert "650,5 mg (out of specification)" in review

    configure(decimal_separator="point")  # the site changes its notation later
    record = flat(client.get(f"/batches/{batch.number}/record/").content.decode())
    assert "600.5 mg (typed “600,50”)" in record and "650.5 mg (typed “650,5”)" in record
    screen = flat(client.get(f"/batches/{batch.number}/?step=weights").content.decode())
    assert "600.5 mg (typed “600,50”)" in screen
    review = flat(client.get(f"/batches/{batch.number}/review/").content.decode())
    assert "650.5 mg (typed “650,5”) (out of specification)" in review


@pytest.mark.req("DI-05", "DI-02", "NFR-05")
def test_the_json_record_and_the_api_carry_the_exact_number_beside_the_typed_text(client) -> None:
    people, batch = weighed_on_a_comma_site()
    content = record_content(batch)
    assert content["header"]["notation"] == "comma"
    (w1,) = [v for s in content["steps"] for v in s["values"] if v["name"] == "w1"]
    assert (w1["text"], w1["number"], w1["shown"], w1["typed"], w1["unit"]) == (
        "600,50",
        "600.5",
        "600,50",
        "",
        "mg",
    )
    assert w1["specification"] == "570–630 mg"

    token = token_for(people["supervisor"])
    api = client.get(f"/api/v1/batches/{batch.number}/record", HTTP_AUTHORIZATION=f"Bearer {token}").json()
    (v,) = [v for s in api["steps"] for v in s["values"] if v["name"] == "w2"]
    assert (v["text"], v["number"], v["unit"]) == ("650,5", "650.5", "mg")
    review = client.get(
        f"/api/v1/quality/batches/{batch.number}/review", HTTP_AUTHORIZATION=f"Bearer {token}"
    ).json()
    assert {(c["name"], c["text"], c["number"]) for c in review["critical_values"]} >= {
        ("w2", "650,5", "650.5")
    }


@pytest.mark.req("DI-05", "DI-02", "BR-01")
def test_the_pdf_shows_the_number_in_the_sites_notation_with_the_typed_text_where_it_reads_otherwise(
    tmp_path,
) -> None:
    _people, batch = weighed_on_a_comma_site()
    text = re.sub(r"\s+", " ", pdf_text(render_pdf(record_content(batch)), tmp_path))
    assert "600,50" in text and "typed" not in text
    configure(decimal_separator="point")
    text = re.sub(r"\s+", " ", pdf_text(render_pdf(record_content(batch)), tmp_path))
    assert "600.5 (typed 600,50)" in text


@pytest.mark.req("DI-05", "BR-02")
def test_batchml_carries_the_number_as_a_decimal_and_the_typed_text_in_words() -> None:
    from lxml import etree

    from batchline.reports import batchml
    from batchline.reports.documents import render

    _people, batch = weighed_on_a_comma_site()
    xml = render(record_content(batch), "batchml").data
    if (batchml.schema_dir() / batchml.SCHEMA_FILE).is_file():
        assert batchml.validate(xml) == []
    ns = {"b": etree.fromstring(xml).nsmap[None]}
    (event,) = [
        e
        for e in etree.fromstring(xml).iterfind(".//b:Event", ns)
        if "Weight 2" in e.findtext("b:Description", "", ns)
    ]
    assert event.findtext("b:Description", "", ns) == "Weight 2 (typed 650,5)"
    assert event.findtext("b:Value/b:ValueString", "", ns) == "650.5"
    assert event.findtext("b:Value/b:DataType", "", ns) == "decimal"
    assert event.findtext("b:Value/b:UnitOfMeasure", "", ns) == "mg"
