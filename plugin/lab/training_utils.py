"""Small pieces both trainers share: seeding and the bf16 decision."""

from __future__ import annotations

import random

import numpy as np

from spanqa.settings import native_bf16

__all__ = ["seed_everything", "bf16_supported"]


def seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def bf16_supported(device: str) -> bool:
    """True where bf16 matmuls run natively: CUDA with bf16, or a CPU with AMX / AVX-512 BF16 (measured here:
    2x the fp32 training throughput of the MiniLM reader)."""
    import torch

    if device == "cuda":
        return torch.cuda.is_bf16_supported()
    return native_bf16()
