"""Reader evaluation on gold passages (EM/F1, official SQuAD normalization) and score calibration."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import numpy as np
from spanqa.plugin.engine.reader import Calibration, Reader
from spanqa.plugin.engine.squad import QAExample, exact_match_score, f1_score, max_over_ground_truths
from spanqa.retriever.records import Passage

from spanqa.errors import DataFileError
from spanqa.settings import Settings

__all__ = ["ReaderScores", "evaluate_reader", "gold_passage", "fit_calibration", "negative_examples"]


@dataclass
class ReaderScores:
    exact_match: float
    f1: float
    count: int
    # per question: (margin of the best answer or -inf, F1 of the prediction) — the raw data for calibration
    margins: list[float]
    f1s: list[float]

    def to_dict(self) -> dict:
        return {"exact_match": self.exact_match, "f1": self.f1, "count": self.count}


def gold_passage(example: QAExample) -> Passage:
    """The example's whole context as one passage (the reader windows it if it is long)."""
    return Passage(document_id=example.context_id or example.id, source=example.title, text=example.context,
                   start=0, end=len(example.context), id=0, title=example.title)


def evaluate_reader(
    reader: Reader, examples: list[QAExample], batch_questions: int = 32, abstain: bool | None = None,
    progress: bool = False,
) -> ReaderScores:
    """Read each question against its gold passage and score the best span.

    Args:
        abstain: predict the empty answer when the reader abstains. Defaults to True exactly when the data has
            unanswerable questions (SQuAD 2.0 style); on all-answerable data the best span is always scored.
    """
    if not examples:
        raise DataFileError("No examples to evaluate")
    if abstain is None:
        abstain = any(e.is_impossible for e in examples)
    ems, f1s, margins = [], [], []
    batches = range(0, len(examples), batch_questions)
    if progress:
        from tqdm import tqdm

        batches = tqdm(batches, desc="eval", unit="batch")
    for b in batches:
        chunk = examples[b : b + batch_questions]
        results = reader.read_many([(e.question, [gold_passage(e)]) for e in chunk], top_k=1)
        for example, result in zip(chunk, results, strict=True):
            best = result.best
            prediction = "" if best is None or (abstain and result.abstains(Settings.answer_threshold)) else best.text
            truths = [a.text for a in example.answers]
            ems.append(max_over_ground_truths(exact_match_score, prediction, truths))
            f1s.append(max_over_ground_truths(f1_score, prediction, truths))
            margins.append(best.margin if best is not None else -math.inf)
    return ReaderScores(100 * float(np.mean(ems)), 100 * float(np.mean(f1s)), len(examples), margins, f1s)


def negative_examples(examples: list[QAExample], count: int, seed: int = 0) -> list[QAExample]:
    """Unanswerable questions made from answerable ones: the question paired with another context of the same
    article (or, failing that, any other context) that contains none of its answers."""
    rng = random.Random(seed)
    by_title: dict[str, list[str]] = {}
    for e in examples:
        contexts = by_title.setdefault(e.title, [])
        if e.context not in contexts:
            contexts.append(e.context)
    all_contexts = [c for cs in by_title.values() for c in cs]
    negatives: list[QAExample] = []
    for e in rng.sample(examples, min(count, len(examples))):
        pool = [c for c in by_title[e.title] if c != e.context] or all_contexts
        for _ in range(8):
            context = rng.choice(pool)
            if not any(a.text in context for a in e.answers):
                negatives.append(QAExample(f"{e.id}-neg", e.question, context, [], e.title, f"{e.id}-neg"))
                break
    return negatives


def fit_calibration(margins: list[float], correct: list[bool]) -> Calibration:
    """Platt scaling: a logistic regression of correctness on the answer margin."""
    from sklearn.linear_model import LogisticRegression

    x = np.array([m if math.isfinite(m) else -50.0 for m in margins], dtype=np.float64).reshape(-1, 1)
    y = np.array(correct, dtype=int)
    if y.min() == y.max():
        raise DataFileError("Calibration needs both correct and wrong answers in the held-out data")
    model = LogisticRegression(C=100.0).fit(x, y)
    return Calibration(float(model.coef_[0, 0]), float(model.intercept_[0]))
