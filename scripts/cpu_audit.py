"""Which native code spanqa runs, and what it asks of the processor.

    .venv/bin/python scripts/cpu_audit.py [--out bench/out/cpu-audit.json]

Answers a question on a small collection and searches a PostgreSQL collection (where psycopg is installed), then
lists every shared object the process has mapped, with the number of AVX-512 (zmm) instructions in each. A count
above zero is not a fault by itself: libraries that pick their kernels at run time (torch's ATen, faiss's dynamic
dispatch, OpenBLAS's DYNAMIC_ARCH, OpenSSL's capability vector) carry AVX-512 code they never run where the CPU
lacks it. What decides is running the code on such a CPU, which the test suite does on an AVX2-only machine; this
report says where to look when one of them dies with SIGILL.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from native_code import AVX512_FEATURE, zmm_instructions  # noqa: E402

from spanqa.settings import cpu_flags, native_bf16  # noqa: E402


def exercise() -> None:
    """Load and run every model and index the product uses on a question."""
    from spanqa.plugin.engine.assistant import Assistant
    from spanqa.retriever import LocalCollection

    with tempfile.TemporaryDirectory() as tmp:
        collection = LocalCollection(Path(tmp) / "c")
        collection.ingest_bytes([("tower.txt", b"The Eiffel Tower is 330 metres tall. It was finished in 1889.")])
        Assistant(collection).respond("How tall is the Eiffel Tower?")
        from spanqa.plugin.engine.page_image import render_page
        from spanqa.retriever.loaders import load_bytes

        from bench.pdf_pages import typeset_pdf  # a PDF page rendered with a span boxed (PDFium)

        pdf = typeset_pdf("Tower", ["The Eiffel Tower is 330 metres tall."], columns=2)
        render_page(pdf, load_bytes("tower.pdf", pdf), 1, 0, 5)
    with contextlib.suppress(ImportError):
        import psycopg  # noqa: F401  (its libpq is loaded on import)


def mapped_libraries() -> list[Path]:
    paths = set()
    for line in Path("/proc/self/maps").read_text().splitlines():
        parts = line.split()
        if len(parts) >= 6 and ".so" in parts[-1]:
            paths.add(Path(parts[-1]))
    return sorted(paths)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("bench/out/cpu-audit.json"))
    args = parser.parse_args()
    exercise()
    rows = [{"library": str(path), "zmm_instructions": zmm_instructions(path)} for path in mapped_libraries()]
    import torch

    report = {"cpu_has_avx512f": AVX512_FEATURE in cpu_flags(), "native_bf16": native_bf16(),
              "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(), "libraries": rows}
    try:
        import faiss

        report["faiss_compile_options"] = faiss.get_compile_options()
    except ImportError:
        pass
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    for row in rows:
        print(f"{row['zmm_instructions']!s:>8}  {row['library']}")
    print({k: v for k, v in report.items() if k != "libraries"})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
