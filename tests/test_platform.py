"""Any x86-64 machine: the native code the suite runs works on this CPU (or says which feature it lacks), the test
PostgreSQL leaves the machine as it found it, and the bf16 detection can be made to answer either way."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from local_postgres import LocalPostgres, pginstall_dir, running_postgres
from native_code import AVX512_FEATURE, pgvector_problem, zmm_instructions

from spanqa.errors import InputError
from spanqa.settings import cpu_flags, native_bf16, resolve_precision


@pytest.mark.postgres
def test_pgvector_inserts_builds_hnsw_and_searches_on_this_cpu():
    """Fails, naming the CPU feature, where the test server's pgvector was built for a newer processor; every other
    PostgreSQL test is skipped with the same reason."""
    with running_postgres() as server:
        problem = pgvector_problem(server)
    assert problem is None, problem


def test_the_pgvector_the_tests_install_needs_no_avx512_unless_the_cpu_has_it():
    zmm = zmm_instructions(pginstall_dir() / "lib" / "postgresql" / "vector.so")
    if zmm is None:
        pytest.skip("objdump (binutils) is not installed, so instructions cannot be counted")
    assert zmm == 0 or AVX512_FEATURE in cpu_flags(), f"vector.so holds {zmm} AVX-512 instructions"


# Python that runs one AVX-512 instruction (vpxorq zmm1, zmm1, zmm1; ret) from executable memory.
_ZMM_CONTROL = """import ctypes, mmap
code = bytes.fromhex("62f1f548efc9c3")
page = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
page.write(code)
ctypes.CFUNCTYPE(None)(ctypes.addressof(ctypes.c_char.from_buffer(page)))()
"""
_PDF_PAGE = """import sys
sys.path.insert(0, sys.argv[1])
from bench.pdf_pages import text_under_boxes, typeset_pdf
from spanqa.plugin.engine.page_image import render_page
from spanqa.retriever.loaders import load_bytes
pdf = typeset_pdf("Tower", ["The Eiffel Tower is 330 metres tall and was finished in 1889. " * 30], columns=2)
document = load_bytes("tower.pdf", pdf)
start = document.text.index("330 metres")
image = render_page(pdf, document, 1, start, start + 10)
print(text_under_boxes(pdf, 1, image.boxes, (image.width, image.height))[0])
"""


@pytest.mark.skipif(shutil.which("qemu-x86_64") is None, reason="qemu-user is not installed (make test installs it)")
def test_a_pdf_page_renders_and_boxes_its_span_on_a_processor_without_avx512(tmp_path):
    """PDFium (pypdfium2) carries AVX-512 code behind run-time dispatch: under qemu's Haswell (AVX2, no AVX-512),
    where any AVX-512 instruction is an illegal instruction, a page still renders with the span boxed."""
    real = os.path.realpath(sys.executable)
    haswell = ["qemu-x86_64", "-cpu", "Haswell", "-0", sys.executable, real]  # argv[0]: the venv's python
    control = subprocess.run([*haswell, "-c", _ZMM_CONTROL], capture_output=True, timeout=300)
    assert control.returncode not in (0, 1), "qemu ran an AVX-512 instruction: the check below would prove nothing"
    script = tmp_path / "page.py"
    script.write_text(_PDF_PAGE)
    run = subprocess.run([*haswell, str(script), str(Path(__file__).resolve().parents[1])], capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip() == "330metres"


def _modes(folders) -> dict[Path, int]:
    return {folder: stat.S_IMODE(folder.stat().st_mode) for folder in folders}


def test_the_test_postgres_changes_no_folder_it_did_not_create():
    wheel = pginstall_dir()
    watched = [Path(tempfile.gettempdir()).resolve(), *Path(tempfile.gettempdir()).resolve().parents,
               wheel, *wheel.parents, *(p for p in wheel.rglob("*") if p.is_dir())]
    if Path.home().exists():
        watched.append(Path.home())
    before = _modes(watched)
    server = LocalPostgres()
    root = server.root
    try:
        server.start()
        assert server.running()
    finally:
        server.close()
    assert _modes(watched) == before
    assert not root.exists() and not server.running()


def test_a_failing_block_still_stops_the_server_and_removes_its_folder():
    with pytest.raises(RuntimeError, match="the test failed"), running_postgres() as server:
        assert server.running()
        raise RuntimeError("the test failed")
    assert not server.running() and not server.root.exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="only root needs the server user to reach the folders")
def test_a_parent_closed_to_other_users_is_reported_not_opened(tmp_path):
    closed = tmp_path / "closed"
    closed.mkdir(mode=0o700)
    with pytest.raises(RuntimeError, match="closed to other users"):
        LocalPostgres(parent=closed)
    assert stat.S_IMODE(closed.stat().st_mode) == 0o700


@pytest.mark.parametrize(("switch", "answer"), [("no", False), ("yes", True), ("NO", False)])
def test_the_bf16_switch_decides_what_auto_precision_becomes(monkeypatch, switch, answer):
    monkeypatch.setenv("SPANQA_CPU_BF16", switch)
    assert native_bf16() is answer
    assert resolve_precision("auto") == ("bf16" if answer else "fp32")


def test_bf16_detection_reads_the_cpu_unless_switched(monkeypatch):
    monkeypatch.delenv("SPANQA_CPU_BF16", raising=False)
    assert native_bf16() == bool({"avx512_bf16", "amx_bf16"} & cpu_flags())
    monkeypatch.setenv("SPANQA_CPU_BF16", "maybe")
    with pytest.raises(InputError, match="SPANQA_CPU_BF16 must be one of auto, no, yes"):
        native_bf16()


def test_the_server_caps_glibc_arenas_unless_the_environment_already_does(monkeypatch):
    import ctypes.util

    from spanqa.retriever.memory import limit_malloc_arenas

    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert limit_malloc_arenas() is False  # the operator's value stands
    monkeypatch.delenv("MALLOC_ARENA_MAX")
    is_glibc = "libc.so.6" in (ctypes.util.find_library("c") or "")
    assert limit_malloc_arenas() is is_glibc
