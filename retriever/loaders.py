"""Files → Documents. Plain text, Markdown, HTML (visible text only), PDF (pages kept) and DOCX.

A file that cannot be read becomes a `SkippedFile` with a reason a user can act on; it never stops the rest of
a batch. Every loader takes bytes, so a path on disk and an upload in the chat UI go through the same code.
"""

from __future__ import annotations

import fnmatch
import io
import os
import re
import unicodedata
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from spanqa.retriever.records import Document, PageSpan, SkippedFile

from spanqa.errors import InputError
from spanqa.settings import DEFAULT_MAX_FILE_BYTES

__all__ = ["LoadError", "LoadReport", "SUPPORTED_SUFFIXES", "list_files", "load_bytes", "load_file", "load_paths",
           "safe_source_name"]

SUPPORTED_SUFFIXES = (".txt", ".md", ".markdown", ".rst", ".html", ".htm", ".pdf", ".docx")
# A DOCX is a zip: refuse one whose parts would inflate past this (a zip bomb) before opening it.
MAX_DOCX_UNCOMPRESSED = 200 * 1024 * 1024


class LoadError(InputError):
    """A file could not be turned into text; the message is the reason shown to the user."""


@dataclass
class LoadReport:
    documents: list[Document] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)


def safe_source_name(name: str) -> str:
    """A display name for an upload: its last path component, no NULs or control characters.

    Uploaded names are labels, never paths spanqa writes to; this keeps `../../etc/passwd` from even looking
    like one.
    """
    name = "".join(ch for ch in name if ch.isprintable()).replace("\\", "/")
    base = name.rsplit("/", 1)[-1].strip().lstrip(".")
    return base or "upload"


def _normalize_text(text: str) -> str:
    """One newline convention, no NULs or stray control characters (they break tokenizers and displays)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch) != "Cc")


def _looks_binary(data: bytes) -> bool:
    sample = data[:8192]
    if b"\x00" in sample:
        return True
    controls = sum(1 for b in sample if b < 32 and b not in (9, 10, 12, 13))
    return controls > 0.1 * max(1, len(sample))


def _decode_text(data: bytes) -> str:
    if _looks_binary(data):
        raise LoadError("looks like a binary file, not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is None:
        raise LoadError("is not valid UTF-8 and its text encoding could not be detected")
    return str(best)


def _remove_keeping_tail(element) -> None:
    """Drop an element and its content, keeping the text that follows it."""
    parent = element.getparent()
    if parent is None:
        return
    if element.tail:
        previous = element.getprevious()
        if previous is not None:
            previous.tail = (previous.tail or "") + element.tail
        else:
            parent.text = (parent.text or "") + element.tail
    parent.remove(element)


def _load_text(data: bytes) -> list[str]:
    return [_decode_text(data)]


_HTML_BLOCKS = ["p", "div", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "blockquote", "section",
                "article", "header", "footer", "table", "ul", "ol", "dd", "dt", "title", "main", "nav", "aside"]


_HTML_INVISIBLE = ("script", "style", "noscript", "template", "head", "svg")


def _load_html(data: bytes) -> list[str]:
    """Visible text via libxml2 (lxml), which bounds nesting depth: BeautifulSoup took seconds on 10,000 nested
    <div>s and did not finish on 100,000 — a one-file denial of service."""
    from lxml import etree

    text = _decode_text(data)
    parser = etree.HTMLParser(encoding="utf-8", recover=True, no_network=True, remove_comments=True,
                              remove_pis=True, huge_tree=True)
    root = etree.fromstring(text.encode("utf-8"), parser)
    if any(e.type_name == "ERR_RESOURCE_LIMIT" for e in parser.error_log):
        raise LoadError("is HTML nested more deeply than the parser allows (2,048 levels); refused")
    if root is None:
        raise LoadError("is empty")
    for element in list(root.iter(*_HTML_INVISIBLE)):
        _remove_keeping_tail(element)
    # Block elements end a line; inline ones (<b>, <a>…) flow with their text.
    for element in root.iter(*_HTML_BLOCKS, "br"):
        element.tail = "\n" + (element.tail or "")
    visible = "".join(root.itertext())
    # Collapse the whitespace that markup leaves behind, keeping paragraph breaks.
    lines = [" ".join(line.split()) for line in visible.split("\n")]
    return ["\n".join(line for line in lines if line)]


def _load_pdf(data: bytes) -> list[str]:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise LoadError("is an encrypted PDF (a password is needed)")
        return [page.extract_text() or "" for page in reader.pages]
    except LoadError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        raise LoadError(f"is not a readable PDF ({type(exc).__name__}: {exc})") from exc
    except Exception as exc:  # pypdf raises many kinds on damaged files; none should stop a batch
        raise LoadError(f"is not a readable PDF ({type(exc).__name__})") from exc


def _load_docx(data: bytes) -> list[str]:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            if sum(info.file_size for info in archive.infolist()) > MAX_DOCX_UNCOMPRESSED:
                raise LoadError("is a DOCX that would inflate past 200 MB (refused as a possible zip bomb)")
    except zipfile.BadZipFile as exc:
        raise LoadError("is not a valid DOCX (not a zip archive)") from exc
    import docx

    try:
        document = docx.Document(io.BytesIO(data))
    except Exception as exc:  # python-docx raises KeyError, ValueError, lxml errors… on broken parts
        raise LoadError(f"is not a readable DOCX ({type(exc).__name__})") from exc
    blocks = [p.text for p in document.paragraphs]
    for table in document.tables:
        for row in table.rows:
            blocks.append(" | ".join(cell.text for cell in row.cells))
    return ["\n\n".join(b for b in blocks if b.strip())]


_LOADERS = {
    ".txt": _load_text, ".md": _load_text, ".markdown": _load_text, ".rst": _load_text,
    ".html": _load_html, ".htm": _load_html, ".pdf": _load_pdf, ".docx": _load_docx,
}


def _check_size(size: int, max_bytes: int) -> None:
    if size > max_bytes:
        raise LoadError(f"is {size / 2**20:,.1f} MB, over the {max_bytes / 2**20:,.1f} MB file size limit (raise it "
                        "with --max-file-mb or SPANQA_MAX_FILE_MB)")


def load_bytes(source: str, data: bytes, max_bytes: int = DEFAULT_MAX_FILE_BYTES) -> Document:
    """Turn one file's bytes into a Document. Raises LoadError with the reason it cannot."""
    suffix = Path(source).suffix.lower()
    loader = _LOADERS.get(suffix)
    if loader is None:
        raise LoadError(f"has an unsupported file type {suffix or '(none)'}; supported: "
                        + ", ".join(SUPPORTED_SUFFIXES))
    _check_size(len(data), max_bytes)
    if not data.strip():
        raise LoadError("is empty")
    pages = [_normalize_text(p).strip() for p in loader(data)]
    text_parts: list[str] = []
    spans: list[PageSpan] = []
    cursor = 0
    for number, page_text in enumerate(pages, start=1):
        if text_parts:
            text_parts.append("\n\n")
            cursor += 2
        spans.append(PageSpan(number, cursor, cursor + len(page_text)))
        text_parts.append(page_text)
        cursor += len(page_text)
    text = "".join(text_parts)
    if not text.strip():
        hint = " (a scanned PDF? spanqa does not run OCR)" if suffix == ".pdf" else ""
        raise LoadError(f"has no extractable text{hint}")
    title = _title_of(text, source)
    return Document(source=source, text=text, pages=spans, title=title, original=data)


def _title_of(text: str, source: str) -> str:
    """The document's first heading-like line: a Markdown heading or a reStructuredText title, else the first line
    that reads as words. Badge rows (`|build| |pypi|`, `[![...](...)]`), directives and rule lines are skipped: the
    title is embedded with every passage (see `retriever.base.embedding_text`), so it must say what the document is
    about. Falls back to the file name."""
    for raw in text.lstrip().splitlines()[:40]:
        line = re.sub(r"\[?!\[[^\]]*\]\([^)]*\)(?:\]\([^)]*\))?", "", raw.strip().lstrip("#"))  # badge images
        line = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", line).strip()  # links keep their words
        if not line or line.startswith(("|", "..", ":", "<")) or not re.search(r"[^\W_]", line):
            continue
        return line[:120]
    return Path(source).name


def matches(path: Path, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatch(path.as_posix(), p) or fnmatch.fnmatch(path.name, p) for p in patterns)


def list_files(paths: list[str | Path], include: list[str] | None = None,
               exclude: list[str] | None = None) -> tuple[list[Path], list[SkippedFile]]:
    """The files `load_paths` would read, in its order, and the paths that do not exist. Globs in
    `include`/`exclude` match a file's path or name.

    A folder contributes only files with a supported suffix; a file named explicitly is always tried, so an
    unsupported one gets a reason instead of silence.
    """
    files: list[Path] = []
    missing: list[SkippedFile] = []
    for raw in paths:
        root = Path(raw)
        if not root.exists():
            missing.append(SkippedFile(str(raw), "does not exist"))
            continue
        if root.is_dir():
            candidates, unreadable = _walk(root)
            missing += unreadable
        else:
            candidates = [root]
        files += [path for path in candidates
                  if not (include and not matches(path, include)) and not (exclude and matches(path, exclude))]
    return files, missing


def _walk(root: Path) -> tuple[list[Path], list[SkippedFile]]:
    """The supported files under `root`, sorted, and the folders that could not be read (each with its reason).
    Symbolic links to folders are not followed, so a link loop ends nowhere."""
    found: list[Path] = []
    unreadable: list[SkippedFile] = []

    def refused(error: OSError) -> None:
        unreadable.append(SkippedFile(str(error.filename), f"{error.filename} could not be read: {error.strerror}"))

    for folder, _, names in os.walk(root, onerror=refused):
        found += [path for path in (Path(folder) / name for name in names)
                  if path.suffix.lower() in _LOADERS and path.is_file()]
    return sorted(found), unreadable


def load_file(path: Path, max_bytes: int = DEFAULT_MAX_FILE_BYTES) -> Document | SkippedFile:
    """One file as a Document, or the reason it was skipped. Its source is its absolute path."""
    source = str(path.resolve())
    try:
        _check_size(path.stat().st_size, max_bytes)  # before reading: a huge file never enters memory
        return load_bytes(source, path.read_bytes(), max_bytes)
    except LoadError as exc:
        return SkippedFile(source, f"{path.name} {exc}")
    except OSError as exc:
        return SkippedFile(source, f"{path.name} could not be read: {exc.strerror}")


def load_paths(
    paths: list[str | Path],
    include: list[str] | None = None,
    exclude: list[str] | None = None,
    max_bytes: int = DEFAULT_MAX_FILE_BYTES,
) -> LoadReport:
    """Load files and folders (recursively): `list_files`, then `load_file` for each."""
    files, missing = list_files(paths, include, exclude)
    report = LoadReport(skipped=missing)
    for path in files:
        loaded = load_file(path, max_bytes)
        (report.skipped if isinstance(loaded, SkippedFile) else report.documents).append(loaded)
    return report
