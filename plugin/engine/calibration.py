"""Fitting one collection's answer calibration from its own evidence: `spanqa calibrate`.

The shipped ranker's probabilities are fitted on a mix of domains; a user's collection is its own domain. Two
kinds of evidence say how right spanqa is on it:

- labelled questions (a JSONL file of {"question": ..., "answers": [...]}, `answers` empty when the documents do
  not answer it; or any SQuAD-format file whose documents are in the collection), which spanqa answers now;
- thumbs-up/down feedback on document answers, stored with the collection by the chat UI and the servers.

Each becomes a pair (the ranker's probability, right or not), and a Platt fit on the log-odds gives
`ScoreCalibration(a, b)`, stored with the collection: every door and every replica applies it from then on.
Feedback recorded a score already calibrated by the calibration of its day; it is mapped back to the ranker's
scale through the current calibration (exact when the calibration has not changed since).

Thumbs-down on a reply that did not go to the documents (the router took a question for small talk, help, …)
is routing evidence instead: `routing_corrections` returns those messages, labelled as document questions.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from spanqa.plugin.engine.ranking import CALIBRATION_SETTING, ScoreCalibration
from spanqa.plugin.engine.squad import CORRECT_F1, f1_score, load_squad, max_over_ground_truths

from spanqa.errors import DataFileError, InputError

__all__ = ["CalibrationReport", "LabelledQuestion", "MIN_EXAMPLES", "calibrate_collection", "fit_platt",
           "expected_calibration_error", "load_labels", "routing_corrections"]

MIN_EXAMPLES = 20  # fewer pairs cannot pin down two parameters


@dataclass(frozen=True)
class LabelledQuestion:
    question: str
    answers: tuple[str, ...]  # empty: the collection does not answer it


@dataclass
class CalibrationReport:
    calibration: ScoreCalibration
    labelled: int
    feedback: int
    ece_before: float
    ece_after: float

    def to_json(self) -> dict:
        return {"a": self.calibration.a, "b": self.calibration.b, "labelled": self.labelled,
                "feedback": self.feedback, "ece_before": round(self.ece_before, 4),
                "ece_after": round(self.ece_after, 4)}


def load_labels(path: str | Path) -> list[LabelledQuestion]:
    """JSONL ({"question", "answers"} per line) or a SQuAD-format JSON file."""
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"Labels file not found: {path}")
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".jsonl":
        labels = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                labels.append(LabelledQuestion(str(row["question"]), tuple(str(a) for a in row.get("answers", []))))
            except (ValueError, KeyError, TypeError) as exc:
                raise DataFileError(f"{path}, line {number}: expected {{\"question\": ..., \"answers\": [...]}} "
                                    f"({exc})") from exc
        return labels
    try:
        return [LabelledQuestion(e.question, tuple(a.text for a in e.answers)) for e in load_squad(path)]
    except ValueError as exc:
        raise DataFileError(f"{path}: neither JSONL labels nor SQuAD-format JSON ({exc})") from exc


def expected_calibration_error(scores: np.ndarray, right: np.ndarray, bins: int = 10) -> float:
    which = np.clip((scores * bins).astype(int), 0, bins - 1)
    return float(sum(abs(scores[which == b].mean() - right[which == b].mean()) * (which == b).sum()
                     for b in range(bins) if (which == b).any()) / max(len(scores), 1))


def _labelled_pairs(assistant, labels: list[LabelledQuestion]) -> list[tuple[float, bool]]:
    """(uncalibrated probability of the first answer, right) for each labelled question."""
    pairs = []
    for label in labels:
        hits = assistant.search(label.question)
        candidates, _ = assistant.read_candidates(label.question, hits)
        reader = assistant.reader_name(assistant.reader_for(hits))
        ranked = assistant.ranker.rank(label.question, candidates, hits, reader, assistant.technical_text(hits))
        if not ranked:
            continue  # no candidate: spanqa abstains whatever the calibration
        best = ranked[0]
        right = bool(label.answers) and max_over_ground_truths(f1_score, best.text, list(label.answers)) >= CORRECT_F1
        pairs.append((best.score, right))
    return pairs


def _feedback_pairs(collection, current: ScoreCalibration) -> list[tuple[float, bool]]:
    pairs = []
    for f in collection.feedback():
        if f.route not in ("documents", "fallback") or f.score is None or not 0.0 < f.score < 1.0:
            continue
        pairs.append((current.inverse(f.score), bool(f.rating)))
    return pairs


def fit_platt(pairs: list[tuple[float, bool]], slope: float | None = None) -> tuple[float, float]:
    """(a, b) of P(right) = sigmoid(a * logit(score) + b), fitted on (score, right) pairs. `slope`: keep a fixed
    and fit the shift b alone (maximum likelihood), for samples too small to pin down two parameters."""
    x = np.array([math.log(max(p, 1e-6) / max(1 - p, 1e-6)) for p, _ in pairs])
    y = np.array([r for _, r in pairs], dtype=int)
    if slope is not None:
        from scipy.optimize import minimize_scalar

        def loss(b: float) -> float:
            z = slope * x + b
            return float(np.sum(np.logaddexp(0.0, z) - y * z))

        return slope, float(minimize_scalar(loss, bounds=(-10.0, 10.0), method="bounded").x)
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=10.0).fit(x[:, None], y)
    return float(model.coef_[0][0]), float(model.intercept_[0])


def calibrate_collection(assistant, labels: list[LabelledQuestion] | None = None, use_feedback: bool = True,
                         save: bool = True) -> CalibrationReport:
    """Refit the collection's calibration from `labels` and its feedback; store it unless `save` is False."""
    collection = assistant.collection
    current = ScoreCalibration.from_json(collection.get_setting(CALIBRATION_SETTING))
    if assistant.ranker is None:
        raise InputError("Calibration applies to the answer ranker's scores; this assistant has none (rank=False)")
    labelled = _labelled_pairs(assistant, labels or [])
    feedback = _feedback_pairs(collection, current) if use_feedback else []
    pairs = labelled + feedback
    rights = sum(r for _, r in pairs)
    if len(pairs) < MIN_EXAMPLES or rights == 0 or rights == len(pairs):
        raise InputError(f"Calibration needs at least {MIN_EXAMPLES} answers with both right and wrong ones among "
                         f"them; got {len(pairs)} ({rights} right) from {len(labelled)} labelled questions and "
                         f"{len(feedback)} feedback ratings. Label more questions (--labels) or collect more "
                         "thumbs-up/down.")
    a, b = fit_platt(pairs)
    fitted = ScoreCalibration(a, b, f"{len(labelled)} labelled questions + {len(feedback)} feedback ratings")
    scores = np.array([p for p, _ in pairs])
    right = np.array([r for _, r in pairs], dtype=float)
    after = np.array([fitted.probability(p) for p in scores])
    report = CalibrationReport(fitted, len(labelled), len(feedback),
                               expected_calibration_error(scores, right), expected_calibration_error(after, right))
    if save:
        collection.put_setting(CALIBRATION_SETTING, fitted.to_json())
    return report


def routing_corrections(collection) -> list[str]:
    """Messages whose reply did not come from the documents and got a thumbs-down: questions for the documents."""
    seen, messages = set(), []
    for f in collection.feedback():
        if f.route in ("reply", "help") and not f.rating and f.question not in seen:
            seen.add(f.question)
            messages.append(f.question)
    return messages
