"""Adaptive reading, measured: how often a question's first passages settle its answer, and what stopping costs.

    python -m bench.adaptive [--data FILE ...] [--first 1 2 3] [--stop 0.6 0.7 0.8 0.9] [--out bench/out]

Per data set: the benchmark's collection (bench.qa_data), each question's top-k hybrid passages, each passage read
once on its own; then every rule (read the first m passages, stop when the best answer scores s or more) is
replayed offline with the engine's own `combine_answers`, `Assistant.rank` and `answer_settled`, beside reading
every passage: the fraction of questions stopped early, the passages and windows read, and F1 (end to end, all
questions, abstaining right = 1; and top-1 on the answerable ones).

The default data are development questions only — new_wiki's first 1,000 (the ones that chose the reader) and
the technical training set (bench/techdocs/train.tsv) — so that `Settings.read_first` / `read_stop_score` are
not chosen on the questions `spanqa bench` reports.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from spanqa.plugin.engine.assistant import CANDIDATES, answer_settled
from spanqa.plugin.engine.reader import Answer, combine_answers
from spanqa.plugin.engine.squad import f1_score, load_squad, max_over_ground_truths
from spanqa.retriever.records import Hit

from bench.common import markdown_table, write_json
from bench.qa_data import BenchQuestion, build_bench_set
from bench.systems import SpanqaSystem

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
DEV_SETS = {"new_wiki-selection": (SHARED / "squadshifts" / "new_wiki_v1.0.json", 1000),
            "techtrain": (Path("bench/out/techtrain.json"), None)}


@dataclass
class QuestionReads:
    """One question's retrieved hits and what reading each of their passages alone gave."""

    question: BenchQuestion
    hits: list[Hit]
    answers: list[list[Answer]]  # per hit
    windows: list[int]  # per hit


def read_each_passage(system: SpanqaSystem, questions: list[BenchQuestion], top_k: int) -> list[QuestionReads]:
    out = []
    for q in questions:
        hits = system.assistant.collection.search(q.text, k=top_k)
        read = [system.assistant.read_candidates(q.text, [h]) for h in hits]
        out.append(QuestionReads(q, hits, [a for a, _ in read], [w for _, w in read]))
    return out


def replay(system: SpanqaSystem, reads: list[QuestionReads], first: int | None, stop: float, top_k: int,
           threshold: float) -> dict:
    """The rule (first, stop) on every question; first=None reads everything at once."""
    f1s, top_f1s, stopped, passages, windows = [], [], [], [], []
    for r in reads:
        n = len(r.hits) if first is None else min(first, len(r.hits))
        ranked = _ranked(system, r, n, top_k)
        early = n < len(r.hits) and answer_settled(ranked, stop)
        if not early and n < len(r.hits):
            n = len(r.hits)
            ranked = _ranked(system, r, n, top_k)
        stopped.append(early)
        passages.append(n)
        windows.append(sum(r.windows[:n]))
        abstained = not ranked or ranked[0].score < threshold
        said = ranked[0].text if ranked else ""
        truths = list(r.question.answers)
        if r.question.answerable:
            f1s.append(0.0 if abstained else max_over_ground_truths(f1_score, said, truths))
            top_f1s.append(max_over_ground_truths(f1_score, said, truths))
        else:
            f1s.append(float(abstained))
    return {"first": first, "stop": stop, "stopped_early": float(np.mean(stopped)),
            "passages_per_question": float(np.mean(passages)), "windows_per_question": float(np.mean(windows)),
            "f1_all": 100 * float(np.mean(f1s)), "top1_f1_answerable": 100 * float(np.mean(top_f1s))}


def _ranked(system: SpanqaSystem, r: QuestionReads, n: int, top_k: int) -> list[Answer]:
    candidates = combine_answers([a for answers in r.answers[:n] for a in answers], CANDIDATES)
    return system.assistant.rank(r.question.text, candidates, r.hits, top_k)


def measure(name: str, path: Path, until: int | None, firsts: list[int], stops: list[float], top_k: int,
            limit: int | None = None) -> dict:
    from transformers import AutoTokenizer

    from spanqa.settings import Settings

    bench = build_bench_set(path, AutoTokenizer.from_pretrained(Settings.from_env().embedder_path), limit=limit)
    if until is not None:  # only the file's first `until` questions (their contexts stay in the collection)
        keep = {e.id for e in load_squad(path)[:until]}
        bench.questions = [q for q in bench.questions if q.id in keep]
    system = SpanqaSystem(Settings.from_env().reader_path, top_k)
    system.index(bench)
    threshold = system.assistant.settings.answer_threshold
    reads = read_each_passage(system, bench.questions, top_k)
    rows = [replay(system, reads, None, 1.0, top_k, threshold)]
    rows += [replay(system, reads, first, stop, top_k, threshold) for first in firsts for stop in stops]
    for row in rows:
        row["f1_all_change"] = row["f1_all"] - rows[0]["f1_all"]
    print(f"\n{name}: {len(bench.questions)} questions, top-{top_k}, threshold {threshold}")
    print(markdown_table(
        ["first passages", "stop score", "stopped early", "passages read", "windows read", "F1 all", "change",
         "top-1 F1 answerable"],
        [["all" if r["first"] is None else r["first"], "-" if r["first"] is None else r["stop"],
          round(r["stopped_early"], 3), round(r["passages_per_question"], 2), round(r["windows_per_question"], 2),
          round(r["f1_all"], 2), round(r["f1_all_change"], 2), round(r["top1_f1_answerable"], 2)] for r in rows]))
    return {"questions": len(bench.questions), "top_k": top_k, "threshold": threshold, "rules": rows}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", nargs="+", type=Path, help="SQuAD-format files (default: the development sets)")
    p.add_argument("--first", nargs="+", type=int, default=[1, 2, 3])
    p.add_argument("--stop", nargs="+", type=float, default=[0.5, 0.6, 0.7, 0.8, 0.9])
    p.add_argument("--top-k", type=int, default=5)
    p.add_argument("--limit", type=int, help="sample this many questions of each --data file (seeded)")
    p.add_argument("--out", type=Path, default=Path("bench/out"))
    args = p.parse_args()
    sets = {path.stem: (path, None) for path in args.data} if args.data else DEV_SETS
    report = {name: measure(name, path, until, args.first, args.stop, args.top_k, args.limit if args.data else None)
              for name, (path, until) in sets.items()}
    write_json(args.out / ("adaptive.json" if not args.data else "adaptive-" + "-".join(sets) + ".json"), report)


if __name__ == "__main__":
    main()
