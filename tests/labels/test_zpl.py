"""The label as ZPL II: one format, every field, data escaped so no field can end early."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from batchline.labels.container import ContainerStatus, label_lines
from batchline.labels.gs1 import CSET_82, GS
from batchline.labels.zpl import datamatrix_field_data, render_zpl, zpl_escape

from .helpers import a_dispense, a_label

FIELD = re.compile(r"\^FD(.*?)\^FS", re.DOTALL)


def unescape(field: str) -> str:
    """What the printer prints for ``^FH_^FD<field>`` under ``^CI28``."""
    return re.sub(r"(?:_[0-9A-F]{2})+", lambda m: bytes.fromhex(m.group().replace("_", "")).decode(), field)


def printed_texts(zpl: str) -> list[str]:
    return [unescape(match) for match in FIELD.findall(zpl) if not match.startswith("_1")]


def barcode_data(zpl: str) -> str:
    """The ^BX field data as the printer reads it with ``_`` as escape character."""
    (field,) = re.findall(r"\^BXN,\d+,200,,,,_\^FD(.*?)\^FS", zpl)
    out, i = [], 0
    while i < len(field):
        if field[i] == "_":
            nxt = field[i + 1]
            out.append({"_": "_", "1": GS}[nxt])
            i += 2
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


@pytest.mark.req("LBL-01", "WD-07")
def test_one_label_format_holds_every_field_of_the_label() -> None:
    label = a_label(dispense=a_dispense(), status=ContainerStatus.QUARANTINE)
    zpl = render_zpl(label)
    assert zpl.startswith("^XA\n^CI28\n^PW800\n^LL560\n")
    assert zpl.endswith("^PQ1\n^XZ\n")
    assert zpl.count("^XA") == zpl.count("^XZ") == 1
    texts = printed_texts(zpl)
    assert "DISPENSED MATERIAL" in texts
    assert "QUARANTINE" in texts
    assert label.material_name in texts
    for caption, value in label_lines(label):
        assert caption in texts
        assert value in texts
    assert "(01)09501101530003(17)270131(10)L-0042(21)C-000123" in texts


@pytest.mark.req("WD-07")
def test_the_barcode_is_a_gs1_datamatrix_with_fnc1_first_and_between_fields() -> None:
    zpl = render_zpl(a_label())
    assert "^BXN,6,200,,,,_^FD_101095011015300031727013110L-0042_121C-000123^FS" in zpl
    assert barcode_data(zpl) == GS + a_label().barcode().data  # FNC1 first, then the data


def test_without_a_gtin_the_barcode_is_a_plain_datamatrix_of_the_container_id() -> None:
    assert "^BXN,6,200,,,,_^FDC-000123^FS" in render_zpl(a_label(gtin=None))


def test_an_underscore_in_barcode_data_is_doubled_and_never_hex_processed() -> None:
    zpl = render_zpl(a_label(lot="L_1_"))
    assert "10L__1___121C-000123" in zpl
    assert barcode_data(zpl).endswith("10L_1_" + GS + "21C-000123")
    assert not re.search(r"\^FH[^\^]*\^FD_1", zpl)  # ^FH would read "_1" as a hex escape


def test_a_higher_resolution_printer_gets_the_same_label_in_its_dots() -> None:
    zpl = render_zpl(a_label(), dots_per_mm=12)
    assert "^PW1200\n^LL840" in zpl


@pytest.mark.req("LBL-02")
def test_a_reprint_is_marked_reprint_white_on_black() -> None:
    zpl = render_zpl(a_label(print_count=3))
    assert re.search(r"\^FR\^A0N,\d+,\d+\^FB\d+,1,0,C,0\^FH_\^FDREPRINT 3\^FS", zpl)
    assert "Print no. 3" in printed_texts(zpl)
    assert "REPRINT" not in render_zpl(a_label(print_count=1))


@pytest.mark.req("LBL-01")
def test_caret_tilde_underscore_and_non_ascii_are_hex_escaped() -> None:
    name = "Talc ^XZ~JA_ Müller ✓"
    zpl = render_zpl(a_label(material_name=name))
    assert "^FH_^FDTalc _5EXZ_7EJA_5F M_C3_BCller _E2_9C_93^FS" in zpl
    assert name in printed_texts(zpl)
    assert zpl.count("^XZ") == 1
    assert "~JA" not in zpl


def test_a_control_character_prints_as_a_space_and_is_never_sent() -> None:
    assert zpl_escape("A\x1dB\nC") == "A B C"


def test_a_long_value_is_narrowed_then_shortened_never_run_over_the_barcode() -> None:
    longer = "Paracetamol and codeine phosphate effervescent"
    zpl = render_zpl(a_label(dispense=a_dispense(product_name=longer)))
    assert re.search(rf"\^A0N,22,1[4-9]\^FH_\^FD{longer} 500 mg\^FS", zpl)  # narrower, all there
    zpl = render_zpl(a_label(dispense=a_dispense(product_name=longer + " tablets for oral solution")))
    (product,) = (t for t in printed_texts(zpl) if t.startswith("Paracetamol"))
    assert product.endswith("...")
    assert product.startswith(longer)


def test_barcode_data_outside_what_a_label_carries_is_refused() -> None:
    with pytest.raises(ValueError):
        datamatrix_field_data("10A^XZ", gs1=True)


@settings(max_examples=300, derandomize=True)
@given(st.text(max_size=40))
def test_any_text_prints_as_itself_and_never_holds_a_caret_or_tilde(text: str) -> None:
    escaped = zpl_escape(text)
    assert "^" not in escaped
    assert "~" not in escaped
    assert all(" " <= c <= "~" for c in escaped)
    expected = "".join(" " if ord(c) < 32 or ord(c) == 127 else c for c in text)
    assert unescape(escaped) == expected


@settings(max_examples=200, derandomize=True)
@given(st.lists(st.text(alphabet=sorted(CSET_82), min_size=1, max_size=20), min_size=1, max_size=4))
def test_any_gs1_data_reaches_the_symbol_unchanged(fields: list[str]) -> None:
    data = GS.join(fields)
    field = datamatrix_field_data(data, gs1=True)
    zpl = f"^BXN,6,200,,,,_^FD{field}^FS"
    assert barcode_data(zpl) == GS + data  # the leading FNC1, then the data


def test_quantities_are_printed_as_recorded() -> None:
    assert "Net" in printed_texts(render_zpl(a_label(quantity=Decimal("0.0005"), unit="g")))
    assert "0.0005 g" in printed_texts(render_zpl(a_label(quantity=Decimal("0.0005"), unit="g")))
