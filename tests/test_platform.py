"""Any x86-64 machine: the native code the suite runs works on this CPU (or says which feature it lacks), the test
PostgreSQL leaves the machine as it found it, and the bf16 detection can be made to answer either way."""

from __future__ import annotations

import os
import stat
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
