"""A passage's title embedded once: recall@5 and ingest rate when the title is repeated in front of a passage
that already opens with it (before) and when it is not (after, `retriever.base.opens_with_title`).

    python -m bench.title_once [--data ../shared/data/squadshifts/new_wiki_v1.0.json] [--contexts 300]

Each context is written as a file of its own with no heading, so its title is its own first line, as with a user's
headingless text files. A hit counts when one of the top 5 passages (hybrid) holds the gold answer's span.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import spanqa.retriever.base as base
from spanqa.retriever.collection import LocalCollection
from spanqa.retriever.embedding import Embedder

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "squadshifts" / "new_wiki_v1.0.json"


def corpus(data: Path, contexts: int, folder: Path) -> list[tuple[str, Path, int, int]]:
    """Write the first `contexts` contexts as files; (question, file, answer start, answer length) for each."""
    questions = []
    count = 0
    for article in json.loads(data.read_text())["data"]:
        for paragraph in article["paragraphs"]:
            if count == contexts:
                return questions
            path = folder / f"p{count:05d}.txt"
            path.write_text(paragraph["context"])
            count += 1
            questions += [(q["question"], path.resolve(), q["answers"][0]["answer_start"], len(q["answers"][0]["text"]))
                          for q in paragraph["qas"] if q.get("answers")]
    return questions


def measure(files: Path, questions, embedder: Embedder) -> dict:
    collection = LocalCollection(Path(tempfile.mkdtemp()) / "c", embedder=embedder)
    started = time.perf_counter()
    report = collection.ingest([files])
    wall = time.perf_counter() - started
    hits = 0
    for question, path, start, length in questions:
        hits += any(h.passage.source == str(path) and h.passage.start <= start and start + length <= h.passage.end
                    for h in collection.search(question, k=5))
    collection.close()
    return {"recall_at_5": hits / len(questions), "passages": report.passages, "passages_per_s": report.passages / wall}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--contexts", type=int, default=300)
    args = parser.parse_args(argv)
    files = Path(tempfile.mkdtemp(prefix="spanqa-title-once-"))
    questions = corpus(args.data, args.contexts, files)
    embedder = Embedder()
    embedder.warm_up()
    product = base.opens_with_title
    for name, rule in (("title repeated (before)", lambda passage: False), ("title once (after)", product)):
        base.opens_with_title = rule
        try:
            result = measure(files, questions, embedder)
        finally:
            base.opens_with_title = product
        print(f"{name}: recall@5 hybrid {result['recall_at_5']:.3f} ({len(questions)} questions); ingest "
              f"{result['passages']} passages at {result['passages_per_s']:.1f}/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
