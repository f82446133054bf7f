"""Learn P(answer shape | question) (plugin/engine/answer_type.py) from training questions.

    python -m spanqa.plugin.lab.answer_type_training [--tech bench/out/techtrain.json]
        [--squad ../shared/data/squad-v1.1/train-v1.1.json --squad-questions 4000]
        [--out spanqa/models/answer_type.json]

Each answerable training question is labelled with the shape of its gold answer (`span_shape`), so nobody labels
types by hand and the labels mean exactly what the ranker compares. The technical training questions
(bench/techdocs/train.tsv) and a seeded sample of SQuAD v1.1 training questions weigh the same in total, so that
the model knows prose questions as well as technical ones. Before the final fit, a cross-validation grouped by
document (no package's questions are both trained and tested on) reports accuracy and log-loss per domain.
The development sets are never read.
"""

from __future__ import annotations

import argparse
import json
import random
from collections import Counter
from pathlib import Path

import numpy as np
from spanqa.plugin.engine.answer_type import SHAPES, AnswerTypes, question_terms, span_shape

__all__ = ["labelled_questions", "fit", "cross_validate", "main"]

MIN_COUNT = 2  # a term seen once teaches nothing that generalises


def labelled_questions(path: Path, limit: int | None = None, seed: int = 0) -> list[tuple[str, str, str]]:
    """(question, shape of its first gold answer, document title) of a SQuAD-format file's answerable questions."""
    rows = []
    for document in json.loads(Path(path).read_text(encoding="utf-8"))["data"]:
        for paragraph in document["paragraphs"]:
            for qa in paragraph["qas"]:
                if qa.get("answers"):
                    rows.append((qa["question"], span_shape(qa["answers"][0]["text"]), document["title"]))
    if limit is not None and limit < len(rows):
        rows = random.Random(seed).sample(rows, limit)
    return rows


def _matrix(questions: list[str], vocabulary: dict[str, int]):
    from scipy.sparse import lil_matrix

    x = lil_matrix((len(questions), len(vocabulary)))
    for i, question in enumerate(questions):
        for term in question_terms(question):
            if term in vocabulary:
                x[i, vocabulary[term]] = 1.0
    return x.tocsr()


def fit(rows: list[tuple[str, str, str]], weights: np.ndarray, c: float = 1.0, trained_on: str = "") -> AnswerTypes:
    from sklearn.linear_model import LogisticRegression

    counts = Counter(t for question, _, _ in rows for t in set(question_terms(question)))
    vocabulary = {t: i for i, t in enumerate(sorted(t for t, n in counts.items() if n >= MIN_COUNT))}
    x = _matrix([q for q, _, _ in rows], vocabulary)
    y = np.array([SHAPES.index(shape) for _, shape, _ in rows])
    model = LogisticRegression(C=c, max_iter=3000).fit(x, y, sample_weight=weights)
    # Shapes no training answer had get the lowest learned bias and no weights: possible, never preferred.
    weights_full = np.zeros((len(vocabulary), len(SHAPES)))
    bias = np.full(len(SHAPES), float(model.intercept_.min()) - 2.0)
    for column, shape_index in enumerate(model.classes_):
        weights_full[:, shape_index] = model.coef_[column]
        bias[shape_index] = model.intercept_[column]
    return AnswerTypes(vocabulary, weights_full, bias, trained_on)


def _domain_weights(domains: list[str]) -> np.ndarray:
    """Each domain weighs the same in total."""
    counts = Counter(domains)
    return np.array([len(domains) / (len(counts) * counts[d]) for d in domains])


def cross_validate(rows: list[tuple[str, str, str]], domains: list[str], folds: int = 5, c: float = 1.0) -> dict:
    """Accuracy and log-loss per domain, each document's questions all in one fold."""
    documents = sorted({title for _, _, title in rows})
    fold_of = {title: i % folds for i, title in enumerate(random.Random(0).sample(documents, len(documents)))}
    right: dict[str, list[float]] = {d: [] for d in set(domains)}
    loss: dict[str, list[float]] = {d: [] for d in set(domains)}
    for fold in range(folds):
        train = [i for i, r in enumerate(rows) if fold_of[r[2]] != fold]
        model = fit([rows[i] for i in train], _domain_weights([domains[i] for i in train]), c)
        for i, (question, shape, title) in enumerate(rows):
            if fold_of[title] == fold:
                p = model.probabilities(question)
                right[domains[i]].append(float(max(p, key=p.get) == shape))
                loss[domains[i]].append(-float(np.log(max(p[shape], 1e-9))))
    majority = {d: max(Counter(r[1] for r, dd in zip(rows, domains, strict=True) if dd == d).values())
                / domains.count(d) for d in right}
    return {d: {"questions": len(right[d]), "accuracy": float(np.mean(right[d])), "log_loss": float(np.mean(loss[d])),
                "majority_shape_accuracy": majority[d]} for d in sorted(right)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m spanqa.plugin.lab.answer_type_training",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--tech", type=Path, default=Path("bench/out/techtrain.json"))
    parser.add_argument("--squad", type=Path, default=Path("../shared/data/squad-v1.1/train-v1.1.json"))
    parser.add_argument("--squad-questions", type=int, default=4000)
    parser.add_argument("--c", type=float, default=0.3,
                        help="inverse regularisation (0.3: of 0.1, 0.3, 1 and 3, the best cross-validated log-loss "
                             "on both domains together)")
    parser.add_argument("--out", type=Path, default=Path("spanqa/models/answer_type.json"))
    args = parser.parse_args(argv)
    tech = labelled_questions(args.tech)
    squad = labelled_questions(args.squad, args.squad_questions)
    rows, domains = tech + squad, ["technical"] * len(tech) + ["squad"] * len(squad)
    report = cross_validate(rows, domains, c=args.c)
    print(json.dumps({"cross_validation": report, "shapes": Counter(r[1] for r in tech)}, indent=1))
    trained_on = f"{args.tech.name} ({len(tech)}), {args.squad.name} ({len(squad)} sampled)"
    model = fit(rows, _domain_weights(domains), args.c, trained_on)
    model.save(args.out)
    print(f"Wrote {args.out} ({len(model.vocabulary)} terms)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
