"""Whether a label template's heading and statement print whole on the label they lay out (LBL-01).

A label never shortens what an approved template says unseen: a heading or statement that
would not fit its place is refused when the template is requested, in words, measured by the
renderers themselves (ZPL and PDF for container labels, PDF and PNG for the product's and a
sample's labels).
"""

from __future__ import annotations

from batchline.labels import card, layout, pdf, zpl
from batchline.labels.container import STATEMENT_LINE, STATEMENT_LINES, statement_lines

# Which label a template lays out: the container labels (layout.py) or the cards (card.py).
CONTAINER_LABELS = {
    "container": "Received container",
    "dispensed": "Dispensed container",
    "returned": "Returned container",
    "output": "Container of output",
}
CARD_LABELS = {"product": "Finished product (labelling step)", "sample": "Sample"}
LABELS = CONTAINER_LABELS | CARD_LABELS
TITLE_MAX = 40  # characters stored; whether they fit is measured


def _container_fits(text: str, *, size: float, width: float, bold: bool) -> bool:
    return pdf.fits(text, size=size, width=width, bold=bold) and zpl.fits(text, size=size, width=width)


def template_problem(label: str, title: str, statement: str) -> str | None:
    """Why this heading or statement cannot print whole on ``label``, or None."""
    if label not in LABELS:
        return f"{label!r} is not a label Batchline prints (it prints {', '.join(LABELS)})."
    for what, text in (("heading", title), ("statement", statement)):
        if any(not c.isprintable() for c in text):
            return f"The {what} holds a character a label printer cannot print."
    if not title.strip():
        return "A label template needs its heading."
    lines = statement_lines(statement)
    if len(lines) > STATEMENT_LINES:
        return (
            f"The statement takes {len(lines)} lines; a label prints it in {STATEMENT_LINES} "
            f"of {STATEMENT_LINE} characters at most."
        )
    if label in CONTAINER_LABELS:
        title_fits = _container_fits(title, size=layout.HEADER_FONT, width=layout.TITLE_WIDTH, bold=True)
        line_fits = all(
            _container_fits(line, size=layout.SMALL_FONT, width=layout.BARCODE_AREA, bold=True)
            for line in lines
        )
    else:
        title_fits = card.fits(title, size=card.TITLE_SIZE, width=card.TITLE_WIDTH, bold=True)
        line_fits = all(
            card.fits(line, size=card.LINE_SIZE, width=card.WIDTH - 2 * card.MARGIN, bold=True)
            for line in lines
        )
    if not title_fits:
        return f"The heading {title!r} is too wide for the label's heading: shorten it."
    if not line_fits:
        return "A line of the statement is too wide for its place on the label: use shorter words."
    return None
