"""Interpolate two checkpoints of one architecture: θ = α·θ_new + (1 − α)·θ_old (WiSE-FT, Wortsman et al. 2022).

Fine-tuning further on one domain (Wikipedia) can cost a little on others; interpolating the new weights with the
old ones keeps most of the in-domain gain and often recovers the out-of-domain loss. α is chosen on development
questions, never on the benchmark's.

    python -m spanqa.plugin.lab.weight_average OLD_DIR NEW_DIR --alpha 0.6 --out DIR
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from spanqa.errors import InputError

__all__ = ["interpolate"]


def interpolate(old: Path, new: Path, alpha: float, out: Path) -> Path:
    """Write the interpolated model to `out` (weights in fp16, tokenizer and config copied from `new`)."""
    from safetensors.torch import load_file, save_file

    if not 0.0 <= alpha <= 1.0:
        raise InputError(f"alpha must be within [0, 1], got {alpha}")
    a, b = load_file(Path(old) / "model.safetensors"), load_file(Path(new) / "model.safetensors")
    if a.keys() != b.keys() or any(a[k].shape != b[k].shape for k in a):
        raise InputError(f"{old} and {new} are not checkpoints of the same architecture")
    mixed = {k: (alpha * b[k].float() + (1 - alpha) * a[k].float()).to(b[k].dtype).contiguous() for k in b}
    out.mkdir(parents=True, exist_ok=True)
    for item in Path(new).iterdir():
        if item.is_file() and item.name != "model.safetensors":
            shutil.copy(item, out / item.name)
    save_file(mixed, str(out / "model.safetensors"), metadata={"format": "pt"})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("old", type=Path)
    parser.add_argument("new", type=Path)
    parser.add_argument("--alpha", type=float, required=True, help="weight of NEW")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    print(interpolate(args.old, args.new, args.alpha, args.out))


if __name__ == "__main__":
    main()
