"""The demo's headline batch PCM-0001, as the README tells it, from dispensing to QA release.

Shared by the API test and the Chromium test: what each step is given (loads put on the
simulated scales, values typed, units scanned), the demo seeded with its scales on free
ports, and what the finished record must hold.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.test import Client

from batchline.equipment import demo as equipment_demo
from tests.conftest import free_port

BATCH = "PCM-0001"
PASSWORD = "batchline-demo"  # the demo's own people and password (demo data only)

# What the operator puts on the pan of each weighing, in the scale's unit: the target of each,
# paracetamol at the lot's 99.6 % assay (50.2 kg for 50 kg), maize starch giving way by as much.
WEIGHINGS: dict[str, tuple[str, str, str, str]] = {
    # step: (material, scale, load, unit)
    "disp_api": ("PCM-API", "SCALE-02", "50.200", "kg"),
    "disp_starch": ("STARCH", "SCALE-02", "5.800", "kg"),
    "disp_povidone": ("PVP-K30", "SCALE-01", "1500.0", "g"),
    "disp_water": ("PW", "SCALE-02", "12.000", "kg"),
    "disp_ssg": ("SSG", "SCALE-01", "1800.0", "g"),
    "disp_silica": ("SILICA", "SCALE-01", "200.0", "g"),
    "disp_mgst": ("MGST", "SCALE-01", "500.0", "g"),
}
# The released lot each weighing takes from (first to expire), as the screen proposes it.
SOURCE_LOTS = {
    "PCM-API": "PCM-L0101",
    "STARCH": "STA-L0311",
    "PVP-K30": "PVP-L0042",
    "PW": "PW-W49",
    "SSG": "SSG-L0019",
    "SILICA": "SIL-L0007",
    "MGST": "MGST-L0007",
}
UNITS = {
    "identify_booth": "BOOTH-01",
    "identify_granulator": "GRAN-01",
    "identify_dryer": "FBD-01",
    "identify_mill": "MILL-01",
    "identify_blender": "BLEND-01",
    "identify_press": "PRESS-01",
}
CHARGES = {
    "charge_povidone": "PVP-K30",
    "charge_water": "PW",
    "charge_api": "PCM-API",
    "charge_starch": "STARCH",
    "charge_ssg": "SSG",
    "charge_silica": "SILICA",
    "charge_mgst": "MGST",
}
PACKAGING_LOT = "DRM-L0455"  # the carton of lined bulk drums the press takes four from
# Timers: how long each ran (the test winds the step's start back through the audited service).
TIMERS = {
    "binder_solution": 15,
    "dry_mix": 5,
    "drying_hold": 45,
    "blend_disintegrant": 11,
    "blend_lubricant": 4,
}
ENTRIES: dict[str, dict[str, str]] = {
    "wet_massing": {"binder_addition_min": "4", "wet_massing_min": "3", "impeller_power": "8.4"},
    "drying_start": {"inlet_temp": "60"},
    "lod": {"product_temp_max": "41"},
    "dry_milling": {"granules_kg": "57.1"},
    "press_setup": {"compression_force": "18"},
    "ipc_weights": {"w1": "598", "w2": "603", "w3": "601", "w4": "597", "w5": "604"},
    "ipc_physical": {"hardness": "96", "thickness": "6.0", "friability": "0.3", "disintegration": "6"},
}
# Where in the blender each blend uniformity sample is taken (the recipe's positions).
POSITIONS = [
    "top front left",
    "top front right",
    "top back left",
    "top back right",
    "middle front",
    "middle back",
    "middle centre",
    "bottom front",
    "bottom back",
    "bottom centre",
]
DRUMS = ["25000", "25000", "25000", "23500"]  # 98,500 tablets: 98.5 % of theoretical
LABELS = {"issued": "5", "applied": "4", "destroyed": "1", "returned": "0"}
EXAMINATION = 4  # items of the recipe's examination list, all passed on 4 drums
# Who signs each step that needs a signature (the performer) and who verifies.
SIGNS = {
    "line_clearance",
    "wet_massing",
    "lod",
    "ipc_physical",
    "blend_sample",
    "label_bulk",
    "batch_signoff",
}
VERIFIED = {
    "line_clearance",
    "disp_api",
    "disp_starch",
    "disp_povidone",
    "disp_ssg",
    "disp_silica",
    "disp_mgst",
    "lod",
    "ipc_mean",
    "label_bulk",
}

# What the released record must show of this batch, item by item of 21 CFR 211.188(b).
RECORD_ITEMS = {
    "(2) equipment and lines": ["GRAN-01", "FBD-01", "MILL-01", "BLEND-01", "PRESS-01", "BOOTH-01"],
    "(3) components' lots": list(SOURCE_LOTS.values()),
    "(4) weights and measures": ["50.2 kg", "5.8 kg", "1.5 kg", "12 kg", "1.8 kg", "0.2 kg", "0.5 kg"],
    "(5) in-process results": ["Main compression force", "Hardness (mean of 10)", "Loss on drying"],
    "(6) line clearance": ["Previous product, materials and labels removed"],
    "(7) yield": ["98.5 %"],
    "(8) labeling control": ["Label matches the specimen"],
    "(9) containers and closures": [PACKAGING_LOT, "Fibre drum 60 L, double polyethylene liner"],
    "(10) sampling": [f"{BATCH}-S01", "Blend uniformity (paracetamol content)"],
    "(11) persons": ["Olga Operator", "Sam Supervisor"],
}


def free_port_pair() -> tuple[int, int]:
    """Two ports nobody listens on, for the demo's two simulated scales."""
    first = free_port()
    second = free_port()
    while second == first:
        second = free_port()
    return first, second


def demo_scales_on_free_ports(monkeypatch: Any) -> None:
    """The demo registers its simulated scales on ports this test owns (the fixed 4305/4306 may be taken)."""
    ports = free_port_pair()
    scales = [(*row[:-1], port) for row, port in zip(equipment_demo.SIMULATED_SCALES, ports, strict=True)]
    monkeypatch.setattr(equipment_demo, "SIMULATED_SCALES", scales)


def in_kg(load: str, unit: str) -> Decimal:
    return Decimal(load) / 1000 if unit == "g" else Decimal(load)


# The laboratory's blend uniformity results, one per sample in sample order, % of label claim.
BLEND_CONTENT = ["99.1", "100.4", "98.7", "101.2", "99.8", "100.9", "99.5", "98.9", "100.2", "100.6"]


def laboratory_answers(samples: list[str]) -> None:
    """The demo's LIMS posts each blend sample's result over the API with its machine account's token,
    issued by the administrator as docs/security.md says (the demo starts a real sandbox LIMS that
    does the same, tests/sandbox/test_lims_client.py)."""
    from batchline.accounts.models import User
    from batchline.accounts.services import interface_token_issue
    from batchline.audit.services import Actor

    admin = Actor.of(User.objects.get(username="admin"), via="cli")
    lims = User.objects.get(username="lims-labware")
    _, raw = interface_token_issue(actor=admin, user=lims, name="LabWare LIMS", reason="demo story")
    client = Client(headers={"Authorization": f"Bearer {raw}"})
    for code, value in zip(samples, BLEND_CONTENT, strict=True):
        body = {"result_id": f"LW-{code}", "sample": code, "test": "Blend uniformity (paracetamol content)"}
        answer = client.post(
            "/api/v1/lims/results", {**body, "value": value, "unit": "%"}, content_type="application/json"
        )
        assert answer.status_code == 201 and answer.json()["filled_step"], answer.content[:800]


# What the dryer's controller reports while the drying step runs (the demo's OPC UA simulator holds
# about these): inlet air at its set point, the bed warming below its limit.
DRYER = {"dryer_inlet_temp": (60.2, "°C"), "dryer_product_temp": (38.5, "°C")}


def dryer_reads(step_key: str = "drying_hold") -> None:
    """The equipment gateway's judge, fed what the dryer reports a few seconds into the step, as the
    running `batchline gateway` does from the simulator (tests/gateway hold the real transports)."""
    import datetime as dt

    from batchline.execution.models import BatchStep
    from batchline.gateway.judging import Judging
    from batchline.gateway.readings import Protocol, Quality, Reading, Source

    judging = Judging()
    judging.refresh()
    at = BatchStep.objects.get(batch__number=BATCH, key=step_key).started_at + dt.timedelta(seconds=5)
    for name, (value, unit) in DRYER.items():
        source = Source("FBD-01", Protocol.OPCUA, "opc.tcp://127.0.0.1:4840/batchline-sim/", f"ns=2;s={name}")
        said = judging.reading(Reading(source, value, Quality.GOOD, at, at), name, unit)
        assert [j.event.value for j in said] == ["first value"], said


# Read from the dryer's moisture analyser when the operator takes the reading (a device input).
MOISTURE = 1.6


def moisture_reads() -> None:
    """The gateway stores what the dryer's moisture analyser reports now, as the running `batchline
    gateway` does from the simulator: through its own store, under the tag the demo configured."""
    import datetime as dt

    from batchline.gateway import store
    from batchline.gateway.models import Tag
    from batchline.gateway.readings import Protocol, Quality, Reading, Source

    tag = Tag.objects.select_related("endpoint").get(equipment__code="FBD-01", name="product_moisture")
    now = dt.datetime.now(dt.UTC)
    source = Source("FBD-01", Protocol(tag.endpoint.protocol), tag.endpoint.address, tag.tag)
    reading = Reading(source, MOISTURE, Quality.GOOD, now, now, unit_of_measure=tag.unit_of_measure)
    assert store.rows_store(store.rows_of([reading])) == 1
