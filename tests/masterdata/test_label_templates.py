"""Label templates as master data (LBL-01): approved before a label prints to them, versioned, named on
every label and in every print record; one in force per label; what would not fit is refused."""

from __future__ import annotations

import datetime as dt
import io

import pytest
import zxingcpp
from django.utils import timezone
from PIL import Image

from batchline.accounts.models import User
from batchline.approvals import services as approvals
from batchline.audit.services import Actor
from batchline.labels import card
from batchline.labels.container import Template
from batchline.labels.pdf import render_pdf
from batchline.masterdata.services import master_retire
from batchline.materials import services as stock
from batchline.materials.labels import container_label, template_for
from batchline.materials.models import LabelPrint, LabelTemplate, Material
from tests.configuration.test_configuration import signer
from tests.conftest import entries, make_user
from tests.labels.test_cards import product
from tests.labels.test_pdf import text_of
from tests.masterdata.test_master_data import MATERIAL, approve, change, plant, request_new  # noqa: F401

pytestmark = pytest.mark.django_db

RECEIVED = {
    "code": "CONT-01",
    "name": "Received container (SOP-WH-004 annex 2)",
    "label": "container",
    "title": "GOODS RECEIVED",
    "statement": "For manufacturing use only",
}


@pytest.fixture
def container(plant):  # noqa: F811
    people, _site = plant
    approve(people["qa_approver"], request_new(people["admin"], "material", MATERIAL))
    lot = stock.lot_receive(
        actor=Actor.of(make_user("stores", ["warehouse"]), via="web"),
        material=Material.objects.get(code="LAC-200"),
        number="L-1",
        expires_at=timezone.now() + dt.timedelta(days=300),
        containers=["25"],
    )
    return lot.containers.get()


def printed(container, tmp_path, reason=""):
    """Print the container's label as the pages do: built from the records, rendered, logged."""
    label = container_label(container, print_count=container.prints.count() + 1)
    content = render_pdf(label)
    stock.label_print_record(
        actor=Actor.of(User.objects.get(username="stores"), via="web"),
        container=container,
        label=label,
        fmt="pdf",
        content=content,
        reason=reason,
    )
    return text_of(label, tmp_path), LabelPrint.objects.filter(container=container).latest("id")


@pytest.mark.req("LBL-01", "A11-14", "P11-05")
def test_a_label_prints_to_a_template_only_once_a_qa_approver_approved_it_and_names_its_version(
    plant,  # noqa: F811
    container,
    tmp_path,
) -> None:
    people, _site = plant
    admin, approver = people["admin"], people["qa_approver"]
    request = request_new(admin, "label_template", RECEIVED)
    assert (
        "Label template CONT-01: new" in request.summary and "Heading — → GOODS RECEIVED" in request.summary
    )
    # Requested, not approved: the label prints the built-in heading and names no template.
    text, record = printed(container, tmp_path)
    assert "MATERIAL CONTAINER" in text and "GOODS RECEIVED" not in text and record.template == ""

    approve(approver, request)
    assert template_for("container") == Template("CONT-01", 1, "GOODS RECEIVED", "For manufacturing use only")
    text, record = printed(container, tmp_path, reason="drum label torn")
    assert "GOODS RECEIVED" in text and "MATERIAL CONTAINER" not in text
    assert "Template CONT-01 v1" in text and "For manufacturing" in text and "use only" in text
    assert record.template == "CONT-01 v1" and record.reprint

    # A change of the heading is a request; labels print version 1 until a QA approver approves it.
    outcome = change(admin, "label_template", "CONT-01", {"title": "RECEIVED GOODS"})
    assert outcome.request is not None and outcome.applied == []
    assert "GOODS RECEIVED" in printed(container, tmp_path, reason="second drum")[0]
    approve(approver, outcome.request)
    template = LabelTemplate.objects.get(code="CONT-01")
    assert (template.version, template.title) == (2, "RECEIVED GOODS")
    text, record = printed(container, tmp_path, reason="third drum")
    assert "RECEIVED GOODS" in text and "Template CONT-01 v2" in text and record.template == "CONT-01 v2"
    trail = entries(record_type="materials.labeltemplate", record_id=str(template.pk), action="master_change")
    assert (
        '"version":[1,2]' in trail[-1].changes
        and '"title":["GOODS RECEIVED","RECEIVED GOODS"]' in trail[-1].changes
    )


@pytest.mark.req("LBL-01", "A11-14")
def test_one_template_in_force_per_label_and_what_would_not_fit_is_refused_in_words(
    plant,  # noqa: F811
    container,
    tmp_path,
) -> None:
    people, _site = plant
    admin, approver = people["admin"], people["qa_approver"]
    approve(approver, request_new(admin, "label_template", RECEIVED))
    second = {**RECEIVED, "code": "CONT-02"}
    with pytest.raises(
        approvals.ChangeRefused, match="CONT-01 lays out the received container label already"
    ):
        request_new(admin, "label_template", second)
    with pytest.raises(approvals.ChangeRefused, match="too wide for the label's heading"):
        request_new(
            admin,
            "label_template",
            {**second, "label": "dispensed", "title": "DISPENSED - CYTOTOXIC MATERIAL"},
        )
    with pytest.raises(approvals.ChangeRefused, match="takes 3 lines"):
        request_new(
            admin,
            "label_template",
            {**second, "label": "dispensed", "statement": "Keep below 25 C. Protect from light."},
        )
    with pytest.raises(approvals.ChangeRefused, match="'poster' is not one of"):
        request_new(admin, "label_template", {**second, "label": "poster"})
    with pytest.raises(approvals.ChangeRefused, match="Label of a label template is fixed"):
        change(admin, "label_template", "CONT-01", {"label": "dispensed"})
    assert LabelTemplate.objects.count() == 1

    # Retired (approved like any retirement): the built-in heading prints again, and another may be set up.
    approve(
        approver,
        master_retire(
            actor=Actor.of(admin, via="web"),
            signer=signer(admin, "requested"),
            kind="label_template",
            code="CONT-01",
            reason="SOP-WH-004 annex 2 withdrawn",
        ),
    )
    text, record = printed(container, tmp_path)
    assert "MATERIAL CONTAINER" in text and "Template" not in text and record.template == ""
    approve(approver, request_new(admin, "label_template", second))
    assert template_for("container").code == "CONT-02"  # type: ignore[union-attr]


def decoded(png: bytes) -> str:
    (found,) = zxingcpp.read_barcodes(
        Image.open(io.BytesIO(png)).convert("L"),
        formats=zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.DataMatrix),
    )
    return found.text


@pytest.mark.req("LBL-01")
def test_the_product_label_prints_its_templates_heading_statement_and_version_and_still_scans() -> None:
    template = Template("PROD-01", 3, "PARACETAMOL 500", "Keep out of reach of children")
    label = product(template=template)
    texts = [t.text for t in label.card().texts()]
    assert texts[0] == "PARACETAMOL 500" and "Template PROD-01 v3" in texts
    assert [t for t in texts if t in ("Keep out of reach", "of children")] == [
        "Keep out of reach",
        "of children",
    ]
    content = label.content()
    assert (content["template"], content["title"], content["statement"]) == (
        "PROD-01 v3",
        "PARACETAMOL 500",
        "Keep out of reach of children",
    )
    assert decoded(card.render_png(label.card())).endswith(
        "PCM-0001"
    )  # the statement leaves the symbol alone
    assert product().content()["template"] is None and product().card().texts()[0].text == "FINISHED PRODUCT"


@pytest.mark.req("LBL-01", "A11-14", "P11-05")
def test_a_label_template_is_set_up_on_its_page_and_shows_its_version_once_approved(
    plant,  # noqa: F811
    login,
) -> None:
    from tests.masterdata.test_master_data_pages import form, signed, waiting_request

    people, _site = plant
    admin = login(people["admin"])
    create = form(admin.get("/master-data/label_template/").content.decode(), "md-create")
    assert (
        '<option value="dispensed">Dispensed container</option>' in create and 'name="f_statement"' in create
    )
    too_wide = admin.post(
        "/master-data/label_template/",
        signed("admin", **{f"f_{k}": v for k, v in {**RECEIVED, "title": "W" * 30}.items()}, reason="new"),
    )
    assert too_wide.status_code == 422 and "too wide for the label" in too_wide.content.decode()
    response = admin.post(
        "/master-data/label_template/",
        signed("admin", **{f"f_{k}": v for k, v in RECEIVED.items()}, reason="SOP-WH-004 annex 2"),
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    request = waiting_request("CONT-01")

    approver = login(people["qa_approver"])
    assert (
        approver.post(f"/master-data/changes/{request.pk}/approve/", signed("qa_approver")).status_code == 302
    )
    page = approver.get("/master-data/label_template/CONT-01/").content.decode()
    assert 'data-testid="md-value-title">GOODS RECEIVED<' in page
    assert "version 1 in force; 0 labels printed to it" in page
