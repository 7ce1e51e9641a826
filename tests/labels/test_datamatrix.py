"""The Data Matrix encoder: codewords as ISO/IEC 16022 says, and every symbol size decodes."""

from __future__ import annotations

import pytest
import zxingcpp
from PIL import Image

from batchline.labels.datamatrix import _SQUARE_SIZES, FNC1, codewords, modules
from batchline.labels.gs1 import GS
from batchline.labels.scan import ScanKind, parse_scan

from .helpers import TODAY


def decode(grid: list[list[bool]], *, scale: int = 6, quiet: int = 2) -> list[zxingcpp.Barcode]:
    side = len(grid)
    image = Image.new("L", ((side + 2 * quiet) * scale,) * 2, 255)
    for row_index, row in enumerate(grid):
        for column, dark in enumerate(row):
            if dark:
                x, y = (column + quiet) * scale, (row_index + quiet) * scale
                image.paste(0, (x, y, x + scale, y + scale))
    return zxingcpp.read_barcodes(
        image,
        formats=zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.DataMatrix),
        text_mode=zxingcpp.TextMode.Plain,
    )


def test_digits_pair_up_and_fnc1_starts_and_separates_gs1_data() -> None:
    assert codewords("123456", gs1=False) == [142, 164, 186]  # the example of ISO/IEC 16022
    assert codewords("0109", gs1=True) == [FNC1, 131, 139]
    assert codewords("10A" + GS + "21", gs1=True) == [FNC1, 140, 66, FNC1, 151]
    assert codewords("1A", gs1=False) == [50, 66]  # a lone digit is a character
    with pytest.raises(ValueError, match="ASCII only"):
        codewords("é", gs1=False)


def test_the_smallest_symbol_that_holds_the_data_is_chosen() -> None:
    assert len(modules("123456", gs1=False)) == 10
    assert len(modules("1234567", gs1=False)) == 12
    with pytest.raises(ValueError, match="do not fit"):
        modules("A" * 175, gs1=False)


LETTERS = "AbC-_/x" * 30  # one codeword per character: no two digits side by side


# (side, the fewest codewords that need this side, the most it holds)
SIZES = [
    (side, previous[2] + 1, capacity)
    for (side, _, capacity, _), previous in zip(_SQUARE_SIZES, [(0, 0, 2, 0), *_SQUARE_SIZES], strict=False)
]


@pytest.mark.req("WD-07")
@pytest.mark.parametrize(("side", "smallest", "capacity"), SIZES)
@pytest.mark.parametrize("gs1", [True, False])
def test_every_symbol_size_decodes_full_and_with_padding(
    side: int, smallest: int, capacity: int, gs1: bool
) -> None:
    # From the least data that needs this size (most padding) to a full symbol (no padding).
    for words in sorted({smallest, (smallest + capacity) // 2, capacity}):
        # GS1: FNC1 and "10" take two codewords, the letters the rest.
        data = "10" + LETTERS[: words - 2] if gs1 else LETTERS[:words]
        grid = modules(data, gs1=gs1)
        assert len(grid) == side
        found = decode(grid)
        assert [(b.text, b.symbology_identifier) for b in found] == [(data, "]d2" if gs1 else "]d1")]


@pytest.mark.req("WD-07")
def test_a_gs1_symbol_reads_as_gs1_and_parses_back() -> None:
    data = "01095011015300031727013110L-0042" + GS + "21C-000123"
    (found,) = decode(modules(data, gs1=True))
    assert found.content_type == zxingcpp.ContentType.GS1
    result = parse_scan(found.symbology_identifier + found.text, today=TODAY)
    assert (result.kind, result.lot, result.container_id) == (ScanKind.GS1, "L-0042", "C-000123")
