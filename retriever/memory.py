"""Giving freed native memory back to the system.

The activations of every forward pass come and go, each batch in its own shapes; glibc keeps the freed blocks in
the process heap, where the next batch's differently shaped tensors rarely fit, so a long read or ingest grows the
process long after its tensors are gone. `release_freed_memory` hands them back (`malloc_trim`)."""

from __future__ import annotations

import functools

__all__ = ["release_freed_memory", "limit_malloc_arenas", "SERVER_MALLOC_ARENAS"]

# glibc gives threads that allocate at the same time their own heaps ("arenas"), up to 8 per core, and freed memory
# stays in the arena that held it. A server's request threads spread the passes' buffers over many arenas: under 16
# clients for ten minutes (python -m bench soak) `spanqa serve` grew from 1,007 MB (minutes 2-4) to 1,160 MB (last
# two minutes), peak 1,355 MB; with two arenas it held at 974 / 975 MB, peak 1,072 MB, for 6 % fewer requests.
SERVER_MALLOC_ARENAS = 2
_M_ARENA_MAX = -8  # mallopt's parameter number, from glibc's malloc.h


def release_freed_memory() -> None:
    """Return the heap's free pages to the system: a trim costs about 2 ms, so callers do it after large work
    (a long read, an ingest's embedding group, every 16th short read), not after every call. Measured without it:
    a 64-question read peaked 178 MB above the loaded size (65 MB trimmed after each forward pass) and stayed
    100-250 MB larger after it; 200 one-question reads grew the process by 140 MB; ingesting the COVID-QA
    benchmark's 2,915 passages left 180-280 MB of freed heap behind."""
    libc = _libc()
    if libc is not None and hasattr(libc, "malloc_trim"):  # glibc only; other C libraries return memory themselves
        libc.malloc_trim(0)


@functools.cache
def _libc():
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    return ctypes.CDLL(name) if name else None


def limit_malloc_arenas(arenas: int = SERVER_MALLOC_ARENAS) -> bool:
    """Cap glibc's malloc arenas for the rest of the process (what MALLOC_ARENA_MAX does at start-up); call before
    the threads that will allocate are started. A value set in the environment is kept. False where the C library
    is not glibc."""
    import os

    libc = _libc()
    if os.environ.get("MALLOC_ARENA_MAX") or libc is None or not hasattr(libc, "mallopt"):
        return False
    return bool(libc.mallopt(_M_ARENA_MAX, arenas))
