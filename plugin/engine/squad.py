"""SQuAD-format data: loading (v1.1 and v2.0 styles) and the official answer metrics.

One loader serves training, evaluation and the benchmark harness, so every part of spanqa reads the same
examples. Answer offsets are checked against their context and repaired when they do not point at the answer
text (COVID-QA's early release has hundreds of such offsets): the occurrence nearest the stated offset wins,
and an answer whose text is absent from its context is dropped.
"""

from __future__ import annotations

import collections
import gzip
import json
import re
import string
from dataclasses import dataclass, field
from pathlib import Path

from spanqa.errors import DataFileError

__all__ = [
    "QAExample",
    "SquadAnswer",
    "load_squad",
    "normalize_answer",
    "exact_match_score",
    "f1_score",
    "max_over_ground_truths",
    "CORRECT_F1",
]

# An answer counts as right at this F1 against its references: the reader's calibration, the answer ranker's
# labels, `spanqa calibrate` and the benchmark's reliability all use this one bar.
CORRECT_F1 = 0.5


@dataclass(frozen=True)
class SquadAnswer:
    text: str
    start: int

    @property
    def end(self) -> int:
        return self.start + len(self.text)


@dataclass
class QAExample:
    """One question over one context. `answers` is empty for an unanswerable question."""

    id: str
    question: str
    context: str
    answers: list[SquadAnswer] = field(default_factory=list)
    title: str = ""
    context_id: str = ""

    @property
    def is_impossible(self) -> bool:
        return not self.answers


def _locate(context: str, text: str, stated_start: int) -> int | None:
    """Return a start offset at which `text` really occurs in `context`, nearest to `stated_start`."""
    if stated_start >= 0 and context[stated_start : stated_start + len(text)] == text:
        return stated_start
    starts = [m.start() for m in re.finditer(re.escape(text), context)]
    if not starts:
        return None
    return min(starts, key=lambda s: abs(s - stated_start))


def load_squad(path: str | Path, limit: int | None = None) -> list[QAExample]:
    """Read a SQuAD-format JSON file into examples.

    Args:
        path: a SQuAD v1.1 or v2.0 style file (`{"data": [{"title", "paragraphs": [{"context", "qas"}]}]}`),
            plain or gzip-compressed (`.gz`).
        limit: keep only the first `limit` questions (for quick runs).

    Raises:
        DataFileError: the path does not exist, or the file is not SQuAD-shaped JSON.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"SQuAD file not found: {path}")
    try:
        data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        raw = json.loads(data.decode("utf-8"))
        articles = raw["data"]
    except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError, gzip.BadGzipFile) as exc:
        raise DataFileError(f"{path} is not a SQuAD-format JSON file (expected a top-level 'data' list): "
                            f"{exc}") from exc
    examples: list[QAExample] = []
    for a_index, article in enumerate(articles):
        title = str(article.get("title", f"article-{a_index}"))
        for p_index, paragraph in enumerate(article.get("paragraphs", [])):
            context = paragraph["context"]
            context_id = f"{a_index}:{p_index}"
            for qa in paragraph.get("qas", []):
                answers: list[SquadAnswer] = []
                if not qa.get("is_impossible", False):
                    for ans in qa.get("answers", []):
                        text = ans["text"]
                        start = _locate(context, text, int(ans.get("answer_start", -1)))
                        if text.strip() and start is not None:
                            answers.append(SquadAnswer(text, start))
                    if not answers:
                        # Every stated answer is absent from the context: the question cannot be scored.
                        continue
                examples.append(
                    QAExample(str(qa["id"]), qa["question"], context, answers, title, context_id)
                )
                if limit is not None and len(examples) >= limit:
                    return examples
    return examples


# --- The official SQuAD v1.1 evaluation (normalization, EM, F1), kept to the letter. -------------------

def normalize_answer(s: str) -> str:
    """Lower text and remove punctuation, articles and extra whitespace."""

    def remove_articles(text: str) -> str:
        return re.sub(r"\b(a|an|the)\b", " ", text)

    def white_space_fix(text: str) -> str:
        return " ".join(text.split())

    def remove_punc(text: str) -> str:
        exclude = set(string.punctuation)
        return "".join(ch for ch in text if ch not in exclude)

    return white_space_fix(remove_articles(remove_punc(s.lower())))


def f1_score(prediction: str, ground_truth: str) -> float:
    prediction_tokens = normalize_answer(prediction).split()
    ground_truth_tokens = normalize_answer(ground_truth).split()
    if not prediction_tokens or not ground_truth_tokens:
        # SQuAD v2 convention: two empty answers agree, one empty answer scores 0.
        return float(prediction_tokens == ground_truth_tokens)
    common = collections.Counter(prediction_tokens) & collections.Counter(ground_truth_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0.0
    precision = num_same / len(prediction_tokens)
    recall = num_same / len(ground_truth_tokens)
    return (2 * precision * recall) / (precision + recall)


def exact_match_score(prediction: str, ground_truth: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(ground_truth))


def max_over_ground_truths(metric, prediction: str, ground_truths: list[str]) -> float:
    """Best score against any reference; an unanswerable question's only reference is the empty answer."""
    if not ground_truths:
        ground_truths = [""]
    return max(metric(prediction, gt) for gt in ground_truths)
