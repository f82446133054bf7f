"""What kind of answer a question asks for, and what kind of text a span is.

A user who asks *which function* wants a name, not the sentence describing it; *how long* wants a number with its
unit; *how do I* on technical text often wants a command. The reader finds spans, not kinds, so spanqa compares
the two:

- `span_shape(text)` is what a span looks like: an identifier, a dotted name, a call, a command-line option, a
  command, a quoted literal, a number, a version, a name, a phrase or a sentence. These are surface rules, the
  same for every question.
- `AnswerTypes` (a small multinomial logistic model over the question's words, `spanqa/models/answer_type.json`)
  gives P(shape | question). It is learned from training questions whose gold answers' shapes are their labels
  (`spanqa.plugin.lab.answer_type_training`: the technical training questions and SQuAD training questions,
  cross-validated), never from the development sets.

The answer ranker uses the fit of a candidate's shape to the question as a feature, and the engine offers the
ranker the whole unit a candidate cuts across or sits inside (`spans.unit_spans`, on technical text): the code
token a sentence names, the sentence a fragment belongs to.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from spanqa.plugin.engine.models import read_model_json

from spanqa.errors import ModelLoadError
from spanqa.settings import PACKAGE_ROOT

__all__ = ["SHAPES", "AnswerTypes", "default_answer_types_path", "question_terms", "span_shape"]

SHAPES: tuple[str, ...] = ("identifier", "dotted", "call", "option", "command", "literal", "number", "version",
                           "name", "phrase", "sentence")

_MARKUP = "`*"  # code and emphasis markers around a span are not part of its shape
_OPTION = re.compile(r"^--?[A-Za-z][\w-]*(=\S*)?$|^[A-Za-z_]\w*=\S+$")  # a flag, or a parameter's setting
_CALL = re.compile(r"^@?[A-Za-z_][\w.]*\(.*\)$", re.S)
_DOTTED = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)+$")
_IDENTIFIER = re.compile(r"^@?[A-Za-z_][\w]*$")
_CODE_SHAPE = re.compile(r"_|[a-z][A-Z]|^[A-Z0-9_]{3,}$|^@")
_VERSION = re.compile(r"^v?\d+(\.\d+){1,3}([a-z]+\d*)?\+?$", re.I)
_NUMBER = re.compile(r"\d")
_LITERAL = re.compile(r"""^(['"]).*\1$|^(True|False|None|null|true|false)$""", re.S)
_COMMAND_START = re.compile(r"^(\$ |>>> )?[a-z][\w.-]*( |$)")
_FLAG_OR_PATH = re.compile(r"(^|\s)--?\w|\w=\S|\w\.\w|/|\(")
# Words that start prose, never a command line ("so we can avoid …/…", "about 1.5x faster").
_PROSE_STARTS = frozenset((
    "a", "an", "the", "so", "about", "and", "or", "but", "if", "it", "is", "are", "to", "of", "in", "on", "for", "with",
    "by", "as", "at", "this", "that", "when", "where", "which", "who", "how", "what", "you", "we", "they", "use",
    "using"))
_WORD = re.compile(r"[a-z0-9_]+|[^\sa-z0-9_]")


def span_shape(text: str) -> str:
    """The shape of a span's text; one of SHAPES."""
    bare = text.strip().strip(_MARKUP).strip()
    if _LITERAL.match(bare):
        return "literal"
    if not bare:
        return "phrase"
    words = bare.split()
    if len(words) == 1:
        return _token_shape(bare)
    if _CALL.match(bare):
        return "call"
    if _COMMAND_START.match(bare) and words[0].lower() not in _PROSE_STARTS and _FLAG_OR_PATH.search(bare) \
            and len(words) <= 12 and not bare.endswith("."):
        return "command"
    if _NUMBER.search(bare) and len(words) <= 4:
        return "number"
    if len(words) >= 7 or (len(words) >= 4 and bare[-1] in ".!?"):
        return "sentence"
    if len(words) <= 4 and all(w[:1].isupper() for w in words if w[0].isalpha() and len(w) > 3):
        return "name" if words[0][:1].isupper() else "phrase"
    return "phrase"


def _token_shape(token: str) -> str:
    if _OPTION.match(token):
        return "option"
    if _CALL.match(token):
        return "call"
    if _VERSION.match(token):
        return "version"
    if _DOTTED.match(token):
        return "dotted"
    if _IDENTIFIER.match(token) and _CODE_SHAPE.search(token):
        return "identifier"
    if _NUMBER.search(token):
        return "number"
    return "name" if token[:1].isupper() else "phrase"


def question_terms(question: str) -> list[str]:
    """The model's input terms: the first word, words and word pairs of the lower-cased question, and the word that
    follows which/what (the head of "which option", "what exception")."""
    words = _WORD.findall(question.lower())
    terms = [f"w:{w}" for w in words] + [f"b:{a}_{b}" for a, b in zip(words, words[1:], strict=False)]
    if words:
        terms.append(f"first:{words[0]}")
    for a, b in zip(words, words[1:], strict=False):
        if a in ("which", "what", "whose", "how"):
            terms.append(f"head:{a}_{b}")
    return terms


def default_answer_types_path() -> Path:
    return PACKAGE_ROOT / "models" / "answer_type.json"


@dataclass(frozen=True)
class AnswerTypes:
    """P(shape | question): a multinomial logistic model over `question_terms` (binary features)."""

    vocabulary: dict[str, int]
    weights: np.ndarray  # (len(vocabulary), len(SHAPES))
    bias: np.ndarray  # (len(SHAPES),)
    trained_on: str = ""

    def probabilities(self, question: str) -> dict[str, float]:
        rows = sorted({self.vocabulary[t] for t in question_terms(question) if t in self.vocabulary})
        z = self.bias + (self.weights[rows].sum(axis=0) if rows else 0.0)
        p = np.exp(z - z.max())
        p /= p.sum()
        return dict(zip(SHAPES, p.tolist(), strict=True))

    def to_json(self) -> dict:
        return {"shapes": list(SHAPES), "vocabulary": self.vocabulary,
                "weights": [[round(w, 5) for w in row] for row in self.weights.tolist()],
                "bias": self.bias.tolist(), "trained_on": self.trained_on}

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), separators=(",", ":")) + "\n")

    @classmethod
    def load(cls, path: Path | None = None) -> AnswerTypes:
        path = Path(path or default_answer_types_path())
        data = read_model_json(path, "answer-type model")
        if data.get("shapes") != list(SHAPES):
            raise ModelLoadError(f"The answer-type model {path} predicts other shapes than this spanqa knows; "
                                 "retrain it (python -m spanqa.plugin.lab.answer_type_training)")
        return cls(data["vocabulary"], np.asarray(data["weights"], dtype=float), np.asarray(data["bias"], dtype=float),
                   data.get("trained_on", ""))

