"""Master data imported from CSV and B2MML: a preview per line, one request, one transaction (issue 12)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import transaction

from batchline.approvals import services as approvals
from batchline.approvals.models import ChangeRequest, RequestState
from batchline.audit.models import AuditEntry
from batchline.audit.services import Actor, record_create
from batchline.equipment.models import Equipment, EquipmentClass, Site
from batchline.masterdata.imports import IMPORT_KIND, ImportRefused, import_preview, import_request
from batchline.materials.models import Material
from batchline.training.models import Qualification
from tests.configuration.test_configuration import signer
from tests.masterdata.test_master_data import SCALE, SCALE_CLASS, approve, change, request_new

pytestmark = pytest.mark.django_db

MATERIALS = (
    "code,name,kind,unit,storage,shelf_life_days,retest_days\n"
    'LAC-200,Lactose monohydrate 200 mesh,excipient,kg,"Store below 25 °C, dry",1095,365\n'
    "MCC-102,Microcrystalline cellulose,excipient,kg,Dry,1825,730\n"
)
EQUIPMENT = (
    "\ufeffcode;name;site;equipment_class;capacity;readability;minimum_weight;unit\n"
    "SCALE-10;Bench scale booth 10;main;bench-scale;6.2;0.0001;0.02;kg\n"
)


@pytest.fixture
def plant(personas):
    with transaction.atomic():
        site = record_create(Site(code="main", name="Main plant"), actor=SETUP_ACTOR)
    return personas, site


SETUP_ACTOR = Actor(id=None, username="test-setup", name="Test set-up", via="cli")


def preview(text, kind="material", format="csv", name="materials.csv"):
    return import_preview(data=text, file_name=name, format=format, kind=kind)


def imported(user, text, kind="material", format="csv", name="materials.csv", reason="plant first load"):
    return import_request(
        actor=Actor.of(user, via="web"),
        signer=signer(user, "requested"),
        data=text,
        file_name=name,
        format=format,
        kind=kind,
        reason=reason,
    )


@pytest.mark.req("S95-03", "A11-14")
def test_a_good_csv_is_previewed_row_by_row_and_writes_nothing(plant) -> None:
    mark = AuditEntry.objects.count()
    result = preview(MATERIALS)
    assert [(r.line, r.operation, r.code) for r in result.rows] == [
        (2, "create", "LAC-200"),
        (3, "create", "MCC-102"),
    ]
    assert "Shelf life — → 1095 days" in result.rows[0].words
    assert result.as_dict()["can_import"] and len(result.sha256) == 64
    assert AuditEntry.objects.count() == mark and not Material.objects.exists()


@pytest.mark.req("S95-03")
def test_refused_rows_are_named_by_their_line_in_the_file(plant) -> None:
    text = (
        "code;name;kind;unit;shelf_life_days\n"
        "LAC-200;Lactose;excipient;kg;three years\n"
        "\n"
        'MCC-102;"Cellulose,\nmicrocrystalline";excipient;bucket;1825\n'
        "LAC-200;Lactose again;excipient;kg;1095\n"
        "TALC;Talc;excipient;kg;730\n"
    )
    result = preview(text)
    assert [(r.line, r.operation) for r in result.rows] == [
        (2, "refused"),
        (4, "refused"),  # a quoted value over two lines: the row starts where it starts
        (6, "refused"),
        (7, "create"),
    ]
    words = {r.line: r.words[0] for r in result.rows}
    assert "Shelf life: 'three years' is not a whole number of days" in words[2]
    assert "Unit: 'bucket' is not one of" in words[4]
    assert words[6] == "Material LAC-200 is on line 2 already: one row per item."
    assert result.as_dict()["refused_lines"] == [2, 4, 6]

    unknown = preview("code,name,colour\nX,Y,white\n")
    assert (
        unknown.rows[0].line == 1
        and "column 'colour': a material has no such field" in unknown.rows[0].words[0]
    )

    units = preview(
        "code,name,site,equipment_class\nSCALE-11,Scale,main,floor-scale\n",
        kind="equipment",
        name="units.csv",
    )
    assert (
        units.rows[0].line == 2
        and "Class: there is no equipment class 'floor-scale'" in units.rows[0].words[0]
    )


@pytest.mark.req("S95-03", "A11-14")
def test_a_file_with_a_refused_row_is_not_imported_at_all(plant) -> None:
    people, _site = plant
    with pytest.raises(ImportRefused, match="line 3 refused") as refused:
        imported(people["admin"], MATERIALS.replace("1825", "-5"))
    assert refused.value.preview is not None and refused.value.preview.refused[0].line == 3
    assert not ChangeRequest.objects.exists() and not Material.objects.exists()


@pytest.mark.req("S95-03", "A11-14", "P11-05")
def test_an_import_waits_for_a_qa_approver_and_then_creates_every_row_in_one_transaction(plant) -> None:
    people, _site = plant
    admin, approver = people["admin"], people["qa_approver"]
    classes = "code,name,is_scale,calibration_interval_days\nbench-scale,Bench scale,yes,90\n"
    # A unit may name a class that an earlier row of the same import creates: here, another file's.
    approve(approver, imported(admin, classes, kind="equipment_class", name="classes.csv").request)
    result = imported(admin, EQUIPMENT, kind="equipment", name="units.csv")
    assert result.request is not None and not Equipment.objects.filter(code="SCALE-10").exists()

    outcome = imported(admin, MATERIALS)
    request = outcome.request
    assert request is not None and request.kind == IMPORT_KIND and request.state == RequestState.REQUESTED
    assert (
        "Import of materials.csv (csv, SHA-256 " in request.summary and "2 new, 0 changed" in request.summary
    )
    assert request.payload["sha256"] == outcome.preview.sha256 and request.payload["counts"]["create"] == 2
    assert not Material.objects.exists()
    with pytest.raises(approvals.ChangeRefused, match="You requested this change"):
        approve(admin, request)

    approve(approver, request)
    assert sorted(Material.objects.values_list("code", flat=True)) == ["LAC-200", "MCC-102"]
    entry = AuditEntry.objects.filter(record_type="materials.material", action="master_create").first()
    assert entry is not None and f"{request.number} import of materials.csv (SHA-256 " in entry.reason
    assert "line 2: plant first load" in entry.reason

    approve(approver, result.request)
    scale = Equipment.objects.get(code="SCALE-10")
    assert (scale.capacity, scale.equipment_class.code) == (Decimal("6.2"), "bench-scale")


@pytest.mark.req("S95-03", "A11-14")
def test_names_change_at_once_and_gmp_fields_wait_for_approval(plant) -> None:
    people, _site = plant
    admin, approver = people["admin"], people["qa_approver"]
    approve(approver, request_new(admin, "equipment_class", SCALE_CLASS))
    approve(approver, imported(admin, EQUIPMENT, kind="equipment", name="scales.csv").request)
    again = EQUIPMENT.replace("Bench scale booth 10", "Booth 10 scale").replace(";6.2;", ";8;")
    result = preview(again, kind="equipment")
    assert [r.operation for r in result.rows] == ["change"]
    assert result.rows[0].words == ["Capacity 6.2 kg → 8 kg", "Name Bench scale booth 10 → Booth 10 scale"]
    outcome = imported(admin, again, kind="equipment", name="scales.csv", reason="new load cell")
    scale = Equipment.objects.get(code="SCALE-10")
    assert scale.name == "Booth 10 scale"  # descriptive: at once
    assert scale.capacity == Decimal("6.2")  # GMP: by the request
    assert outcome.request is not None and outcome.request.payload["rows"] == [
        {
            "line": 2,
            "kind": "equipment",
            "code": "SCALE-10",
            "operation": "change",
            "values": {"capacity": "8"},
        }
    ]
    assert [r.operation for r in preview(again, kind="equipment").rows] == ["refused"]  # a change on its way
    approve(approver, outcome.request)
    assert Equipment.objects.get(code="SCALE-10").capacity == Decimal(8)


@pytest.mark.req("S95-03", "A11-14", "LBL-01")
def test_a_material_name_printed_on_labels_waits_for_approval_like_its_shelf_life(plant) -> None:
    people, _site = plant
    admin, approver = people["admin"], people["qa_approver"]
    approve(approver, imported(admin, MATERIALS).request)
    again = MATERIALS.replace("Microcrystalline cellulose", "MCC 102").replace("1095", "730")
    outcome = imported(admin, again, reason="supplier's new data sheet")
    assert Material.objects.get(code="MCC-102").name == "Microcrystalline cellulose"
    assert outcome.request is not None
    assert [(r["code"], r["values"]) for r in outcome.request.payload["rows"]] == [
        ("LAC-200", {"shelf_life_days": 730}),
        ("MCC-102", {"name": "MCC 102"}),
    ]
    approve(approver, outcome.request)
    assert Material.objects.get(code="MCC-102").name == "MCC 102"
    assert Material.objects.get(code="LAC-200").shelf_life_days == 730


@pytest.mark.req("S95-03", "A11-14")
def test_the_approval_is_refused_line_by_line_when_an_item_moved_on(plant) -> None:
    people, _site = plant
    admin, approver = people["admin"], people["qa_approver"]
    approve(approver, request_new(admin, "equipment_class", SCALE_CLASS))
    approve(approver, request_new(admin, "equipment", SCALE))
    text = (
        "code,name,site,equipment_class,capacity,readability,minimum_weight,unit\n"
        "SCALE-10,Scale 10,main,bench-scale,6.2,0.0001,0.02,kg\n"
        "SCALE-09,Bench scale booth 9,main,bench-scale,12,0.0001,0.02,kg\n"
    )
    pending = imported(admin, text, kind="equipment", name="scales.csv").request
    assert pending is not None
    moved = change(admin, "equipment", "SCALE-09", {"capacity": "8"}).request
    approve(approver, moved)  # decided before the import: SCALE-09's capacity moved on
    with pytest.raises(approvals.ChangeRefused) as refused:
        approve(approver, pending)
    assert "line 3: SCALE-09's capacity is no longer 6.2 as when imported (it is 8)" in str(refused.value)
    pending.refresh_from_db()
    assert pending.state == RequestState.REQUESTED
    assert not Equipment.objects.filter(code="SCALE-10").exists()  # line 2 neither: one transaction


@pytest.mark.req("S95-03", "A11-14")
def test_the_approval_is_refused_as_a_whole_when_a_row_can_no_longer_be_applied(plant) -> None:
    people, _site = plant
    admin, approver = people["admin"], people["qa_approver"]
    approve(approver, request_new(admin, "equipment_class", SCALE_CLASS))
    pending = imported(
        admin, EQUIPMENT.replace("SCALE-10", "SCALE-11"), kind="equipment", name="u.csv"
    ).request
    from batchline.masterdata.services import master_retire

    approve(
        approver,
        master_retire(
            actor=Actor.of(admin, via="web"),
            signer=signer(admin, "requested"),
            kind="equipment_class",
            code="bench-scale",
            reason="replaced",
        ),
    )
    with pytest.raises(approvals.ChangeRefused, match="line 2: Class: bench-scale is retired"):
        approve(approver, pending)
    assert not Equipment.objects.filter(code="SCALE-11").exists()
    assert EquipmentClass.objects.get(code="bench-scale").retired_at is not None


B2MML_MATERIALS = """<?xml version="1.0" encoding="UTF-8"?>
<SyncMaterialDefinition xmlns="http://www.mesa.org/xml/B2MML" releaseID="1.0">
  <ApplicationArea><CreationDateTime>2026-03-01T08:00:00Z</CreationDateTime></ApplicationArea>
  <DataArea>
    <Sync/>
    <MaterialDefinition>
      <ID>LAC-200</ID>
      <Description>Lactose monohydrate 200 mesh</Description>
      <MaterialDefinitionProperty><ID>MaterialType</ID><Value><ValueString>excipient</ValueString></Value></MaterialDefinitionProperty>
      <MaterialDefinitionProperty><ID>BaseUnit</ID><Value><ValueString>kg</ValueString></Value></MaterialDefinitionProperty>
      <MaterialDefinitionProperty>
        <ID>ShelfLifeDays</ID>
        <Value><ValueString>1095</ValueString><UnitOfMeasure>d</UnitOfMeasure></Value>
      </MaterialDefinitionProperty>
      <MaterialDefinitionProperty><ID>Colour</ID><Value><ValueString>white</ValueString></Value></MaterialDefinitionProperty>
    </MaterialDefinition>
    <MaterialDefinition>
      <ID>MCC-102</ID>
      <Description>Microcrystalline cellulose</Description>
      <MaterialDefinitionProperty><ID>MaterialType</ID><Value><ValueString>excipient</ValueString></Value></MaterialDefinitionProperty>
      <MaterialDefinitionProperty><ID>BaseUnit</ID><Value><ValueString>kg</ValueString></Value></MaterialDefinitionProperty>
    </MaterialDefinition>
  </DataArea>
</SyncMaterialDefinition>
"""


@pytest.mark.req("S95-03", "A11-14")
def test_a_valid_b2mml_file_is_imported_under_the_same_approval(plant) -> None:
    people, _site = plant
    admin, approver = people["admin"], people["qa_approver"]
    result = preview(B2MML_MATERIALS, format="b2mml", kind=None, name="materials.xml")
    assert [(r.line, r.operation, r.code) for r in result.rows] == [
        (6, "create", "LAC-200"),
        (17, "create", "MCC-102"),
    ]
    assert result.rows[0].notes == ["property Colour (line 15) is not kept by Batchline: left out"]
    outcome = imported(admin, B2MML_MATERIALS, format="b2mml", kind=None, name="materials.xml")
    assert outcome.request is not None and not Material.objects.exists()
    approve(approver, outcome.request)
    lactose = Material.objects.get(code="LAC-200")
    assert (lactose.name, lactose.kind, lactose.shelf_life_days) == (
        "Lactose monohydrate 200 mesh",
        "excipient",
        1095,
    )


@pytest.mark.req("S95-03")
def test_an_invalid_b2mml_file_is_refused_with_the_schemas_words_and_its_line(plant) -> None:
    invalid = B2MML_MATERIALS.replace("<ID>MCC-102</ID>", "<Code>MCC-102</Code>")
    result = preview(invalid, format="b2mml", kind=None, name="bad.xml")
    assert result.refused and result.rows[0].line == 18
    assert "not valid B2MML V0700" in result.rows[0].words[0] and "Code" in result.rows[0].words[0]

    broken = preview(B2MML_MATERIALS.replace("</DataArea>", ""), format="b2mml", kind=None, name="x.xml")
    assert broken.rows[0].operation == "refused" and "not well-formed XML" in broken.rows[0].words[0]

    days = preview(B2MML_MATERIALS.replace("<UnitOfMeasure>d<", "<UnitOfMeasure>month<"), format="b2mml")
    assert "ShelfLifeDays is counted in days; the file gives it in 'month'" in days.rows[0].words[0]

    person = """<Person xmlns="http://www.mesa.org/xml/B2MML"><ID>olga</ID></Person>"""
    refused = preview(person, format="b2mml", kind=None, name="people.xml")
    assert refused.rows[0].line == 1 and "a Person is not imported" in refused.rows[0].words[0]
    assert not ChangeRequest.objects.exists()


CURRICULUM = """<?xml version="1.0" encoding="UTF-8"?>
<SyncPersonnelClass xmlns="http://www.mesa.org/xml/B2MML" releaseID="1.0">
  <ApplicationArea><CreationDateTime>2026-03-01T08:00:00Z</CreationDateTime></ApplicationArea>
  <DataArea>
    <Sync/>
    <PersonnelClass>
      <ID>operator</ID>
      <Description>Production operator</Description>
      <TestSpecificationID>SOP-DISP-001</TestSpecificationID>
      <TestSpecificationID>SOP-GOWN-002</TestSpecificationID>
    </PersonnelClass>
    <PersonnelClass>
      <ID>supervisor</ID>
      <TestSpecificationID>SOP-GOWN-002</TestSpecificationID>
    </PersonnelClass>
  </DataArea>
</SyncPersonnelClass>
"""


def qualification(code, roles=""):
    return {"code": code, "title": code, "kind": "sop", "version": "1", "roles": roles}


@pytest.mark.req("S95-03", "TRN-01", "A11-14")
def test_a_personnel_class_states_a_roles_whole_curriculum_and_is_approved_like_any_gmp_change(plant) -> None:
    people, _site = plant
    admin, approver = people["admin"], people["qa_approver"]
    for code, roles in (("SOP-DISP-001", ""), ("SOP-GOWN-002", "operator"), ("SOP-OLD-009", "operator")):
        approve(approver, request_new(admin, "qualification", qualification(code, roles)))
    result = preview(CURRICULUM, format="b2mml", kind=None, name="curricula.xml")
    # Each change on the line of the class that asks it; SOP-OLD-009 leaves the operators' curriculum.
    assert [(r.line, r.operation, r.code, r.values) for r in result.rows] == [
        (6, "change", "SOP-DISP-001", {"roles": ["operator"]}),
        (6, "change", "SOP-OLD-009", {"roles": []}),
        (12, "change", "SOP-GOWN-002", {"roles": ["operator", "supervisor"]}),
    ]
    request = imported(admin, CURRICULUM, format="b2mml", kind=None, name="curricula.xml").request
    assert request is not None
    assert Qualification.objects.get(code="SOP-DISP-001").roles == []  # not before the approval
    approve(approver, request)
    assert {q.code: q.roles for q in Qualification.objects.all()} == {
        "SOP-DISP-001": ["operator"],
        "SOP-GOWN-002": ["operator", "supervisor"],
        "SOP-OLD-009": [],
    }
    again = preview(CURRICULUM, format="b2mml", kind=None, name="curricula.xml")
    assert {r.operation for r in again.rows} == {"unchanged"}


@pytest.mark.req("S95-03")
def test_a_curriculum_naming_an_unknown_qualification_or_role_and_a_person_are_refused_by_line(plant) -> None:
    people, _site = plant
    approve(
        people["qa_approver"], request_new(people["admin"], "qualification", qualification("SOP-DISP-001"))
    )
    text = CURRICULUM.replace("<ID>supervisor</ID>", "<ID>forklift_driver</ID>").replace(
        "SOP-GOWN-002", "SOP-NONE-404"
    )
    rows = preview(text, format="b2mml", kind=None, name="c.xml").rows
    refused = [(r.line, r.words[0]) for r in rows if r.operation == "refused"]
    assert refused == [
        (
            6,
            "PersonnelClass operator names SOP-NONE-404, which is not a qualification in Batchline: "
            "import it first (a CSV file of kind qualification).",
        ),
        (12, refused[1][1]),
    ]
    assert refused[1][1].startswith("PersonnelClass forklift_driver: not a Batchline role (operator,")
    information = """<SyncPersonnelInformation xmlns="http://www.mesa.org/xml/B2MML" releaseID="1.0">
  <ApplicationArea><CreationDateTime>2026-03-01T08:00:00Z</CreationDateTime></ApplicationArea>
  <DataArea><Sync/><PersonnelInformation><ID>HR-2026-03</ID>
    <Person><ID>olga</ID></Person>
    <PersonnelClass><ID>operator</ID><TestSpecificationID>SOP-DISP-001</TestSpecificationID></PersonnelClass>
  </PersonnelInformation></DataArea>
</SyncPersonnelInformation>"""
    rows = preview(information, format="b2mml", kind=None, name="p.xml").rows
    assert [(r.line, r.operation) for r in rows] == [(4, "refused"), (5, "change")]
    assert "a Person is not imported" in rows[0].words[0]


@pytest.mark.req("S95-03", "EQ-01")
def test_a_physical_asset_sets_a_scales_numbers_on_its_equipment_unit(plant) -> None:
    people, _site = plant
    admin, approver = people["admin"], people["qa_approver"]
    approve(approver, request_new(admin, "equipment_class", SCALE_CLASS))
    approve(approver, request_new(admin, "equipment", SCALE))
    asset = """<?xml version="1.0" encoding="UTF-8"?>
<PhysicalAsset xmlns="http://www.mesa.org/xml/B2MML">
  <ID>MT-XPR6-0042</ID>
  <EquipmentAssetMapping><EquipmentID>SCALE-09</EquipmentID><PhysicalAssetID>MT-XPR6-0042</PhysicalAssetID></EquipmentAssetMapping>
  <PhysicalAssetProperty><ID>Capacity</ID><Value><ValueString>6.1</ValueString><UnitOfMeasure>kg</UnitOfMeasure></Value></PhysicalAssetProperty>
  <PhysicalAssetProperty><ID>MinimumWeight</ID><Value><ValueString>0.05</ValueString><UnitOfMeasure>kg</UnitOfMeasure></Value></PhysicalAssetProperty>
</PhysicalAsset>
"""
    result = preview(asset, format="b2mml", kind=None, name="asset.xml")
    assert [(r.line, r.operation, r.code) for r in result.rows] == [(2, "change", "SCALE-09")]
    assert result.rows[0].words == ["Capacity 6.2 kg → 6.1 kg", "Minimum weight 0.02 kg → 0.05 kg"]
    approve(approver, imported(admin, asset, format="b2mml", kind=None, name="asset.xml").request)
    assert Equipment.objects.get(code="SCALE-09").minimum_weight == Decimal("0.05")


@pytest.mark.req("S95-03")
def test_the_command_previews_a_file_and_imports_it_signed(plant, tmp_path, monkeypatch, capsys) -> None:
    import io

    from django.core.management import CommandError, call_command

    from tests.conftest import PASSWORD

    people, _site = plant
    bad = tmp_path / "bad.csv"
    bad.write_text(MATERIALS.replace("1825", "x"), encoding="utf-8")
    with pytest.raises(CommandError, match="1 line"):
        call_command("masterdata", "import", str(bad), "--kind", "material", "--preview")
    assert "line 3: refused (material MCC-102) — Shelf life: 'x'" in capsys.readouterr().out

    good = tmp_path / "materials.csv"
    good.write_text(MATERIALS, encoding="utf-8")
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    call_command(
        "masterdata",
        "import",
        str(good),
        "--kind",
        "material",
        "--user",
        people["admin"].username,
        "--reason",
        "first load",
        "--password-stdin",
    )
    assert "requested: 2 row(s) wait for a QA approver" in capsys.readouterr().out
    request = ChangeRequest.objects.get(kind=IMPORT_KIND)
    assert request.payload["file"] == "materials.csv" and not Material.objects.exists()


@pytest.mark.req("S95-03", "A11-07")
def test_a_b2mml_file_with_a_doctype_is_refused_in_words_before_any_entity_is_read(plant) -> None:
    # An external entity reaching for a file on the server, and one that would expand the document:
    # refused, unread, with the same sentence as the ERP's and the LIMS's doors.
    for doctype in (
        '<!DOCTYPE x [<!ENTITY secret SYSTEM "file:///etc/passwd">]>',
        '<!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>',
    ):
        bomb = B2MML_MATERIALS.replace("?>", "?>\n" + doctype, 1).replace("<ID>MCC-102</ID>", "<ID>&b;</ID>")
        result = preview(bomb, format="b2mml", kind=None, name="evil.xml")
        assert result.refused and result.rows[0].line == 1
        assert "has a DOCTYPE" in result.rows[0].words[0]
    assert not Material.objects.exists()
