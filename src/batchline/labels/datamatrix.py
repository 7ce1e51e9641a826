"""Data Matrix (ECC 200) symbols for the PDF label, GS1 (FNC1 first) or plain.

ReportLab 5.1's ``ECC200DataMatrix`` encodes only C40 in a fixed 44 x 44 symbol and has
no FNC1, so it cannot make a GS1 DataMatrix. Its Reed-Solomon coding and module placement
are sound, so this module keeps those and adds what GS1 needs (ISO/IEC 16022):

- ASCII encodation (5.2.3): digit pairs in one codeword (130 + nn), other ASCII
  characters as value + 1, and FNC1 as codeword 232, first (GS1) and between fields;
- the smallest square single-block symbol that holds the data (table 7, 10 x 10 up to
  48 x 48), padded as 5.2.3 says (129, then the 253-state randomised pad);
- the fixed pattern in the unused bottom-right corner of the 12, 16, 20 and 24 sizes.

tests/labels decode every size with zxing-cpp, from the module grid and from the PDF.
"""

from __future__ import annotations

from reportlab.graphics.barcode.ecc200datamatrix import ECC200DataMatrix

from batchline.labels.gs1 import GS

FNC1 = 232
PAD = 129
_DIGITS = "0123456789"

# (modules per side, data regions per side, data codewords, error-correction codewords)
_SQUARE_SIZES = (
    (10, 1, 3, 5),
    (12, 1, 5, 7),
    (14, 1, 8, 10),
    (16, 1, 12, 12),
    (18, 1, 18, 14),
    (20, 1, 22, 18),
    (22, 1, 30, 20),
    (24, 1, 36, 24),
    (26, 1, 44, 28),
    (32, 2, 62, 36),
    (36, 2, 86, 42),
    (40, 2, 114, 48),
    (44, 2, 144, 56),
    (48, 2, 174, 68),
)
MAX_DATA_CODEWORDS = _SQUARE_SIZES[-1][2]


def codewords(data: str, *, gs1: bool) -> list[int]:
    """ASCII-encodation codewords; for GS1, FNC1 first and GS (field separator) as FNC1."""
    words = [FNC1] if gs1 else []
    i = 0
    while i < len(data):
        char = data[i]
        if gs1 and char == GS:
            words.append(FNC1)
            i += 1
        elif char in _DIGITS and i + 1 < len(data) and data[i + 1] in _DIGITS:
            words.append(130 + int(data[i : i + 2]))
            i += 2
        elif ord(char) < 128:
            words.append(ord(char) + 1)
            i += 1
        else:
            raise ValueError(f"A label barcode holds ASCII only, not {char!r}.")
    return words


def _padded(words: list[int], capacity: int) -> list[int]:
    padded = list(words)
    if len(padded) < capacity:
        padded.append(PAD)
    while len(padded) < capacity:
        position = len(padded) + 1
        value = PAD + (149 * position) % 253 + 1
        padded.append(value if value <= 254 else value - 254)
    return padded


class _Symbol(ECC200DataMatrix):  # ReportLab ships no type information: mypy sees Any
    """ReportLab's ECC 200 machinery sized for one symbol; only its private helpers are used."""

    def __init__(self, size: int, regions: int, data_words: int, ecc_words: int) -> None:
        super().__init__("")
        self.row_modules = self.col_modules = size
        self.row_regions = self.col_regions = regions
        self.cw_data = data_words
        self.cw_ecc = ecc_words
        self.row_usable_modules = self.col_usable_modules = size - 2 * regions


def modules(data: str, *, gs1: bool) -> list[list[bool]]:
    """The symbol's modules, rows from top to bottom, True for dark; the quiet zone is the caller's."""
    words = codewords(data, gs1=gs1)
    fitting = [size for size in _SQUARE_SIZES if len(words) <= size[2]]
    if not fitting:
        raise ValueError(f"{len(words)} codewords do not fit one Data Matrix of up to {MAX_DATA_CODEWORDS}.")
    size, regions, data_words, ecc_words = fitting[0]
    symbol = _Symbol(size, regions, data_words, ecc_words)
    stream = _padded(words, data_words)
    stream += symbol._get_reed_solomon_code(stream, ecc_words)
    mapping = symbol._create_matrix(list(stream))
    usable = size - 2 * regions
    if usable * usable - 8 * len(stream) == 4:  # the corner no codeword reaches (16022 annex F)
        mapping[usable - 1][usable - 1] = mapping[usable - 2][usable - 2] = 1
    grid = symbol._merge_data_regions(
        symbol._wrap_data_regions_with_finders(symbol._create_data_regions(mapping))
    )
    return [[bool(module) for module in row] for row in grid]
