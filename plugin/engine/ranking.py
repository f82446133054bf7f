"""Ranking answers across passages: which of the reader's candidate spans is the answer, and how likely it is right.

Why a learned ranker. The reader scores a span against its own window's "no answer" (the margin), so margins from
different passages are only roughly comparable, and the reader alone cannot see the rest of the evidence the
engine holds: that the same span turned up in several passages, that retrieval ranked its passage first, that a
"how many" question got a number or a "which flag" question got something that looks like code, that the span
merely repeats the question's own words. On technical documents the right span was among the candidates far more
often than it was first. `AnswerRanker` combines that evidence with a logistic model learned on development data
(`spanqa.plugin.lab.ranker_training`), and its output is the answer's probability of being right (F1 ≥ 0.5), the
one score that the abstention threshold and every door use.

The model is a small JSON file (feature names, standardisation, weights) shipped beside the reader, so that
inference is a dot product: no extra dependency at run time.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from spanqa.plugin.engine.reader import Answer
from spanqa.retriever.records import Hit

from spanqa.errors import ModelLoadError
from spanqa.settings import PACKAGE_ROOT

__all__ = ["FEATURES", "CALIBRATION_SETTING", "AnswerRanker", "ScoreCalibration", "candidate_features",
           "default_ranker_path", "normalise_answer"]

_WORD = re.compile(r"[A-Za-z0-9_]+")
_STOP_WORDS = """
a an the of in on at to for from by with and or is are was were be been do does did i my me you your it its this
that these those what which who whom whose when where why how can could should would will there if then than as
into about any some not no get use using
"""
_STOP = frozenset(_STOP_WORDS.split())
_QUESTION_KINDS = {
    "number": re.compile(r"\bhow (many|much|long|old|big|large|far|often|fast)\b|\bwhat (percentage|number|size|"
                         r"amount)\b|\bnumber of\b"),
    "time": re.compile(r"^when\b|\bwhat (year|date|day|month|time)\b|\bwhich (year|date|version)\b|\bwhen\b"),
    "person": re.compile(r"^who\b|\bwhom\b|\bwhose\b|\bwhich (person|author|company|organi[sz]ation)\b"),
    "place": re.compile(r"^where\b|\bwhere (is|are|do|does|can)\b"),
    "identifier": re.compile(r"\b(which|what) (\w+ )?(option|flag|argument|parameter|function|method|command|class|"
                             r"setting|variable|decorator|module|exception|error|keyword|attribute|environment "
                             r"variable|field|call|hook|fixture|marker|constant|type|api|property|key|switch)s?\b|"
                             r"\bwhat do i (type|run|call|pass|set|write|use)\b|\bsyntax\b"),
    "howto": re.compile(r"\bhow (do|can|would|should) (i|we|you)\b|\bhow to\b|\bwhat('s| is) the way to\b"),
    "reason": re.compile(r"^why\b|\bwhat (is|was) the (reason|purpose)\b"),
    "yes_no": re.compile(r"^(is|are|does|do|can|could|should|will|was|were|has|have|did)\b"),
}
_CODE_CHARS = re.compile(r"[_().=\[\]{}<>/:`'\"@$*]|--|\w\.\w|[a-z][A-Z]")
_IDENTIFIER = re.compile(r"^(--?|@)?[A-Za-z_][\w.\-]*(\(.*\))?(=\S+)?$")
_IDENTIFIER_SHAPE = re.compile(r"^(--?|@)\w|\w\.\w|_|[a-z][A-Z]|\)$|=|^[A-Z0-9_]{3,}$")

# The order of the feature vector; the ranker's JSON names them and refuses a mismatch.
FEATURES: tuple[str, ...] = (
    "margin", "margin_gap", "shared_softmax", "candidate_rank_inv", "passage_candidate_rank_inv",
    "agreement_mass", "agreement_passages",
    "hit_rank_inv", "cosine", "has_dense", "bm25_rank_inv", "dense_rank_inv",
    "log_words", "has_digit", "capitalised", "code_like", "identifier", "span_in_question", "question_near_span",
    *(f"q_{kind}" for kind in _QUESTION_KINDS),
    "number_x_digit", "time_x_digit", "person_x_capitalised", "place_x_capitalised", "identifier_x_identifier",
    "identifier_x_words", "howto_x_code", "howto_x_words", "reason_x_words", "yes_no_x_words",
)


CALIBRATION_SETTING = "answer_calibration"  # the collection setting `spanqa calibrate` writes


def default_ranker_path() -> Path:
    return PACKAGE_ROOT / "models" / "ranker.json"


def normalise_answer(text: str) -> str:
    """Lower-cased words, so that the same span quoted from two passages counts as one answer."""
    return " ".join(_WORD.findall(text.lower()))


def _content_words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP}


def _span_shape(text: str) -> dict[str, float]:
    words = text.split()
    capitalised = sum(w[:1].isupper() for w in words) / len(words) if words else 0.0
    identifier = bool(_IDENTIFIER.match(text.strip("`'\" "))) and bool(_IDENTIFIER_SHAPE.search(text.strip("`'\" ")))
    return {"log_words": math.log1p(len(words)), "has_digit": float(any(c.isdigit() for c in text)),
            "capitalised": capitalised, "code_like": min(1.0, len(_CODE_CHARS.findall(text)) / 2),
            "identifier": float(identifier)}


def _question_kinds(question: str) -> dict[str, float]:
    lowered = question.lower().strip()
    return {f"q_{kind}": float(bool(pattern.search(lowered))) for kind, pattern in _QUESTION_KINDS.items()}


def _interactions(f: dict[str, float]) -> dict[str, float]:
    return {"number_x_digit": f["q_number"] * f["has_digit"], "time_x_digit": f["q_time"] * f["has_digit"],
            "person_x_capitalised": f["q_person"] * f["capitalised"],
            "place_x_capitalised": f["q_place"] * f["capitalised"],
            "identifier_x_identifier": f["q_identifier"] * f["identifier"],
            "identifier_x_words": f["q_identifier"] * f["log_words"], "howto_x_code": f["q_howto"] * f["code_like"],
            "howto_x_words": f["q_howto"] * f["log_words"],
            "reason_x_words": f["q_reason"] * f["log_words"], "yes_no_x_words": f["q_yes_no"] * f["log_words"]}


def candidate_features(question: str, answers: list[Answer], hits: list[Hit],
                       passage_texts: dict[int, str] | None = None) -> np.ndarray:
    """One row of FEATURES per answer (answers of one question, from the passages of `hits`)."""
    if not answers:
        return np.zeros((0, len(FEATURES)))
    by_passage = {h.passage.id: (rank, h) for rank, h in enumerate(hits, start=1)}
    texts = passage_texts or {h.passage.id: h.passage.text for h in hits}
    margins = np.array([a.margin for a in answers], dtype=float)
    shared = np.exp(margins - margins.max())
    shared /= shared.sum()
    order = np.argsort(-margins, kind="stable")
    rank_of = np.empty(len(answers), dtype=int)
    rank_of[order] = np.arange(1, len(answers) + 1)
    keys = [normalise_answer(a.text) for a in answers]
    question_words = _content_words(question)
    kinds = _question_kinds(question)
    rows = []
    for i, answer in enumerate(answers):
        rank, hit = by_passage.get(answer.passage_id, (len(hits) + 1, None))
        same = [j for j in range(len(answers)) if keys[j] == keys[i] and j != i]
        in_passage = sorted((a.margin for a in answers if a.passage_id == answer.passage_id), reverse=True)
        f = {"margin": answer.margin, "margin_gap": answer.margin - margins.max(),
             "shared_softmax": float(shared[i]), "candidate_rank_inv": 1.0 / rank_of[i],
             "passage_candidate_rank_inv": 1.0 / (1 + in_passage.index(answer.margin)),
             "agreement_mass": float(shared[same].sum()) if same else 0.0,
             "agreement_passages": math.log1p(len({answers[j].passage_id for j in same} - {answer.passage_id})),
             "hit_rank_inv": 1.0 / rank,
             "cosine": hit.dense_score if hit is not None and hit.dense_score is not None else 0.0,
             "has_dense": float(hit is not None and hit.dense_score is not None),
             "bm25_rank_inv": 1.0 / hit.bm25_rank if hit is not None and hit.bm25_rank else 0.0,
             "dense_rank_inv": 1.0 / hit.dense_rank if hit is not None and hit.dense_rank else 0.0,
             **_span_shape(answer.text), **kinds}
        span_words = _content_words(answer.text)
        f["span_in_question"] = len(span_words & question_words) / len(span_words) if span_words else 0.0
        around = texts.get(answer.passage_id, "")[max(0, answer.start - 200): answer.end + 200]
        f["question_near_span"] = (len(question_words & _content_words(around)) / len(question_words)
                                   if question_words else 0.0)
        f.update(_interactions(f))
        rows.append([f[name] for name in FEATURES])
    return np.asarray(rows, dtype=float)


@dataclass(frozen=True)
class AnswerRanker:
    """A logistic model over FEATURES: `rank` rescores answers with P(right) and sorts them, best first."""

    mean: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[float, ...]
    bias: float
    trained_on: str = ""

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        z = (features - np.asarray(self.mean)) / np.asarray(self.scale) @ np.asarray(self.weights) + self.bias
        return 1.0 / (1.0 + np.exp(-np.clip(z, -60, 60)))

    def rank(self, question: str, answers: list[Answer], hits: list[Hit]) -> list[Answer]:
        if not answers:
            return []
        scores = self.probabilities(candidate_features(question, answers, hits))
        ranked = [replace(a, score=float(s)) for a, s in zip(answers, scores, strict=True)]
        ranked.sort(key=lambda a: a.score, reverse=True)
        return ranked

    def to_json(self) -> dict:
        return {"features": list(FEATURES), "mean": list(self.mean), "scale": list(self.scale),
                "weights": list(self.weights), "bias": self.bias, "trained_on": self.trained_on}

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), indent=1) + "\n")

    @classmethod
    def load(cls, path: Path | None = None) -> AnswerRanker:
        path = Path(path or default_ranker_path())
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"Could not load the answer ranker {path}: {exc}") from exc
        if data.get("features") != list(FEATURES):
            raise ModelLoadError(f"The answer ranker {path} was trained on other features than this spanqa computes; "
                                 "retrain it with `spanqa train-ranker`")
        return cls(tuple(data["mean"]), tuple(data["scale"]), tuple(data["weights"]), float(data["bias"]),
                   data.get("trained_on", ""))


@dataclass(frozen=True)
class ScoreCalibration:
    """One collection's correction of the ranker's probabilities: P' = sigmoid(a * logit(P) + b).

    Identity (a=1, b=0) until `spanqa calibrate` fits it on that collection's labelled questions or feedback;
    stored with the collection (setting CALIBRATION_SETTING), so every door and every replica applies it.
    """

    a: float = 1.0
    b: float = 0.0
    fitted_on: str = ""

    def probability(self, p: float) -> float:
        if self.a == 1.0 and self.b == 0.0:
            return p
        p = min(max(p, 1e-6), 1 - 1e-6)
        z = self.a * math.log(p / (1 - p)) + self.b
        return 1.0 / (1.0 + math.exp(-max(min(z, 60.0), -60.0)))

    def inverse(self, q: float) -> float:
        """The ranker's probability that this calibration maps to `q`."""
        if self.a == 0.0:
            return q
        q = min(max(q, 1e-6), 1 - 1e-6)
        z = (math.log(q / (1 - q)) - self.b) / self.a
        return 1.0 / (1.0 + math.exp(-max(min(z, 60.0), -60.0)))

    def to_json(self) -> dict:
        return {"a": self.a, "b": self.b, "fitted_on": self.fitted_on}

    @classmethod
    def from_json(cls, data: dict | None) -> ScoreCalibration:
        if not data:
            return cls()
        return cls(float(data["a"]), float(data["b"]), str(data.get("fitted_on", "")))
