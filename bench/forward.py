"""Where the reader's forward pass spends its time, against what this machine can do.

    python -m bench.forward [--questions 40] [--compile] [--out bench/out]

The shipped reader at the product's precision reads each question's passages as `Reader.forward_logits` does, in the
shapes the product meets: the first two passages (adaptive reading's first pass, all a settled question reads) and
the next three. Passages are consecutive new_wiki selection contexts (development data), which are about as long
as the collection's passages. Per shape: the median forward time; its FLOPs (bench.flops) over this machine's
fp32 and bf16 matmul rates, i.e. the fp32 bound of `spanqa bench` and the bf16 one; and how the forward time
splits between the linear layers, attention and everything else (torch.profiler). `--compile` also times
`torch.compile` with weight freezing (it needs a C++ compiler at run time, and compiles for about 20 s).
"""

from __future__ import annotations

import argparse
import functools
import time
from pathlib import Path

import numpy as np
from spanqa.plugin.engine.reader import Reader, tokenize_pairs
from spanqa.plugin.engine.squad import load_squad

from bench.common import machine, markdown_table, write_json
from bench.flops import encoder_flops, matmul_gflops

NEW_WIKI = Path(__file__).resolve().parents[2] / "shared" / "data" / "squadshifts" / "new_wiki_v1.0.json"
SHAPES = {"first pass (2 passages)": (0, 2), "second pass (3 passages)": (2, 5)}
OP_GROUPS = {"linear layers": ("aten::addmm", "aten::mm", "aten::linear"),
             "attention": ("aten::_scaled_dot_product_flash_attention_for_cpu", "aten::bmm", "aten::_softmax")}


@functools.cache
def _selection_examples() -> list:
    return load_squad(NEW_WIKI)[:1000]


def inputs(reader: Reader, questions: int, low: int, high: int) -> list:
    """One encoding per question: its text against `high - low` consecutive contexts, as one read's windows."""
    examples = _selection_examples()
    contexts = list(dict.fromkeys(e.context for e in examples))
    out = []
    for i in range(questions):
        texts = [contexts[(i * 5 + j) % len(contexts)] for j in range(low, high)]
        out.append(tokenize_pairs(reader.tokenizer, [examples[i].question] * len(texts), texts, reader.max_seq_len,
                                  reader.stride))
    return out


def timed(reader: Reader, encodings: list, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        for encoding in encodings:
            started = time.perf_counter()
            reader.forward_logits(encoding)
            times.append(time.perf_counter() - started)
    return 1000 * float(np.median(times))


def op_shares(reader: Reader, encodings: list) -> dict[str, float]:
    """Fraction of the profiled CPU time in each op group (self time, so nothing is counted twice)."""
    from torch.profiler import profile

    with profile() as prof:
        for encoding in encodings:
            reader.forward_logits(encoding)
    self_us = {e.key: e.self_cpu_time_total for e in prof.key_averages()}
    total = sum(self_us.values())
    shares = {group: sum(self_us.get(op, 0.0) for op in ops) / total for group, ops in OP_GROUPS.items()}
    shares["everything else"] = 1.0 - sum(shares.values())
    return shares


def measure(questions: int, compile_too: bool) -> dict:
    import torch

    reader = Reader()
    reader.warm_up()
    dtype = next(reader.model.parameters()).dtype
    rates = {"fp32": matmul_gflops(), "bf16": matmul_gflops(dtype=torch.bfloat16)}
    rows = {}
    for name, (low, high) in SHAPES.items():
        encodings = inputs(reader, questions, low, high)
        timed(reader, encodings[:5], repeats=1)  # kernels for these shapes
        flops = float(np.median([encoder_flops(reader.model.config, [(1, len(ids)) for ids in e["input_ids"]])
                                 for e in encodings]))
        tokens = float(np.median([sum(len(ids) for ids in e["input_ids"]) for e in encodings]))
        ms = timed(reader, encodings)
        rows[name] = {"tokens": tokens, "gflop": flops / 1e9, "forward_ms": ms,
                      "fp32_bound_ms": flops / rates["fp32"] / 1e6, "bf16_bound_ms": flops / rates["bf16"] / 1e6,
                      "op_shares": op_shares(reader, encodings[:10])}
    if compile_too:
        import torch._inductor.config as inductor

        inductor.freezing = True  # constant weights: pre-packed for the CPU's matmul kernels
        reader.model = torch.compile(reader.model, dynamic=True)
        for name, (low, high) in SHAPES.items():
            encodings = inputs(reader, questions, low, high)
            started = time.perf_counter()
            timed(reader, encodings[:5], repeats=1)
            rows[name]["compile_s"] = time.perf_counter() - started
            rows[name]["compiled_forward_ms"] = timed(reader, encodings)
    return {"precision": str(dtype).removeprefix("torch."), "matmul_gflops": rates, "questions": questions,
            "shapes": rows, "machine": machine()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--questions", type=int, default=40)
    p.add_argument("--compile", action="store_true", help="also time torch.compile with frozen weights")
    p.add_argument("--out", type=Path, default=Path("bench/out"))
    args = p.parse_args()
    report = measure(args.questions, args.compile)
    rates = report["matmul_gflops"]
    print(f"reader in {report['precision']}; 1024² matmul: fp32 {rates['fp32']:.0f}, bf16 {rates['bf16']:.0f} GFLOP/s")
    headers = ["read", "tokens", "GFLOP", "forward ms", "÷ fp32 bound", "÷ bf16 bound", "linear", "attention",
               "other"] + (["compiled ms"] if args.compile else [])
    table = []
    for name, r in report["shapes"].items():
        shares = r["op_shares"]
        table.append([name, round(r["tokens"]), round(r["gflop"], 2), round(r["forward_ms"], 1),
                      round(r["forward_ms"] / r["fp32_bound_ms"], 2), round(r["forward_ms"] / r["bf16_bound_ms"], 2),
                      *(f"{shares[group]:.0%}" for group in ("linear layers", "attention", "everything else"))]
                     + ([round(r["compiled_forward_ms"], 1)] if args.compile else []))
    print(markdown_table(headers, table))
    write_json(args.out / "forward.json", report)


if __name__ == "__main__":
    main()
