"""Answer errors by kind, on one SQuAD-format set, as `spanqa ask` answers:

    python -m bench.errors [--data bench/out/techdocs.json] [--limit N] [--out bench/out/errors]

Each answerable question's top answer (shown, or withheld below the threshold) is one of:

    right          an exact match of a gold answer
    boundary       overlaps a gold answer but is not it: cut short, run long, a code token split
    wrong type     elsewhere, and not the kind of answer the gold one is (`span_shape`: a sentence where a name
                   was asked, a number where a command was)
    wrong span     the right kind, from a passage holding a gold answer, but elsewhere in it
    wrong passage  the right kind, from a passage holding no gold answer (another part of the document, or another
                   document)
    no answer      no candidate: the router sent the question elsewhere, or nothing was found

and, separately, whether it was withheld (the engine abstained). Unanswerable questions: abstained or answered.
`spanqa bench` counts the same kinds for every system it measures (`error_counts`, from each question's record),
so that before and after come from one run (issue #29).
"""

from __future__ import annotations

import argparse
import os
from collections import Counter
from pathlib import Path

from bench.common import markdown_table, write_json

__all__ = ["KINDS", "error_counts", "error_kind", "main", "measure"]

KINDS = ("right", "boundary", "wrong type", "wrong span", "wrong passage", "no answer")


def error_kind(answer: tuple[str, int, int, str] | None, passage: tuple[int, int] | None,
               gold: list[tuple[int, int]], gold_texts: list[str], gold_document: str) -> str:
    """The kind of one top answer, given as (text, start, end, document id) in document offsets with its passage's
    (start, end), against the gold answers' ranges and texts in `gold_document`."""
    from spanqa.plugin.engine.answer_type import span_shape
    from spanqa.plugin.engine.squad import normalize_answer

    if answer is None:
        return "no answer"
    text, start, end, document = answer
    if normalize_answer(text) in {normalize_answer(g) for g in gold_texts}:
        return "right"
    if document == gold_document and any(start < g_end and g_start < end for g_start, g_end in gold):
        return "boundary"
    if span_shape(text) not in {span_shape(g) for g in gold_texts}:
        return "wrong type"
    if document != gold_document:
        return "wrong passage"
    if passage is not None and any(passage[0] <= g_start and g_end <= passage[1] for g_start, g_end in gold):
        return "wrong span"
    return "wrong passage"


def error_counts(records: list[dict], bench) -> dict:
    """Top answers by kind, and how many of each were withheld, from `spanqa bench`'s per-question records (each
    with the top answer's text, location and passage) of one system on `bench`."""
    questions = {q.id: q for q in bench.questions}
    kinds: Counter = Counter()
    withheld: Counter = Counter()
    for record in records:
        question = questions[record["id"]]
        if not question.answerable:
            continue
        location = record.get("location")
        answer = None if location is None else (record["text"], location[1], location[2], location[0])
        kind = error_kind(answer, record.get("passage"), list(question.answer_ranges), list(question.answers),
                          question.document_id)
        kinds[kind] += 1
        withheld[kind] += bool(record["abstained"])
    return {"kinds": {k: kinds.get(k, 0) for k in KINDS}, "withheld": {k: withheld.get(k, 0) for k in KINDS},
            "abstained": sum(withheld.values())}


def measure(data: Path, limit: int | None) -> dict:
    from transformers import AutoTokenizer

    from bench.qa_data import build_bench_set
    from bench.systems import SpanqaSystem
    from spanqa.settings import Settings

    settings = Settings.from_env()
    system = SpanqaSystem(settings.reader_path, top_k=5)
    bench = build_bench_set(data, AutoTokenizer.from_pretrained(settings.embedder_path), limit=limit, holdout=0.0)
    system.index(bench)
    kinds: Counter = Counter()
    withheld: Counter = Counter()
    unanswerable = Counter()
    examples: dict[str, list[dict]] = {kind: [] for kind in KINDS}
    for question in bench.questions:
        response = system.assistant.respond(question.text)
        top = response.answers[0] if response.answers else None
        if not question.answerable:
            unanswerable["abstained" if response.abstained else "answered"] += 1
            continue
        answer = None if top is None else (top.text, top.document_start, top.document_end, top.document_id)
        hit = next((h.passage for h in response.passages if top and h.passage.id == top.passage_id), None)
        kind = error_kind(answer, None if hit is None else (hit.start, hit.end), list(question.answer_ranges),
                          list(question.answers), question.document_id)
        kinds[kind] += 1
        withheld[kind] += response.abstained
        if len(examples[kind]) < 8:
            examples[kind].append({"question": question.text, "answer": top.text if top else None,
                                   "gold": question.answers[0], "withheld": response.abstained})
    return {"data": str(data), "answerable": sum(kinds.values()), "kinds": dict(kinds), "withheld": dict(withheld),
            "unanswerable": dict(unanswerable), "examples": examples}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.errors", description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("bench/out/techdocs.json"))
    parser.add_argument("--limit", type=int)
    parser.add_argument("--out", type=Path, default=Path("bench/out/errors"))
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.data == Path("bench/out/techdocs.json") and not args.data.is_file():
        from bench.techdocs.build import build

        write_json(args.data, build())
    results = measure(args.data, args.limit)
    write_json(args.out / f"{args.data.stem}.json", results)
    rows = [[kind, results["kinds"].get(kind, 0), results["withheld"].get(kind, 0)] for kind in KINDS]
    print(markdown_table(["top answer", "questions", "of them withheld"], rows))
    print(f"unanswerable: {results['unanswerable']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
