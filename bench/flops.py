"""The physical bound on reading: how many floating-point operations the reader's forward passes cost, and how
fast this machine multiplies matrices. FLOPs ÷ (FLOP/s) is the time no implementation on this CPU can beat."""

from __future__ import annotations

import time

__all__ = ["encoder_flops", "matmul_gflops"]


def encoder_flops(config, shapes: list[tuple[int, int]]) -> float:
    """FLOPs of a BERT-style QA model over batches of shape (windows, tokens), padding included.

    Per layer and window of n tokens, hidden size d, feed-forward size f (a multiply-add = 2 FLOPs):
    Q, K, V and output projections 8·n·d², attention scores and their weighted sum 4·n²·d, feed-forward 4·n·d·f;
    plus the span head 4·n·d. Embedding lookups, softmax and layer norms are lower order and left out.
    """
    d, f, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    total = 0.0
    for windows, n in shapes:
        total += windows * (layers * (8 * n * d * d + 4 * n * n * d + 4 * n * d * f) + 4 * n * d)
    return total


def matmul_gflops(size: int = 1024, seconds: float = 1.0, dtype=None) -> float:
    """Sustained GFLOP/s of a square matmul (fp32 unless `dtype` says otherwise) with torch's current thread count
    (a best case for the GEMMs that dominate the reader)."""
    import torch

    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    for _ in range(3):
        a @ b
    runs, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        a @ b
        runs += 1
    return 2 * size**3 * runs / elapsed / 1e9
