from __future__ import annotations

import pytest
from helpers import make_docx, make_pdf
from spanqa.retriever.loaders import LoadError, load_bytes, load_paths, safe_source_name


def test_text_and_markdown_keep_their_text():
    doc = load_bytes("notes.md", "# Title\n\nCafé au lait — 3 €.\r\nSecond line.".encode())
    assert doc.text == "# Title\n\nCafé au lait — 3 €.\nSecond line."
    assert doc.title == "Title"
    assert doc.pages[0].start == 0 and doc.pages[0].end == len(doc.text)


@pytest.mark.parametrize(("text", "title"), [
    ("==============\npytest-timeout\n==============\n\nText.", "pytest-timeout"),  # reStructuredText overline
    ("|Logo|\n\ntqdm\n====\n\nText.", "tqdm"),  # a badge row first
    ("# Thread-pool Controls [![Build](https://x/b.svg)](https://x)\n\nText.", "Thread-pool Controls"),
    (".. image:: https://x/b.svg\n   :target: https://x\n\nbackoff\n=======\n", "backoff"),
    ("|a| |b|\n\n.. |a| image:: https://x\n", "notes.rst"),  # nothing but badges: the file name
])
def test_the_title_says_what_the_document_is_about(text, title):
    """The title is embedded with every passage, so badges, directives and rule lines never become one."""
    assert load_bytes("notes.rst", text.encode()).title == title


def test_html_keeps_visible_text_only():
    html = (b"<html><head><title>x</title><style>.a{}</style></head><body><h1>Guide</h1>"
            b"<p>Press <b>reset</b> twice.</p><script>alert('x')</script><noscript>no</noscript></body></html>")
    doc = load_bytes("page.html", html)
    assert doc.text == "Guide\nPress reset twice."


def test_pdf_keeps_page_numbers():
    doc = load_bytes("manual.pdf", make_pdf(["Install the pump first.", "Then open the valve."]))
    assert [p.number for p in doc.pages] == [1, 2]
    second = doc.pages[1]
    assert doc.text[second.start:second.end] == "Then open the valve."
    assert doc.page_at(doc.text.index("valve")) == 2


def test_docx_paragraphs():
    doc = load_bytes("memo.docx", make_docx(["First paragraph.", "Second paragraph."]))
    assert doc.text == "First paragraph.\n\nSecond paragraph."


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("empty.txt", b"", "is empty"),
        ("blank.txt", b"  \n\t ", "is empty"),
        ("image.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary"),
        ("broken.pdf", b"%PDF-1.4 this is not really a pdf", "not a readable PDF"),
        ("broken.docx", b"PK\x03\x04 not a zip", "not a valid DOCX"),
        ("table.xlsx", b"whatever", "unsupported file type .xlsx"),
        ("no-text.html", b"<html><script>x()</script></html>", "no extractable text"),
    ],
)
def test_bad_files_are_refused_with_a_reason(name, data, reason):
    with pytest.raises(LoadError, match=reason):
        load_bytes(name, data)


def test_size_limit_names_the_setting():
    with pytest.raises(LoadError, match="over the 1.0 MB file size limit"):
        load_bytes("big.txt", b"a" * (2 * 2**20), max_bytes=2**20)


def test_invalid_utf8_is_decoded_not_dropped():
    doc = load_bytes("latin.txt", "Müller zahlt 5 € für Käse.".encode("cp1252"))
    assert "Müller" in doc.text


def test_encrypted_pdf_is_skipped_with_reason():
    import io

    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(make_pdf(["secret"]))))
    writer.encrypt("password")
    buffer = io.BytesIO()
    writer.write(buffer)
    with pytest.raises(LoadError, match="encrypted"):
        load_bytes("locked.pdf", buffer.getvalue())


def test_folders_recurse_with_globs_and_keep_going_after_bad_files(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.txt").write_text("Alpha text.")
    (tmp_path / "sub" / "b.md").write_text("Beta text.")
    (tmp_path / "sub" / "skip.md").write_text("Skipped by glob.")
    (tmp_path / "sub" / "bad.pdf").write_bytes(b"%PDF-1.4 garbage")
    (tmp_path / "photo.jpg").write_bytes(b"\xff\xd8\xff")
    report = load_paths([tmp_path, tmp_path / "missing.txt"], exclude=["skip*"])
    assert sorted(d.text for d in report.documents) == ["Alpha text.", "Beta text."]
    reasons = " | ".join(s.reason for s in report.skipped)
    assert "bad.pdf is not a readable PDF" in reasons
    assert "does not exist" in reasons
    assert "photo.jpg" not in reasons  # a folder only offers supported files


@pytest.mark.parametrize("name", ["../../etc/passwd.txt", "/abs/path/x.txt", "a\x00b.txt", "..\\..\\win.txt"])
def test_upload_names_are_labels_not_paths(name):
    safe = safe_source_name(name)
    assert "/" not in safe and "\\" not in safe and "\x00" not in safe and not safe.startswith(".")
