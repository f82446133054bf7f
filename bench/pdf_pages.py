"""Answers checked at their source, on PDFs: `python -m bench pdf-pages [--articles 24] [--questions 150]`.

SQuAD-Shifts new_wiki articles are typeset as PDFs by ReportLab (a PDF producer of its own, not spanqa's code): one,
two or three columns in turn, several pages each. spanqa ingests them (pypdf's text), answers the articles'
questions, and for every answer it gives (each candidate in `answers`) the page image and the text view are made
as a user opens them. Then, independently of how spanqa placed its boxes:

- the page's characters under the highlight boxes (PDFium's character boxes, a character under a box when its
  centre is) are read back and compared with the answer: every non-space character of the answer boxed, and no
  character outside it under a box;
- the view's `<mark id="answer">` holds exactly the answer's text;
- the time to render a page image (pypdfium2 at 108 dpi, boxes, PNG), median and 90th percentile.
"""

from __future__ import annotations

import argparse
import html
import io
import json
import re
import statistics
import tempfile
import time
from pathlib import Path

from bench.common import markdown_table, write_json

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
OUT = Path(__file__).resolve().parent / "out"

__all__ = ["typeset_pdf", "text_under_boxes", "main"]


def typeset_pdf(title: str, paragraphs: list[str], columns: int = 1) -> bytes:
    """A Letter-size PDF of `paragraphs` under `title`, flowed through `columns` columns and as many pages as
    they take (ReportLab's Platypus)."""
    from reportlab.lib.pagesizes import letter
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.platypus import BaseDocTemplate, Frame, PageTemplate, Paragraph

    out = io.BytesIO()
    document = BaseDocTemplate(out, pagesize=letter, title=title)
    gap = 14
    width = (document.width - gap * (columns - 1)) / columns
    frames = [Frame(document.leftMargin + i * (width + gap), document.bottomMargin, width, document.height,
                    id=f"column{i}") for i in range(columns)]
    document.addPageTemplates([PageTemplate(id="page", frames=frames)])
    styles = getSampleStyleSheet()
    story = [Paragraph(html.escape(title), styles["Heading1"])]
    story += [Paragraph(html.escape(p), styles["BodyText"]) for p in paragraphs]
    document.build(story)
    return out.getvalue()


def text_under_boxes(pdf: bytes, page: int, boxes: list[list[int]], size: tuple[int, int]) -> tuple[str, str]:
    """(the non-space characters of page `page` whose centres lie under `boxes`, in PDFium's order; the same for
    the page's characters outside them), boxes in pixels of a rendering `size` big."""
    import pypdfium2 as pdfium
    import pypdfium2.raw as pdfium_c
    from spanqa.plugin.engine.page_image import HYPHENS

    document = pdfium.PdfDocument(pdf)
    pdf_page = document[page - 1]
    width, height = pdf_page.get_size()
    textpage = pdf_page.get_textpage()
    under, outside = [], []
    for index in range(textpage.count_chars()):
        character = chr(pdfium_c.FPDFText_GetUnicode(textpage.raw, index))
        character = HYPHENS.get(character, character)  # a line-end hyphen, as PDFium codes it
        if character.isspace():
            continue
        left, bottom, right, top = textpage.get_charbox(index, loose=True)
        x = (left + right) / 2 * size[0] / width
        y = (height - (bottom + top) / 2) * size[1] / height
        inside = any(b[0] <= x <= b[2] and b[1] <= y <= b[3] for b in boxes)
        (under if inside else outside).append(character)
    document.close()
    return "".join(under), "".join(outside)


def _articles(count: int) -> list[tuple[str, list[str], list[str]]]:
    data = json.loads((SHARED / "squadshifts" / "new_wiki_v1.0.json").read_text())["data"]
    return [(a["title"], [p["context"] for p in a["paragraphs"]],
             [p["qas"][0]["question"] for p in a["paragraphs"] if p["qas"]]) for a in data[:count]]


def _check(service, answer: dict, pdf: bytes) -> dict:
    """One answer opened as a user opens it: its page image (timed) and its text view, checked."""
    from collections import Counter

    from spanqa.ui.render import span_view_html

    where = {"document_id": answer["document_id"], "start": answer["start"], "end": answer["end"]}
    started = time.perf_counter()
    image = service.call("page", {**where, "page": answer["page"]}).value
    seconds = time.perf_counter() - started
    under, _ = text_under_boxes(pdf, image.page, image.boxes, (image.width, image.height))
    view = service.call("view", where).data
    marked = re.search(r'<mark id="answer">(.*?)</mark>', span_view_html(view), re.S)
    document = service.engine.collection.document(answer["document_id"])
    page = next(p for p in document.pages if p.number == answer["page"])
    # The characters of the answer on this page (one across a page break continues on the next page's image).
    on_page = re.sub(r"\s+", "", document.text[max(answer["start"], page.start):min(answer["end"], page.end)])
    boxed, wanted = Counter(under), Counter(on_page)
    return {"render_s": seconds, "all_boxed": not wanted - boxed, "nothing_outside": not boxed - wanted,
            "missing": "".join((wanted - boxed).elements()), "extra": "".join((boxed - wanted).elements()),
            "text": answer["text"], "page_text": on_page,
            "mark_exact": bool(marked) and html.unescape(marked.group(1)) == answer["text"],
            "across_pages": answer["end"] > page.end}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--articles", type=int, default=24)
    parser.add_argument("--questions", type=int, default=150)
    args = parser.parse_args(argv)
    from spanqa.plugin.doors.service import Service

    from spanqa.settings import Settings

    articles = _articles(args.articles)
    pdfs = {f"{i:02d}-{c}col.pdf": typeset_pdf(title, paragraphs, c)
            for i, (title, paragraphs, _) in enumerate(articles) for c in [1 + i % 3]}
    questions = [q for _, _, qs in articles for q in qs][: args.questions]
    with tempfile.TemporaryDirectory() as tmp:
        service = Service.open(str(Path(tmp) / "collection"), Settings.from_env(), create=True)
        service.ingest(list(pdfs.items()))
        by_id = {d.id: pdfs[d.source] for d in service.engine.collection.documents()}
        checks = []
        for question in questions:
            for answer in service.call("answer", {"question": question, "min_score": 0}).data["answers"]:
                checks.append(_check(service, answer, by_id[answer["document_id"]]))
    pages = {name: _page_count(pdf) for name, pdf in pdfs.items()}
    renders = sorted(c["render_s"] for c in checks)
    result = {
        "pdfs": len(pdfs), "pages": sum(pages.values()),
        "columns": {c: sum(1 for n in pdfs if n.endswith(f"{c}col.pdf")) for c in (1, 2, 3)},
        "questions": len(questions), "answers": len(checks),
        "answers_fully_boxed": sum(c["all_boxed"] for c in checks) / max(1, len(checks)),
        "answers_with_a_box_outside": sum(not c["nothing_outside"] for c in checks),
        "mark_exact": sum(c["mark_exact"] for c in checks) / max(1, len(checks)),
        "spans_across_pages": sum(c["across_pages"] for c in checks),
        "misses": [{k: c[k] for k in ("text", "missing", "extra")} for c in checks
                   if not (c["all_boxed"] and c["nothing_outside"])][:10],
        "render_ms_p50": 1000 * statistics.median(renders), "render_ms_p90": 1000 * renders[int(0.9 * len(renders))],
    }
    write_json(OUT / "pdf-pages.json", result)
    shown = {k: v for k, v in result.items() if k not in ("columns", "misses")}
    print(markdown_table(list(shown), [list(shown.values())]))
    return 0


def _page_count(pdf: bytes) -> int:
    import pypdfium2 as pdfium

    document = pdfium.PdfDocument(pdf)
    count = len(document)
    document.close()
    return count
