"""A PDF answer checked at its source: its page rendered from the original file, the span's characters boxed.

The PDFs are typeset by ReportLab in two columns over several pages; what is boxed is checked against PDFium's
own character boxes, and the PNG a real `spanqa serve` returns against a plain rendering of the same page.
"""

from __future__ import annotations

import html
import io
import re
import sys
from collections import Counter
from pathlib import Path

import httpx
import pytest
from helpers import spanqa_serve
from spanqa.plugin.engine.page_image import RENDER_SCALE, render_page
from spanqa.retriever.loaders import load_bytes

from bench.pdf_pages import text_under_boxes, typeset_pdf
from spanqa.errors import InputError

SPANQA = str(Path(sys.executable).parent / "spanqa")
FILLER = [f"Section {n} of the handbook describes the {w} rota, which the harbour board reviews every {n + 2} "
          f"months and posts in the {w} office beside the tide tables." for n, w in
          enumerate(["north", "south", "east", "west", "upper", "lower", "inner", "outer"] * 4)]
FACT = "The keeper's logbook is kept in the brass chest under the spiral stairs, beside the spare lamp wicks."
LATE_FACT = "Fog signals are sounded every thirty seconds while visibility stays below two nautical miles."
PARAGRAPHS = [*FILLER[:12], FACT, *FILLER[12:], LATE_FACT]


@pytest.fixture(scope="module")
def pdf() -> bytes:
    return typeset_pdf("Lighthouse handbook", PARAGRAPHS, columns=2)


def _span(text: str, phrase: str) -> tuple[int, int]:
    """Where `phrase` is in the ingested text, whatever line breaks the extraction put between its words."""
    pattern = r"\s+".join(re.escape(word) for word in phrase.split())
    found = re.search(pattern, text)
    assert found, phrase
    return found.start(), found.end()


def _non_space(text: str) -> Counter:
    return Counter(re.sub(r"\s+", "", text))


@pytest.mark.parametrize("phrase", ["in the brass chest under the spiral stairs, beside the spare lamp wicks",
                                    "every thirty seconds while visibility stays below two nautical miles",
                                    "Lighthouse handbook"])
def test_every_character_of_the_span_is_boxed_and_nothing_else(pdf, phrase):
    from PIL import Image

    document = load_bytes("handbook.pdf", pdf)
    assert len(document.pages) >= 2, "the handbook runs over pages"
    start, end = _span(document.text, phrase)
    page = document.page_at(start)
    image = render_page(pdf, document, page, start, end)
    under, _ = text_under_boxes(pdf, page, image.boxes, (image.width, image.height))
    assert _non_space(under) == _non_space(phrase) and image.boxed == image.characters > 0
    png = Image.open(io.BytesIO(image.png)).convert("RGB")
    assert png.size == (image.width, image.height) == (round(612 * RENDER_SCALE), round(792 * RENDER_SCALE))
    left, top, right, bottom = image.boxes[0]
    tinted = [png.getpixel((x, (top + bottom) // 2)) for x in range(left + 1, right)]
    assert any(r > 200 and b < 190 for r, _, b in tinted), "the highlight is drawn on the page"
    assert png.getpixel((5, 5)) == (255, 255, 255), "the margin is untouched"


def test_a_page_or_span_that_is_not_there_is_refused_by_name(pdf):
    document = load_bytes("handbook.pdf", pdf)
    with pytest.raises(InputError, match=r"has \d+ page\(s\); page 99 does not exist"):
        render_page(pdf, document, 99, 0, 5)
    with pytest.raises(InputError, match=r"span 0:999999 is not within"):
        render_page(pdf, document, 1, 0, 999_999)
    with pytest.raises(InputError, match="not a PDF PDFium can open"):
        render_page(b"%PDF-1.4 broken", document, 1, 0, 5)


@pytest.fixture(scope="module")
def served(pdf, tmp_path_factory, embedder):
    """A real `spanqa serve` on a collection holding the handbook (PDF) and a text file."""
    from spanqa.retriever import LocalCollection

    folder = tmp_path_factory.mktemp("pdf-served")
    (folder / "handbook.pdf").write_bytes(pdf)
    (folder / "notes.txt").write_text("The harbour master's office opens at 7 am.")
    LocalCollection(folder / "collection", embedder=embedder).ingest([folder / "handbook.pdf", folder / "notes.txt"])
    with spanqa_serve(["--collection", str(folder / "collection")], tmp_path_factory.mktemp("pdf-home")) as url:
        yield url


@pytest.mark.integration
def test_a_pdf_answer_opens_on_its_page_with_the_answer_boxed_and_marked(served, pdf):
    import pypdfium2 as pdfium
    from PIL import Image, ImageChops

    with httpx.Client(base_url=served, timeout=60) as client:
        data = client.post("/v1/answer", json={"question": "Where is the keeper's logbook kept?"}).json()
        best = data["answers"][0]
        assert "brass chest" in best["text"] and best["source"].endswith("handbook.pdf")
        assert best["page_image"] == (f"/v1/documents/{best['document_id']}/pages/{best['page']}.png"
                                      f"?start={best['start']}&end={best['end']}")
        shot = client.get(best["page_image"])
        assert shot.status_code == 200 and shot.headers["content-type"] == "image/png"
        png = Image.open(io.BytesIO(shot.content)).convert("RGB")
        # What the highlight changed, against PDFium's plain rendering of the same page: only where the answer is.
        page = pdfium.PdfDocument(pdf)[best["page"] - 1]
        plain = page.render(scale=RENDER_SCALE).to_pil().convert("RGB")
        assert png.size == plain.size
        changed = ImageChops.difference(png, plain).convert("L").point(lambda v: 255 if v > 24 else 0).getbbox()
        textpage = page.get_textpage()
        height = page.get_size()[1]
        boxes = [textpage.get_charbox(i, loose=True) for i in range(textpage.count_chars())
                 if not textpage.get_text_range(i, 1).isspace()]
        text = "".join(textpage.get_text_range(i, 1) for i in range(textpage.count_chars())
                       if not textpage.get_text_range(i, 1).isspace())
        first = text.index(re.sub(r"\s+", "", best["text"]))
        answer_boxes = boxes[first: first + len(re.sub(r"\s+", "", best["text"]))]
        expected = (min(b[0] for b in answer_boxes) * RENDER_SCALE, (height - max(b[3] for b in answer_boxes))
                    * RENDER_SCALE, max(b[2] for b in answer_boxes) * RENDER_SCALE,
                    (height - min(b[1] for b in answer_boxes)) * RENDER_SCALE)
        assert changed is not None
        assert all(abs(a - b) <= 3 for a, b in zip(changed, expected, strict=True)), (changed, expected)

        view = client.get(best["view"].split("#")[0])
        marked = re.search(r'<mark id="answer">(.*?)</mark>', view.text, re.S)
        assert marked and html.unescape(marked.group(1)) == best["text"]
        assert f'<img src="{html.escape(best["page_image"])}"' in view.text
        assert "img-src 'self'" in view.headers["content-security-policy"]

        notes = client.post("/v1/search", json={"query": "harbour master's office hours", "k": 1}).json()
        assert notes["passages"][0]["source"].endswith("notes.txt") and notes["passages"][0]["page_image"] is None
        as_text = notes["passages"][0]
        refused = client.get(f"/v1/documents/{as_text['document_id']}/pages/1.png?start=0&end=5")
        assert refused.status_code == 400 and "is not a PDF" in refused.json()["error"]["message"]
        beyond = client.get(f"/v1/documents/{best['document_id']}/pages/1.png?start=0&end=99999999")
        assert beyond.status_code == 400 and "0:99999999" in beyond.json()["error"]["message"]
        assert client.get("/v1/documents/unknown/pages/1.png?start=0&end=1").status_code == 404

        hostile = typeset_pdf("Notice", ['<script>alert(1)</script> <a href="javascript:steal()">here</a>'])
        client.post("/v1/documents", files=[("files", ("notice.pdf", hostile, "application/pdf"))])
        notice = next(d for d in client.get("/v1/documents").json()["documents"] if d["source"] == "notice.pdf")
        shown = client.get(f"/v1/documents/{notice['document_id']}/view?start=0&end=6").text
        assert "<script" not in shown and "href=\"javascript" not in shown and "&lt;script&gt;" in shown
        assert client.delete(f"/v1/documents/{notice['document_id']}").status_code == 204
        gone = client.get(f"/v1/documents/{notice['document_id']}/pages/1.png?start=0&end=6")
        assert gone.status_code == 404


@pytest.mark.integration
def test_without_originals_a_pdf_shows_its_text_and_says_why_there_is_no_page(pdf, tmp_path):
    from spanqa.plugin.doors.service import Service

    from spanqa.errors import NotFound
    from spanqa.settings import Settings

    service = Service.open(str(tmp_path / "c"), Settings.from_env(keep_originals=False), create=True)
    service.ingest([("handbook.pdf", pdf)])
    document = service.call("documents").data["documents"][0]
    start, end = _span(service.call("document", {"document_id": document["document_id"]}).data["text"], FACT)
    span = {"document_id": document["document_id"], "start": start, "end": end}
    view = service.call("view", span).data
    assert view["span"].split() == FACT.split() and view["page_image"] is None
    with pytest.raises(NotFound, match="original file of document .* is not kept .*keep_originals.*/view"):
        service.call("page", {**span, "page": view["page"]})


def test_a_hyphen_that_ends_a_line_is_found_where_pdfium_codes_it_apart():
    from spanqa.plugin.engine.page_image import _aligned

    glyphs = list("short") + ["\x02", "\r", "\n"] + list("and long")
    found = _aligned("short-\nand long", glyphs)
    assert found[5] == 5, "the hyphen (PDFium's 0x02 at a line end) is boxed with the rest"
    assert [found[i] for i in (0, 7, 11)] == [0, 8, 12]
