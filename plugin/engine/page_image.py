"""A PDF page as its reader sees it, with an answer's characters boxed.

An answer is a span of its document's text as ingested (`start`…`end`). That text was extracted by pypdf; the page
is drawn by PDFium (pypdfium2), which knows where each character sits. The two extractions agree on the characters
but not always on the spaces and line breaks between them (nor on ligatures), so the span is carried across by
aligning the page's non-space characters, compared after Unicode compatibility folding, and each aligned character
brings its box. Boxes of neighbouring characters on one line are merged into one highlight; a span over two columns
or two lines gets one box per line, so nothing outside the span is ever covered.
"""

from __future__ import annotations

import ctypes
import io
import unicodedata
from dataclasses import dataclass
from difflib import SequenceMatcher

from spanqa.retriever.records import Document

from spanqa.errors import InputError

__all__ = ["HYPHENS", "PageImage", "RENDER_SCALE", "render_page", "page_image_path"]

RENDER_SCALE = 1.5  # pixels per PDF point: 108 dpi, a Letter page 918 × 1188 pixels
HIGHLIGHT = (255, 200, 0, 96)  # translucent amber: the words stay readable under it
OUTLINE = (230, 120, 0, 255)
Rectangle = tuple[float, float, float, float]  # left, bottom, right, top in PDF points
# PDFium reports a hyphen that ends a line as 0x02 (and a soft hyphen is U+00AD); the text has "-" there.
HYPHENS = {"\x02": "-", "\xad": "-"}


@dataclass(frozen=True)
class PageImage:
    """Page `page` of a PDF rendered as PNG; `boxes` are the highlights in pixels (left, top, right, bottom), and
    `boxed` of the span's `characters` (not counting spaces) on this page were found on it."""

    document_id: str
    page: int
    pages: int
    width: int
    height: int
    boxes: list[tuple[int, int, int, int]]
    characters: int
    boxed: int
    png: bytes

    def to_json(self) -> dict:
        return {"document_id": self.document_id, "page": self.page, "pages": self.pages, "width": self.width,
                "height": self.height, "boxes": [list(box) for box in self.boxes], "characters": self.characters,
                "boxed": self.boxed}


def page_image_path(document_id: str, page: int, start: int, end: int) -> str:
    """The page image of a span, relative to a server's root."""
    return f"/v1/documents/{document_id}/pages/{page}.png?start={start}&end={end}"


def render_page(original: bytes, document: Document, page: int, start: int, end: int,
                scale: float = RENDER_SCALE) -> PageImage:
    """Page `page` (1-based) of the PDF `original`, the characters of `document.text[start:end]` on it boxed."""
    import pypdfium2 as pdfium

    if not 0 <= start <= end <= len(document.text):
        raise InputError(f"The span {start}:{end} is not within document {document.id} ({len(document.text):,} "
                         "characters): start and end must satisfy 0 <= start <= end <= its length")
    try:
        pdf = pdfium.PdfDocument(original)
    except pdfium.PdfiumError as exc:
        raise InputError(f"The original of document {document.id} is not a PDF PDFium can open ({exc})") from exc
    try:
        if not 1 <= page <= len(pdf):
            raise InputError(f"Document {document.id} has {len(pdf)} page(s); page {page} does not exist")
        return _render(pdf[page - 1], document, page, len(pdf), start, end, scale)
    finally:
        pdf.close()


def _render(pdf_page, document: Document, page: int, pages: int, start: int, end: int, scale: float) -> PageImage:
    from PIL import Image, ImageDraw

    textpage = pdf_page.get_textpage()
    rectangles, characters, boxed = _span_rectangles(textpage, document, page, start, end)
    image = pdf_page.render(scale=scale, may_draw_forms=False).to_pil().convert("RGBA")
    boxes = [_to_pixels(pdf_page, image.size, rectangle) for rectangle in rectangles]
    overlay = Image.new("RGBA", image.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    for box in boxes:
        draw.rectangle(box, fill=HIGHLIGHT, outline=OUTLINE, width=1)
    out = io.BytesIO()
    Image.alpha_composite(image, overlay).convert("RGB").save(out, "PNG", compress_level=3)
    textpage.close()
    return PageImage(document.id, page, pages, image.size[0], image.size[1], boxes, characters, boxed,
                     out.getvalue())


def _span_rectangles(textpage, document: Document, page: int, start: int, end: int):
    """The span's characters on this page as line rectangles (PDF points), how many there are (spaces aside) and
    how many were found on the page."""
    import pypdfium2.raw as pdfium_c

    pages = {p.number: p for p in document.pages}
    span = pages.get(page)
    if span is None:  # the page has no text of its own in the document (an image-only page)
        return [], 0, 0
    left, right = max(start, span.start), min(end, span.end)
    glyphs = [chr(pdfium_c.FPDFText_GetUnicode(textpage.raw, i)) for i in range(textpage.count_chars())]
    found = _aligned(document.text[span.start:span.end], glyphs)
    wanted = [offset for offset in range(left - span.start, right - span.start)
              if not document.text[span.start + offset].isspace()]
    indices = sorted({found[offset] for offset in wanted if offset in found})
    boxes = [(index, textpage.get_charbox(index, loose=True)) for index in indices]
    boxes = [(index, box) for index, box in boxes if box[2] > box[0] and box[3] > box[1]]
    return _lines(boxes), len(wanted), sum(1 for offset in wanted if offset in found)


def _folded(characters) -> tuple[str, list[int]]:
    """The non-space characters of `characters` ((position, character) pairs), NFKC-folded (a ligature "ﬁ" is
    "fi"), and the position each folded character came from."""
    text, origin = [], []
    for position, character in characters:
        character = HYPHENS.get(character, character)
        if character.isspace() or unicodedata.category(character) in ("Cc", "Cf"):
            continue
        for folded in unicodedata.normalize("NFKC", character):
            text.append(folded)
            origin.append(position)
    return "".join(text), origin


def _aligned(ingested: str, glyphs: list[str]) -> dict[int, int]:
    """Ingested page offset → PDFium character index, for every non-space character the two extractions share."""
    a, a_origin = _folded(enumerate(ingested))
    b, b_origin = _folded(enumerate(glyphs))
    found: dict[int, int] = {}
    for block in SequenceMatcher(None, a, b, autojunk=False).get_matching_blocks():
        for k in range(block.size):
            found.setdefault(a_origin[block.a + k], b_origin[block.b + k])
    return found


def _lines(boxes: list[tuple[int, Rectangle]]) -> list[Rectangle]:
    """Character boxes (in reading order) merged into one rectangle per run on one line: a run ends where the
    next character is not beside the last one (a new line, another column, a gap wider than two line heights)."""
    merged: list[Rectangle] = []
    for _, (left, bottom, right, top) in boxes:
        if merged:
            m_left, m_bottom, m_right, m_top = merged[-1]
            height = max(m_top - m_bottom, top - bottom)
            overlap = min(top, m_top) - max(bottom, m_bottom)
            if overlap > 0.5 * height and m_left - 1 <= left <= m_right + 2 * height:
                merged[-1] = (m_left, min(bottom, m_bottom), max(right, m_right), max(top, m_top))
                continue
        merged.append((left, bottom, right, top))
    return merged


def _to_pixels(pdf_page, size: tuple[int, int], rectangle: Rectangle) -> tuple[int, int, int, int]:
    """A rectangle in PDF points as (left, top, right, bottom) pixels of the page as rendered (PDFium's own
    transform: crop box, rotation and scale)."""
    import pypdfium2.raw as pdfium_c

    corners = []
    for x, y in ((rectangle[0], rectangle[1]), (rectangle[2], rectangle[3])):
        device_x, device_y = ctypes.c_int(), ctypes.c_int()
        pdfium_c.FPDF_PageToDevice(pdf_page.raw, 0, 0, size[0], size[1], 0, x, y, ctypes.byref(device_x),
                                     ctypes.byref(device_y))
        corners.append((device_x.value, device_y.value))
    (x0, y0), (x1, y1) = corners
    return min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)
