"""Which words of the conversation a follow-up needs: a learned term selector.

"can it ignore upper/lower case?" after "How do I find commits whose message mentions a ticket number?" is searched
well only with some of the earlier words ("commits", "message") and badly with all of them, and "now the reverse"
needs the earlier answer's `--grep`. Following QuReTeC (Voskarides et al., SIGIR 2020), resolution is framed as
*term selection*: every topic word of the conversation (the earlier questions as they were understood, the answer
the latest one got) is a candidate, and a classifier decides which join the follow-up's query. A message for which
none is chosen stands alone, so the same decision says whether a message depends on the conversation at all.

The classifier is a logistic model over features of the candidate (where it was said and how long ago, whether it
was the answer, how rare it is in general text, whether it looks like code or a name, where it sits) and of the
message (how many topic words of its own it has, whether it points back, whether it continues), with a few
products of the two: a rare word from the previous question matters more to "and how?" than to a full question.
It is trained by distant supervision on conversations made from SQuAD (a question whose topic is replaced by a
pronoun or dropped, after another question on the same paragraph; its removed words are the terms to select; a
question from another article is a topic switch with none), never on the manuals it is measured on
(`spanqa train-term-selector`, plugin/lab/term_selector_training.py). The weights and the word rarities are one
small JSON file (`spanqa/models/term_selector.json`); selecting costs microseconds.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from spanqa.plugin.engine.models import read_model_json
from spanqa.plugin.engine.words import ANAPHORA, WH, WORD, antecedent_before, topic_free

from spanqa.errors import ModelLoadError

__all__ = ["FEATURES", "GATE_FEATURES", "Context", "TermSelector", "candidate_features", "candidate_terms",
           "message_features", "term_key"]

_CONTINUATIONS = ("and ", "also ", "what about ", "how about ", "what if ", "same for ", "same with ", "but ",
                  "or ", "then ", "so ", "plus ", "now ", "ok ", "okay ")
_CODE = re.compile(r"[_./()=<>\-]|[a-z][A-Z]|^[A-Z0-9_]{2,}$")
_MAX_IDF = 10.0  # a word never seen in the rarity table is this rare (the table keeps words seen 3+ times)

FEATURES: tuple[str, ...] = (
    "bias", "previous_question", "earlier_question", "answer", "repeated", "idf", "code", "capitalised", "digit",
    "length", "position", "message_words", "message_points_back", "message_continues", "message_overlap",
    "points_back_x_previous", "points_back_x_answer", "few_words_x_previous", "few_words_x_answer",
    "few_words_x_idf", "overlap_x_previous",
)


# Whether a message depends on the conversation at all: features of the message beside the conversation.
GATE_FEATURES: tuple[str, ...] = (
    "bias", "own_words", "no_own_words", "points_back", "named_before_pronoun", "continues", "overlap",
    "rarest_own_word", "named_words", "starts_with_wh", "question_mark", "lower_case", "length",
)


@dataclass(frozen=True)
class Context:
    """What the selector sees of a conversation: the earlier user questions as they were typed (latest last),
    the words a chain of follow-ups carried into the latest one's search (said earlier still), and the answer the
    latest one got ("" when it got none, or the door kept no JSON)."""

    questions: tuple[str, ...]
    answer: str = ""
    carried: str = ""

    def texts(self) -> list[tuple[int, bool, bool, str]]:
        """(distance in questions, whether it is the answer, whether it is a sentence, text) of each part."""
        n = len(self.questions)
        parts = [(n + 1, False, False, self.carried)] if self.carried else []
        parts += [(n - i, False, True, q) for i, q in enumerate(self.questions)]
        return parts + ([(1, True, False, self.answer)] if self.answer else [])


@dataclass
class _Candidate:
    word: str  # as first written
    distance: int = 99  # 1: the previous question; 2+: earlier ones
    in_answer: bool = False
    count: int = 0
    position: float = 1.0  # where it first appears in its text, 0 (start) … 1 (end)
    opens_sentence: bool = False  # first seen as the first word of a question (so its capital says nothing)


def term_key(word: str) -> str:
    """How two spellings of a word are compared (case, quotes and a plural 's' aside)."""
    key = word.lower().strip("'\"`")
    return key[:-1] if len(key) > 3 and key.endswith("s") and not key.endswith("ss") else key


def _words(text: str) -> list[str]:
    return [w.strip("'") for w in WORD.findall(text)]


def _message_facts(message: str) -> tuple[list[str], bool, bool]:
    """The message's own topic words, whether it points back (a pronoun, "that …", "one of those", unless the
    message names what the pronoun stands for before it) and whether it opens as a continuation ("and …")."""
    words = _words(message)
    lowered = [w.lower() for w in words]
    own = [w for w, low in zip(words, lowered, strict=True) if not topic_free(low)]
    pointers = [w for w in lowered if w in ANAPHORA or w == "that" or w in ("one", "ones")]
    points_back = bool(pointers) and not (pointers[0] in ANAPHORA and antecedent_before(message, pointers[0]))
    continues = message.lower().lstrip().startswith(_CONTINUATIONS)
    return own, points_back, continues


def _rarity(word: str, idf: dict[str, float]) -> float:
    return min(idf.get(word.lower(), _MAX_IDF), _MAX_IDF) / _MAX_IDF


def _names_a_topic(word: str, first: bool, idf: dict[str, float]) -> bool:
    return bool(_CODE.search(word)) or (word[:1].isupper() and not first) or _rarity(word, idf) >= 0.7


def message_features(message: str, context: Context, idf: dict[str, float]) -> np.ndarray:
    """One row of GATE_FEATURES: does `message` name its own topic, point back, continue?"""
    words = _words(message)
    own, points_back, continues = _message_facts(message)
    history = {term_key(w) for *_, text in context.texts() for w in _words(text)}
    lowered = [w.lower() for w in words]
    pronoun = next((w for w in lowered if w in ANAPHORA), None)
    named = pronoun is not None and antecedent_before(message, pronoun)
    return np.asarray([
        1.0, min(len(own), 12) / 12, float(not own), float(points_back), float(points_back and named),
        float(continues), sum(term_key(w) in history for w in own) / len(own) if own else 0.0,
        max((_rarity(w, idf) for w in own), default=0.0),
        min(sum(_names_a_topic(w, i == 0, idf) for i, w in enumerate(words) if not topic_free(w.lower())), 4) / 4,
        float(bool(lowered) and lowered[0] in WH), float(message.rstrip().endswith("?")),
        float(message[:1].islower()), min(len(words), 30) / 30,
    ], dtype=np.float64)


def candidate_terms(message: str, context: Context) -> list[_Candidate]:
    """The conversation's topic words that the message does not already have, each once, with where they were
    said."""
    have = {term_key(w) for w in _message_facts(message)[0]}
    found: dict[str, _Candidate] = {}
    for distance, is_answer, sentence, text in context.texts():
        words = _words(text)
        for position, word in enumerate(words):
            key = term_key(word)
            if topic_free(word.lower().split("'")[0]) or key in have or len(key) < 2:
                continue
            candidate = found.setdefault(key, _Candidate(word, position=position / max(1, len(words) - 1),
                                                         opens_sentence=sentence and position == 0))
            candidate.count += 1
            if is_answer:
                candidate.in_answer = True
            else:
                candidate.distance = min(candidate.distance, distance)
    return list(found.values())


def candidate_features(message: str, context: Context, candidates: Sequence[_Candidate],
              idf: dict[str, float]) -> np.ndarray:
    """One row of FEATURES per candidate."""
    own, points_back, continues = _message_facts(message)
    history = {term_key(w) for *_, text in context.texts() for w in _words(text)}
    overlap = sum(term_key(w) in history for w in own) / len(own) if own else 0.0
    few = 1.0 / (1 + len(own))  # 1 with no topic word of its own, → 0 for a full question
    rows = []
    for c in candidates:
        previous = float(c.distance == 1)
        earlier = float(1 < c.distance < 99)
        rarity = _rarity(c.word, idf)
        rows.append([
            1.0, previous, earlier, float(c.in_answer), math.log1p(c.count - 1), rarity,
            float(bool(_CODE.search(c.word))), float(c.word[:1].isupper() and not c.opens_sentence),
            float(any(ch.isdigit() for ch in c.word)), min(len(c.word), 16) / 16, c.position,
            min(len(own), 12) / 12, float(points_back), float(continues), overlap,
            float(points_back) * previous, float(points_back) * float(c.in_answer), few * previous,
            few * float(c.in_answer), few * rarity, overlap * previous,
        ])
    return np.asarray(rows, dtype=np.float64).reshape(len(rows), len(FEATURES))


@dataclass(frozen=True)
class TermSelector:
    """Two logistic models: P(the message depends on the conversation) over GATE_FEATURES, and P(a conversation's
    word belongs in its query) over FEATURES; each with the threshold it is used at; and the rarity (IDF) of
    common words in general text."""

    gate_weights: np.ndarray
    gate_threshold: float
    weights: np.ndarray
    threshold: float
    idf: dict[str, float]
    max_terms: int = 12
    trained_on: str = ""

    def depends(self, message: str, context: Context) -> float:
        """P(`message` cannot be understood without the conversation)."""
        return float(1.0 / (1.0 + np.exp(-(message_features(message, context, self.idf) @ self.gate_weights))))

    def probabilities(self, message: str, context: Context) -> list[tuple[str, float]]:
        """Each candidate word with its probability of being needed, in the order the conversation said them."""
        candidates = candidate_terms(message, context)
        if not candidates:
            return []
        z = candidate_features(message, context, candidates, self.idf) @ self.weights
        p = 1.0 / (1.0 + np.exp(-z))
        return [(c.word, float(q)) for c, q in zip(candidates, p, strict=True)]

    def select(self, message: str, context: Context) -> list[str]:
        """The words to add to the follow-up's query, in the order the conversation said them (the `max_terms`
        most likely); [] when the message stands alone."""
        if self.depends(message, context) < self.gate_threshold:
            return []
        scored = [(w, p) for w, p in self.probabilities(message, context) if p >= self.threshold]
        kept = {w for w, _ in sorted(scored, key=lambda wp: -wp[1])[:self.max_terms]}
        return [w for w, _ in scored if w in kept]

    def to_json(self) -> dict:
        return {"gate_features": list(GATE_FEATURES), "gate_weights": _rounded(self.gate_weights),
                "gate_threshold": self.gate_threshold, "features": list(FEATURES), "weights": _rounded(self.weights),
                "threshold": self.threshold, "max_terms": self.max_terms, "trained_on": self.trained_on,
                "idf": {w: round(v, 3) for w, v in self.idf.items()}}

    @classmethod
    def from_json(cls, data: dict) -> TermSelector:
        if list(data.get("features", [])) != list(FEATURES) or \
                list(data.get("gate_features", [])) != list(GATE_FEATURES):
            raise ModelLoadError("The term selector was trained with other features; retrain it with "
                                 "`spanqa train-term-selector`")
        return cls(np.asarray(data["gate_weights"], dtype=np.float64), float(data["gate_threshold"]),
                   np.asarray(data["weights"], dtype=np.float64), float(data["threshold"]), dict(data["idf"]),
                   int(data.get("max_terms", 12)), str(data.get("trained_on", "")))

    @classmethod
    def load(cls, path: Path) -> TermSelector:
        return cls.from_json(read_model_json(path, "term selector"))


def _rounded(weights: np.ndarray) -> list[float]:
    return [round(float(w), 6) for w in weights]
