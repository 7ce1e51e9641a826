"""The genealogy pages: the drawn trace, the recall view and who may see them (GEN-02, GEN-03)."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.utils import timezone

from batchline.genealogy import layout
from tests.genealogy import scenario

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(db):
    return scenario.seed()


@pytest.mark.req("GEN-02")
def test_the_backward_trace_page_draws_every_lot_and_batch_with_links(world, login) -> None:
    lots = world["lots"]
    page = login(world["people"]["auditor"]).get(f"/genealogy/lots/{lots['P1'].pk}/backward/")
    assert page.status_code == 200
    html = page.content.decode()
    svg = html[html.index("<svg") : html.index("</svg>")]
    drawn = set(re.findall(r'data-node="([^"]+)"', svg))
    assert {k for k in drawn if k.startswith("batch:")} == {
        f"batch:{n}" for n in ["P1", "T1", "C1", "BL1", "G1", "G2"]
    }
    assert len([k for k in drawn if k.startswith("lot:")]) == 9
    assert svg.count("<line") == 6 + 9  # one arrow per production and one per lot consumed by a batch
    assert f'href="/lots/{lots["A1"].pk}/"' in svg and 'href="/batches/G1/"' in svg
    assert "GRAN-01" in html and "Operator2 Person (operator2)" in html


@pytest.mark.req("GEN-03")
def test_the_recall_view_answers_by_supplier_lot_and_by_unit_and_window(world, login) -> None:
    client = login(world["people"]["supervisor"])
    home = client.get("/").content.decode()
    assert 'href="/genealogy/"' in home  # in the navigation
    by_supplier = client.get("/genealogy/", {"supplier_lot": "SUP-A-78"}).content.decode()
    assert "Lots reached by supplier lot SUP-A-78: 7" in by_supplier
    now = timezone.localtime()
    window = {
        "equipment": "GRAN-01",
        "start": (now - dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S"),
        "end": (now + dt.timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S"),
    }
    by_unit = client.get("/genealogy/", window).content.decode()
    assert "Batches on the unit in that window: G1, G2." in by_unit
    bad = client.get("/genealogy/", {"equipment": "GRAN-01", "start": "yesterday"})
    assert bad.status_code == 422 and "Give the start and the end" in bad.content.decode()
    found = client.get("/genealogy/", {"lot": "BL1"}).content.decode()
    assert "Lot BL1 (BLEND Final blend)" in found


@pytest.mark.req("GEN-02")
def test_people_without_the_tracing_permission_get_no_page_and_no_link(world, login) -> None:
    client = login(world["people"]["warehouse"])
    assert client.get("/genealogy/").status_code == 403
    assert client.get(f"/genealogy/lots/{world['lots']['A1'].pk}/forward/").status_code == 403
    assert 'href="/genealogy/"' not in client.get("/").content.decode()


def test_the_layout_puts_each_level_in_its_column_and_orders_rows_to_follow_their_inputs() -> None:
    nodes = [
        layout.Node("a", 0, "A", "", "", "lot"),
        layout.Node("b", 0, "B", "", "", "lot"),
        layout.Node("x", 1, "X", "", "", "batch"),
        layout.Node("y", 1, "Y", "", "", "batch"),
    ]
    # B feeds X and A feeds Y: the sweep puts Y above X, so the arrows do not cross.
    drawing = layout.layered(nodes, [("b", "x", "1 kg"), ("a", "y", "2 kg")])
    at = {b.node.key: (b.x, b.y) for b in drawing.boxes}
    assert at["a"][0] == at["b"][0] < at["x"][0] == at["y"][0]
    assert at["a"][1] < at["b"][1] and at["y"][1] < at["x"][1]
    assert all(line.x1 < line.x2 for line in drawing.lines) and len(drawing.lines) == 2
    assert drawing.width == 2 * layout.MARGIN + 2 * layout.BOX_W + layout.GAP_X
