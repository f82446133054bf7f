"""Reader benchmark: EM/F1 on gold passages of several SQuAD-format files, and speed and accuracy per
precision (fp32, int8, bf16) at top-5 on this machine.

    python -m bench.reader [--model DIR ...] [--limit 1000] [--sets NAME ...] [--no-speed] [--split dev]
                           [--out bench/out]

Several --model values are measured one after another in the same run, on the same questions.
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

from spanqa.plugin.engine.reader import Reader
from spanqa.plugin.engine.squad import load_squad
from spanqa.plugin.lab.reader_eval import evaluate_reader, gold_passage

from bench.common import machine, markdown_table, write_json
from spanqa.settings import PRECISIONS, Settings

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
SELECTION_QUESTIONS = 1000
BENCHMARK_SAMPLE = 1000  # questions per set the benchmark reports (the default --limit)
DEFAULT_SETS = {
    "squadshifts-new_wiki": SHARED / "squadshifts" / "new_wiki_v1.0.json",
    "squadshifts-reddit": SHARED / "squadshifts" / "reddit_v1.0.json",
    "squadshifts-amazon": SHARED / "squadshifts" / "amazon_reviews_v1.0.json",
    "policyqa-dev": SHARED / "policyqa" / "dev.json",
    # The technical development set and the technical training questions (python -m bench.techdocs.build):
    # whole READMEs as gold passages, answerable questions only.
    "techdocs": Path("bench/out/techdocs.json"),
    "techtrain": Path("bench/out/techtrain.json"),
}


def accuracy(model: str, limit: int | None, sets: list[str], split: str = "test", precision: str = "fp32") -> dict:
    """Gold-passage EM/F1 per data set. `split="dev"` reads the development questions instead of the benchmark's:
    new_wiki's selection questions, and for the other sets `limit` questions from outside the benchmark's sample,
    so that a choice between models (e.g. an interpolation weight) is made without the questions that report it."""
    reader = Reader(model, precision=precision)
    out = {}
    for name, path in DEFAULT_SETS.items():
        if name not in sets or not path.is_file():
            continue
        examples = _split(name, load_squad(path), limit, split)
        scores = evaluate_reader(reader, examples)
        out[name] = scores.to_dict()
        print(f"{name:24s} EM {scores.exact_match:6.2f}  F1 {scores.f1:6.2f}  ({scores.count} questions)", flush=True)
    return out


def _split(name: str, examples: list, limit: int | None, split: str) -> list:
    if name.startswith("tech"):
        return [e for e in examples if not e.is_impossible]
    if name == "squadshifts-new_wiki":
        # The first 1000 new_wiki questions chose the checkpoint and fitted the calibration: hold them out.
        selection, examples = examples[:SELECTION_QUESTIONS], examples[SELECTION_QUESTIONS:]
        if split == "dev":
            return selection[:limit]
    if split == "dev":  # never a question of the benchmark's own sample, whatever the dev limit
        benchmark = set(map(id, _sample(examples, BENCHMARK_SAMPLE)))
        rest = [e for e in examples if id(e) not in benchmark]
        return random.Random(1).sample(rest, min(limit or len(rest), len(rest)))
    return _sample(examples, limit)


def _sample(examples: list, limit: int | None) -> list:
    return random.Random(0).sample(examples, limit) if limit and len(examples) > limit else examples


def speed(model: str, questions: int = 100, top_k: int = 5) -> dict:
    """Each question is read against its gold passage plus top_k-1 other passages, as after retrieval."""
    examples = load_squad(DEFAULT_SETS["squadshifts-new_wiki"])[SELECTION_QUESTIONS:]
    rng = random.Random(1)
    sample = rng.sample(examples, questions)
    pool = [gold_passage(e) for e in rng.sample(examples, 200)]
    items = [(e.question, [gold_passage(e)] + rng.sample(pool, top_k - 1)) for e in sample]
    results = {}
    for precision in PRECISIONS[1:]:  # each concrete one (the first, auto, picks among them)
        reader = Reader(model, precision=precision)
        reader.read(*items[0])  # warm-up: load, first kernels
        started = time.perf_counter()
        windows = 0
        for question, passages in items:  # batch size 1: a chat user asking one question at a time
            windows += reader.read(question, passages, top_k=top_k).windows
        seconds = time.perf_counter() - started
        f1 = evaluate_reader(reader, sample).f1
        results[precision] = {"questions_per_s": questions / seconds, "windows_per_s": windows / seconds,
                              "ms_per_question": 1000 * seconds / questions, "gold_f1_on_sample": f1}
        print(f"{precision}: {questions / seconds:.2f} questions/s, {windows / seconds:.1f} windows/s, "
              f"F1 {f1:.2f} on the {questions}-question sample", flush=True)
    base = results["fp32"]["questions_per_s"]
    for r in results.values():
        r["speedup_vs_fp32"] = r["questions_per_s"] / base
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", nargs="+", default=[Settings.from_env().reader_path])
    parser.add_argument("--limit", type=int, default=BENCHMARK_SAMPLE, help="questions per data set (random sample)")
    parser.add_argument("--sets", nargs="+", default=list(DEFAULT_SETS), choices=list(DEFAULT_SETS))
    parser.add_argument("--speed-questions", type=int, default=100)
    parser.add_argument("--no-speed", action="store_true", help="accuracy only")
    parser.add_argument("--split", choices=["test", "dev"], default="test",
                        help="dev: development questions, never the benchmark's (for choosing between models)")
    parser.add_argument("--precision", default="fp32", help="reader precision for the accuracy runs")
    parser.add_argument("--out", type=Path, default=Path("bench/out"))
    args = parser.parse_args()
    report = {"machine": machine(), "models": {}}
    for model in args.model:
        acc = accuracy(model, args.limit, args.sets, args.split, args.precision)
        spd = {} if args.no_speed else speed(model, args.speed_questions)
        report["models"][model] = {"accuracy": acc, "speed": spd}
        print(f"\n{model}")
        print(markdown_table(["data", "EM", "F1", "questions"],
                             [[k, round(v["exact_match"], 2), round(v["f1"], 2), v["count"]] for k, v in acc.items()]))
        if spd:
            print(markdown_table(["precision", "questions/s (top-5)", "windows/s", "speed-up", "F1 (sample)"],
                                 [[p, round(r["questions_per_s"], 2), round(r["windows_per_s"], 1),
                                   round(r["speedup_vs_fp32"], 2), round(r["gold_f1_on_sample"], 2)]
                                  for p, r in spd.items()]))
    write_json(args.out / "reader.json", report)


if __name__ == "__main__":
    main()
