"""Test helpers: tiny real files built in-test."""

from __future__ import annotations

import contextlib
import io
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

# Short documents on unrelated topics, plus near-duplicates (error codes one digit apart) that only words tell apart.
CORPUS = {
    "error-a.txt": "Pump error E-4711 means the motor overheated; let it cool for an hour.",
    "error-b.txt": "Pump error E-4712 means the water filter is clogged and must be rinsed.",
    "error-c.txt": "Pump error E-4713 means the water tank is empty; refill it.",
    "noise.txt": "To reduce loud sounds during operation, place the unit on the rubber mat that ships in the box.",
    "tower.txt": "The Eiffel Tower was completed in 1889 for the World's Fair in Paris. It is 330 metres tall.",
    "solar.md": "Photovoltaic panels convert sunlight into electricity. Modern silicon cells reach about 20 "
                "percent efficiency and lose roughly half a percent of output per year.",
    "bread.txt": "Sourdough bread rises because wild yeast and lactic acid bacteria ferment the dough overnight.",
    "visa.txt": "Travellers from the listed countries must apply for the electronic visa at least 72 hours "
                "before departure.",
}


def write_corpus(folder: Path, corpus: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in corpus.items():
        (folder / name).write_text(text)
    return folder


def make_pdf(pages: list[str]) -> bytes:
    """A minimal valid PDF with one line of Helvetica text per page (pypdf extracts it back)."""
    objects: list[bytes] = []
    n_pages = len(pages)
    font_id = 3 + 2 * n_pages
    kids = " ".join(f"{3 + 2 * i} 0 R" for i in range(n_pages))
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {n_pages} >>".encode())
    for i, text in enumerate(pages):
        safe = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        stream = f"BT /F1 12 Tf 72 720 Td ({safe}) Tj ET".encode()
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {4 + 2 * i} 0 R "
            f"/Resources << /Font << /F1 {font_id} 0 R >> >> >>".encode()
        )
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref))
    return out.getvalue()


def make_docx(paragraphs: list[str]) -> bytes:
    import docx

    document = docx.Document()
    for text in paragraphs:
        document.add_paragraph(text)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def spanqa_serve(arguments: list[str], home: Path) -> Iterator[str]:
    """A real `spanqa serve ARGUMENTS` process on a free loopback port, home in `home`: its URL once it is ready;
    stopped (and its port freed) on leaving."""
    port = free_port()
    process = subprocess.Popen([str(Path(sys.executable).parent / "spanqa"), "serve", *arguments, "--port",
                                str(port)], env={**os.environ, "SPANQA_HOME": str(home)}, stderr=subprocess.PIPE,
                               text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(process, url)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def wait_until_ready(process: subprocess.Popen, base: str, seconds: float = 300) -> None:
    """Wait for a `spanqa serve` process to answer /readyz (the first start in a session may train the router)."""
    import httpx
    import pytest

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"spanqa serve exited: {process.stderr.read() if process.stderr else ''}")
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    process.kill()
    pytest.fail("spanqa serve did not become ready")


class SpanqaEmbeddings:
    """LangChain `Embeddings` over spanqa's bundled embedder, so the tests' stores need no model download."""

    def __init__(self, embedder) -> None:
        self.embedder = embedder

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embedder.encode(texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embedder.encode(text)[0].tolist()
