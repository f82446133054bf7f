"""Build the technical-documentation development set (SQuAD v2 JSON) from `questions.tsv` and `sources/`.

    python -m bench.techdocs.build [--out bench/out/techdocs.json]
    python -m bench.techdocs.build --questions bench/techdocs/train.tsv --out bench/out/techtrain.json
    python -m bench.techdocs.build --questions bench/techdocs/train.tsv --only distro,cloudpickle,platformdirs \
        --out bench/out/techtrain-heldout.json

`questions.tsv` is the development set (measured, never trained on: 237 questions over ten READMEs); `train.tsv`
asks about other packages' READMEs (26 of them, 692 questions) and trains the answer ranker (`spanqa train-ranker`)
and the reader's technical adaptation (`scripts/train_reader_techdocs.sh`, which holds three of its packages out for
checkpoint selection and leaves four out for the technical reader's own calibration).

Each source is one document: the long description (README) of a package installed on this kind of machine,
copied verbatim from its `*.dist-info/METADATA` (licences in `sources/LICENSES.md`); nobody in this project wrote
them. Each question is phrased the way a user asks, not copied from the text. Its answer is the exact source
span; an answer may run across a line break in the source (whitespace is matched loosely, the stored answer is
the source's own text). A question with no answer is unanswerable in that document.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

HERE = Path(__file__).resolve().parent


def locate(source: str, answer: str) -> tuple[int, str]:
    """Start offset and verbatim text of `answer` in `source`, whitespace-insensitive; ValueError when absent."""
    pattern = r"\s+".join(re.escape(word) for word in answer.split())
    match = re.search(pattern, source)
    if match is None:
        raise ValueError(f"answer not found in its source: {answer!r}")
    return match.start(), match.group(0)


def build(questions: Path = HERE / "questions.tsv", sources: Path = HERE / "sources",
          only: set[str] | None = None) -> dict:
    """The SQuAD v2 dataset of `questions` (`only`: these sources' questions alone)."""
    by_source: dict[str, list[dict]] = {}
    for number, line in enumerate(questions.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        name, question, answer = line.split("\t")
        if only is not None and name not in only:
            continue
        text = (sources / f"{name}.txt").read_text(encoding="utf-8")
        qa = {"id": f"{name}-{number}", "question": question, "answers": [], "is_impossible": not answer}
        if answer:
            start, verbatim = locate(text, answer)
            qa["answers"] = [{"text": verbatim, "answer_start": start}]
        by_source.setdefault(name, []).append(qa)
    data = [{"title": name, "paragraphs": [{"context": (sources / f"{name}.txt").read_text(encoding="utf-8"),
                                              "qas": qas}]} for name, qas in by_source.items()]
    return {"version": "spanqa-techdocs-1", "data": data}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", type=Path, default=HERE / "questions.tsv")
    parser.add_argument("--out", type=Path, default=Path("bench/out/techdocs.json"))
    parser.add_argument("--only", help="comma-separated sources: their questions alone (e.g. the packages the "
                                       "technical reader was not trained on)")
    args = parser.parse_args()
    dataset = build(args.questions, only=set(args.only.split(",")) if args.only else None)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(dataset, ensure_ascii=False, indent=1), encoding="utf-8")
    questions = [qa for article in dataset["data"] for p in article["paragraphs"] for qa in p["qas"]]
    unanswerable = sum(qa["is_impossible"] for qa in questions)
    print(f"{args.out}: {len(questions)} questions ({unanswerable} unanswerable) over {len(dataset['data'])} documents")


if __name__ == "__main__":
    main()
