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
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from spanqa.plugin.engine.answer_type import AnswerTypes, span_shape
from spanqa.plugin.engine.models import read_model_json
from spanqa.plugin.engine.reader import Answer
from spanqa.plugin.engine.spans import unit_spans
from spanqa.retriever.records import Hit

from spanqa.errors import ModelLoadError
from spanqa.settings import PACKAGE_ROOT

__all__ = ["FEATURES", "CALIBRATION_SETTING", "AnswerRanker", "LogisticModel", "ScoreCalibration", "candidate_features",
           "default_ranker_path", "distinct_answers", "normalise_answer", "with_units"]

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
    "logit", "logit_gap", "logit_softmax", "type_fit", "type_best", "unit",
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


def with_units(answers: list[Answer], hits: list[Hit]) -> list[Answer]:
    """The reader's candidates and, after them, the whole units each could mean (`spans.unit_spans`): the name a
    sentence mentions, the sentence a fragment belongs to. Each unit keeps its candidate's reader scores."""
    texts = {h.passage.id: h.passage for h in hits}
    units = []
    for answer in answers:
        passage = texts.get(answer.passage_id)
        if passage is None:
            continue
        for start, end in unit_spans(passage.text, answer.start, answer.end):
            units.append(replace(answer, text=passage.text[start:end], start=start, end=end,
                                 document_start=passage.start + start, document_end=passage.start + end, unit=True))
    return answers + units


def distinct_answers(ranked: list[Answer]) -> list[Answer]:
    """Ranked answers without those that overlap a better one in the same document (a unit and its candidate)."""
    kept: list[Answer] = []
    for answer in ranked:
        if not any(k.document_id == answer.document_id and k.document_start < answer.document_end
                   and answer.document_start < k.document_end for k in kept):
            kept.append(answer)
    return kept


def _softmax(values: np.ndarray) -> np.ndarray:
    shared = np.exp(values - values.max())
    return shared / shared.sum()


def candidate_features(question: str, answers: list[Answer], hits: list[Hit],
                       passage_texts: dict[int, str] | None = None,
                       types: dict[str, float] | None = None) -> np.ndarray:
    """One row of FEATURES per answer (answers of one question, from the passages of `hits`); `types`: the
    question's P(answer shape) (AnswerTypes), uniform when not given."""
    if not answers:
        return np.zeros((0, len(FEATURES)))
    by_passage = {h.passage.id: (rank, h) for rank, h in enumerate(hits, start=1)}
    texts = passage_texts or {h.passage.id: h.passage.text for h in hits}
    margins = np.array([a.margin for a in answers], dtype=float)
    shared = _softmax(margins)
    logits = np.array([a.logit for a in answers], dtype=float)
    logit_shared = _softmax(logits)
    types = types or {}
    likeliest = max(types.values(), default=1.0)
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
             "logit": answer.logit, "logit_gap": answer.logit - logits.max(),
             "logit_softmax": float(logit_shared[i]), "unit": float(answer.unit),
             "agreement_mass": float(shared[same].sum()) if same else 0.0,
             "agreement_passages": math.log1p(len({answers[j].passage_id for j in same} - {answer.passage_id})),
             "hit_rank_inv": 1.0 / rank,
             "cosine": hit.dense_score if hit is not None and hit.dense_score is not None else 0.0,
             "has_dense": float(hit is not None and hit.dense_score is not None),
             "bm25_rank_inv": 1.0 / hit.bm25_rank if hit is not None and hit.bm25_rank else 0.0,
             "dense_rank_inv": 1.0 / hit.dense_rank if hit is not None and hit.dense_rank else 0.0,
             **_span_shape(answer.text), **kinds}
        fit = types.get(span_shape(answer.text), likeliest) if types else likeliest  # no model: no preference
        f["type_fit"], f["type_best"] = math.log(max(fit, 1e-4)), fit / likeliest
        span_words = _content_words(answer.text)
        f["span_in_question"] = len(span_words & question_words) / len(span_words) if span_words else 0.0
        around = texts.get(answer.passage_id, "")[max(0, answer.start - 200): answer.end + 200]
        f["question_near_span"] = (len(question_words & _content_words(around)) / len(question_words)
                                   if question_words else 0.0)
        f.update(_interactions(f))
        rows.append([f[name] for name in FEATURES])
    return np.asarray(rows, dtype=float)


@dataclass(frozen=True)
class LogisticModel:
    """P(right) = sigmoid(standardised features · weights + bias), over FEATURES."""

    mean: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[float, ...]
    bias: float
    trained_on: str = ""

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        z = (features - np.asarray(self.mean)) / np.asarray(self.scale) @ np.asarray(self.weights) + self.bias
        return 1.0 / (1.0 + np.exp(-np.clip(z, -60, 60)))

    def to_json(self) -> dict:
        return {"mean": list(self.mean), "scale": list(self.scale), "weights": list(self.weights),
                "bias": self.bias, "trained_on": self.trained_on}

    @classmethod
    def from_json(cls, data: dict, features: list[str]) -> LogisticModel:
        """A model saved over `features`; a feature it did not know gets weight 0 (it predicts as it did)."""
        known = {name: i for i, name in enumerate(features)}
        pick = lambda key, missing: tuple(float(data[key][known[f]]) if f in known else missing  # noqa: E731
                                          for f in FEATURES)
        return cls(pick("mean", 0.0), pick("scale", 1.0), pick("weights", 0.0), float(data["bias"]),
                   data.get("trained_on", ""))


@dataclass(frozen=True)
class AnswerRanker:
    """Orders a question's candidates by P(right): `rank` rescores them and sorts them, best first.

    One logistic model per kind of text: `prose`, and `technical` for passages that read like technical
    documentation (`text_kind.looks_technical`, the rule that picks the technical reader), where whole units
    (`with_units`) are offered too and the answer type weighs more. Learned separately because what predicts a
    right answer differs: cross-validated on the technical training questions, a model of their own ranked better
    than one shared with Wikipedia, and the new features did not help on Wikipedia (docs/answers.md).
    """

    prose: LogisticModel
    technical: LogisticModel | None = None  # None: the prose model for every text
    answer_types: AnswerTypes | None = None  # P(answer shape | question); None: no preference
    # Per reader ("general", "technical"): Platt scaling of the model's probability for that reader's candidates.
    # The models learn from the general reader's candidates (the technical reader was trained on the technical
    # training questions, so its candidates there would teach overconfidence); the technical reader's scores
    # are put on the same scale by a calibration fitted on technical questions it was not trained on.
    reader_calibration: dict[str, ScoreCalibration] = field(default_factory=dict)

    def model(self, technical: bool) -> LogisticModel:
        return self.technical if technical and self.technical is not None else self.prose

    def features(self, question: str, answers: list[Answer], hits: list[Hit],
                 technical: bool = False) -> tuple[list[Answer], np.ndarray]:
        """The candidates the ranker orders (the reader's and, on technical text with a technical model to judge
        them, their whole units) and their feature rows."""
        candidates = with_units(answers, hits) if technical and self.technical is not None else answers
        types = self.answer_types.probabilities(question) if self.answer_types is not None else None
        return candidates, candidate_features(question, candidates, hits, types=types)

    def rank(self, question: str, answers: list[Answer], hits: list[Hit], reader: str = "general",
             technical: bool = False) -> list[Answer]:
        """The candidates (and their whole units, on `technical` text), each scored with P(right) as `reader`'s
        candidate, best first, without answers that overlap a better one."""
        if not answers:
            return []
        candidates, features = self.features(question, answers, hits, technical)
        scale = self.reader_calibration.get(reader, ScoreCalibration())
        scores = [scale.probability(float(p)) for p in self.model(technical).probabilities(features)]
        ranked = [replace(a, score=s) for a, s in zip(candidates, scores, strict=True)]
        ranked.sort(key=lambda a: a.score, reverse=True)
        return distinct_answers(ranked)

    def to_json(self) -> dict:
        return {"features": list(FEATURES), "prose": self.prose.to_json(),
                "technical": self.technical.to_json() if self.technical is not None else None,
                "reader_calibration": {name: c.to_json() for name, c in self.reader_calibration.items()}}

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), indent=1) + "\n")

    @classmethod
    def load(cls, path: Path | None = None) -> AnswerRanker:
        path = Path(path or default_ranker_path())
        data = read_model_json(path, "answer ranker")
        if data.get("features") != list(FEATURES) or "prose" not in data:
            raise ModelLoadError(f"The answer ranker {path} was trained on other features than this spanqa computes; "
                                 "retrain it with `spanqa train-ranker`")
        technical = data.get("technical")
        # The answer types feed the technical model's features; a ranker without one has no use for them.
        return cls(LogisticModel.from_json(data["prose"], data["features"]),
                   LogisticModel.from_json(technical, data["features"]) if technical else None,
                   AnswerTypes.load() if technical else None,
                   {name: ScoreCalibration.from_json(c) for name, c in data.get("reader_calibration", {}).items()})


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
