"""Reader training data from hand-written technical questions, cut into passages the way a collection cuts them.

The technical training questions (`bench/techdocs/train.tsv`, built into SQuAD JSON by `python -m
bench.techdocs.build`) ask about whole READMEs. At answer time the reader never sees a whole README: it reads the
few passages retrieval returns. So each README is cut with the collection's own chunker, every question is
attached to the passage that holds its answer (an unanswerable one to the passage sharing most of its words),
and the other passages of the same README become the hard negatives the reader's training draws from the same
article. Some packages are held out as checkpoint-selection questions, next to new_wiki's selection questions so
that prose is watched as closely as code; SQuAD questions are mixed in so the reader keeps what it knows.

The reader trained this way (`scripts/train_reader_techdocs.sh`) gains on technical questions and loses a little
on prose (docs/answers.md), so it ships as the technical reader (models/reader-technical), which reads only
questions whose passages look technical.

    python -m spanqa.plugin.lab.tech_mix --tech bench/out/techtrain.json --hold-out distro cloudpickle platformdirs \
        --squad ../shared/data/squad-v1.1/train-v1.1.json --squad-questions 3000 \
        --wiki-dev ../shared/data/squadshifts/new_wiki_v1.0.json --out runs/techpass
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from spanqa.plugin.lab.tech_synth import squad_sample
from spanqa.retriever.chunking import Chunker
from spanqa.retriever.records import Document, Passage

__all__ = ["passage_article", "answerable_head"]

_WORD = re.compile(r"\w+")


def _words(text: str) -> set[str]:
    return {w.lower() for w in _WORD.findall(text)}


def _home(qa: dict, passages: list[Passage]) -> Passage | None:
    """The first passage holding the whole answer; for an unanswerable question, the one sharing most words."""
    if qa["answers"]:
        start = qa["answers"][0]["answer_start"]
        end = start + len(qa["answers"][0]["text"])
        return next((p for p in passages if p.start <= start and end <= p.end), None)
    words = _words(qa["question"])
    return max(passages, key=lambda p: len(words & _words(p.text)))


def passage_article(article: dict, chunker: Chunker) -> tuple[dict, int]:
    """A whole-document SQuAD article → one paragraph per passage that has questions; also how many answers
    crossed a passage boundary (those questions are dropped: no passage can teach them)."""
    paragraphs: dict[int, dict] = {}
    dropped = 0
    for paragraph in article["paragraphs"]:
        document = Document(source=article["title"], text=paragraph["context"], title=article["title"])
        passages = chunker.split(document)
        for qa in paragraph["qas"]:
            home = _home(qa, passages)
            if home is None:
                dropped += 1
                continue
            inside = [a for a in qa["answers"]
                      if home.start <= a["answer_start"] and a["answer_start"] + len(a["text"]) <= home.end]
            moved = dict(qa, answers=[dict(a, answer_start=a["answer_start"] - home.start) for a in inside])
            paragraphs.setdefault(home.index, {"context": home.text, "qas": []})["qas"].append(moved)
    return {"title": article["title"], "paragraphs": [paragraphs[i] for i in sorted(paragraphs)]}, dropped


def answerable_head(path: Path, questions: int) -> list[dict]:
    """The first `questions` answerable questions of a SQuAD file, in file order (new_wiki's selection range)."""
    out, total = [], 0
    for article in json.loads(path.read_text(encoding="utf-8"))["data"]:
        paragraphs = []
        for p in article["paragraphs"]:
            qas = [q for q in p["qas"] if q.get("answers")][: max(0, questions - total)]
            if qas:
                paragraphs.append({"context": p["context"], "qas": qas})
                total += len(qas)
        if paragraphs:
            out.append({"title": article["title"], "paragraphs": paragraphs})
    return out


def _count(articles: list[dict]) -> int:
    return sum(len(p["qas"]) for a in articles for p in a["paragraphs"])


def _repeated(articles: list[dict], times: int) -> list[dict]:
    """`times` copies with distinct question ids (the trainer keys negatives and groups by id)."""
    return [{"title": a["title"], "paragraphs": [
        {"context": p["context"], "qas": [dict(q, id=f"{q['id']}~{copy}") for q in p["qas"]]}
        for p in a["paragraphs"]]} for copy in range(times) for a in articles]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tech", type=Path, default=Path("bench/out/techtrain.json"))
    parser.add_argument("--hold-out", nargs="*", default=[], help="packages kept for checkpoint selection")
    parser.add_argument("--leave-out", nargs="*", default=[],
                        help="packages in neither set: kept for fitting what reads this reader's candidates")
    parser.add_argument("--repeat", type=int, default=2, help="passes over the technical questions per epoch")
    parser.add_argument("--squad", type=Path, help="SQuAD JSON to mix in (whole articles)")
    parser.add_argument("--squad-questions", type=int, default=0)
    parser.add_argument("--wiki-dev", type=Path, help="SQuAD JSON whose first questions join the selection set")
    parser.add_argument("--wiki-dev-questions", type=int, default=300)
    parser.add_argument("--reader", type=Path, default=Path("spanqa/models/reader"), help="tokenizer for chunking")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--out", type=Path, required=True, help="folder for train.json and dev.json")
    args = parser.parse_args(argv)
    from transformers import AutoTokenizer

    chunker = Chunker(AutoTokenizer.from_pretrained(str(args.reader)))
    train, dev, dropped = [], [], 0
    for article in json.loads(args.tech.read_text(encoding="utf-8"))["data"]:
        if article["title"] in args.leave_out:
            continue
        cut, lost = passage_article(article, chunker)
        dropped += lost
        (dev if article["title"] in args.hold_out else train).append(cut)
    tech_train, tech_dev = _count(train), _count(dev)
    train = _repeated(train, args.repeat)
    if args.squad and args.squad_questions:
        train += squad_sample(args.squad, args.squad_questions, args.seed)
    if args.wiki_dev:
        dev += answerable_head(args.wiki_dev, args.wiki_dev_questions)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, articles in (("train", train), ("dev", dev)):
        (args.out / f"{name}.json").write_text(json.dumps({"version": "spanqa-techmix-2", "data": articles}),
                                               encoding="utf-8")
    print(f"technical: {tech_train} training questions (x{args.repeat}), {tech_dev} held out for selection, "
          f"{dropped} dropped (answer across a passage boundary); train.json {_count(train)} questions, "
          f"dev.json {_count(dev)}; wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
