"""Training the term selector (plugin/engine/term_selection.py) by distant supervision on SQuAD.

    spanqa train-term-selector --squad ../shared/data/squad-v1.1/train-v1.1.json [--conversations 40000]

No corpus of follow-ups in users' words is ours to train on, but SQuAD holds several questions per paragraph,
and a question asked after another one on the same paragraph is what a follow-up is before a person shortens it.
Each training conversation is made from one paragraph (or, as a topic switch, from two articles):

- **the history**: one or two earlier questions on the paragraph, and (for a door that keeps the JSON) the answer
  the latest one got;
- **the follow-up**: another question on the paragraph whose longest run of words shared with the history is
  replaced by a pronoun ("it", "that", "they", "its" for a possessive, "this one") or dropped, then sometimes
  lower-cased, stripped of its question mark, opened with "and"/"ok"/"so", or given a typo — the ways people
  shorten what they type;
- **the terms to select**: the history's words that were removed (QuReTeC's distant labels); none for the same
  paragraph's question left whole, or for a question from another article (a change of subject).

The logistic weights are fitted on 80 % of the conversations; the threshold is the one with the best F1 of the
selected words on the other 20 %, which the report also describes. Nothing here reads the manuals or the
project's conversation sets: those measure the result (`python -m bench manuals`, `python -m bench conversations`).
"""

from __future__ import annotations

import json
import math
import random
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from spanqa.plugin.engine.term_selection import (
    FEATURES,
    GATE_FEATURES,
    Context,
    TermSelector,
    candidate_features,
    candidate_terms,
    message_features,
    term_key,
)
from spanqa.plugin.engine.words import WORD, content_words, topic_free

__all__ = ["Example", "as_typed", "fit_term_selector", "make_follow_up", "squad_conversations", "word_rarity"]

_PRONOUNS = ("it", "it", "it", "that", "this", "they", "them", "this one", "those", "that one")
_JOINERS = frozenset(["of", "the", "de", "von", "and", "for", "in", "a", "an"])  # inside a multi-word topic
_OPENERS = ("and ", "ok ", "so ", "but ", "also ")
MIN_DOCUMENT_FREQUENCY = 5
# The threshold maximises F2 of the chosen words (recall weighs twice precision): a follow-up's search is fused
# with the message's own (Assistant._search_resolved), so a needless word costs little and a missing one the topic.
RECALL_WEIGHT = 2.0


@dataclass(frozen=True)
class Example:
    message: str
    context: Context
    needed: frozenset[str]  # term_key of the history words the query needs
    follow_up: bool = True  # made from a question by taking its topic away (else a question left whole)


def word_rarity(paragraphs: list[str]) -> dict[str, float]:
    """IDF of every word seen in at least MIN_DOCUMENT_FREQUENCY paragraphs (lower case)."""
    frequency: Counter[str] = Counter()
    for text in paragraphs:
        frequency.update({w.lower() for w in WORD.findall(text)})
    n = len(paragraphs)
    return {w: math.log(n / df) for w, df in frequency.items() if df >= MIN_DOCUMENT_FREQUENCY}


def make_follow_up(question: str, history_keys: set[str], rng: random.Random) -> tuple[str, frozenset[str]] | None:
    """`question` shortened as a follow-up: its longest run of words shared with the history replaced by a
    pronoun or dropped; with the keys of the words removed. None when it shares no topic word."""
    tokens = question.split()
    bare = [t.strip("?,.;:!\"'()") for t in tokens]
    shared = [bool(b) and not topic_free(b.lower()) and term_key(b) in history_keys for b in bare]
    best: tuple[int, int] | None = None
    i = 0
    while i < len(tokens):
        if not shared[i]:
            i += 1
            continue
        j = i + 1
        while j < len(tokens) and (shared[j] or (bare[j].lower() in _JOINERS and shared[j + 1:j + 2] == [True])):
            j += 1
        if best is None or sum(shared[i:j]) > sum(shared[best[0]:best[1]]):
            best = (i, j)
        i = j
    if best is None:
        return None
    start, end = best
    if start > 0 and bare[start - 1].lower() in ("the", "a", "an"):
        start -= 1
    removed = frozenset(term_key(b) for b, s in zip(bare[start:end], shared[start:end], strict=True) if s)
    last = tokens[end - 1]
    trailing = last[len(last.rstrip("?,.;:!")):]
    if last.rstrip("?,.;:!").endswith("'s"):
        replacement = rng.choice(["its", "their"])
    elif rng.random() < 0.25 and end == len(tokens):
        replacement = ""  # ellipsis: "… of the bridge?" → "…?"
    else:
        replacement = rng.choice(_PRONOUNS)
    words = [*tokens[:start], *([replacement] if replacement else []), *tokens[end:]]
    text = " ".join(words).strip()
    if trailing and not text.endswith(trailing):
        text += trailing
    if rng.random() < 0.15:
        text = rng.choice(_OPENERS) + text[:1].lower() + text[1:]
    return text, removed


def as_typed(text: str, rng: random.Random) -> str:
    """`text` as people type it, sometimes: lower case, no question mark, a typo (every message alike, so that
    none of these says whether a message is a follow-up)."""
    if rng.random() < 0.4:
        text = text.lower()
    if rng.random() < 0.3:
        text = text.rstrip("?")
    if rng.random() < 0.1:
        words = text.split()
        long = [i for i, w in enumerate(words) if len(w) > 4]
        if long:
            i = rng.choice(long)
            w = words[i]
            k = rng.randrange(1, len(w) - 2)
            words[i] = w[:k] + w[k + 1] + w[k] + w[k + 2:]
            text = " ".join(words)
    return text


def squad_conversations(path: Path, rng: random.Random, limit: int) -> Iterator[Example]:
    """Up to `limit` training conversations from a SQuAD file (module docstring)."""
    articles = json.loads(Path(path).read_text())["data"]
    paragraphs = [(a, p) for a in range(len(articles)) for p in articles[a]["paragraphs"] if len(p["qas"]) >= 3]
    rng.shuffle(paragraphs)
    made = 0
    for article, paragraph in paragraphs:
        if made >= limit:
            return
        qas = rng.sample(paragraph["qas"], 3)
        earlier, previous, current = qas
        questions = (earlier["question"], previous["question"]) if rng.random() < 0.4 else (previous["question"],)
        answer = previous["answers"][0]["text"] if rng.random() < 0.6 else ""
        context = Context(questions, answer)
        history = {term_key(w) for text in (*questions, answer) for w in content_words(text)}
        roll = rng.random()
        if roll < 0.65:
            made_up = make_follow_up(current["question"], history, rng)
            if made_up is None:
                continue
            message, passage = made_up[0], paragraph["context"]
        elif roll < 0.8:
            message, passage = current["question"], paragraph["context"]
        else:
            other = rng.choice(articles[(article + rng.randrange(1, len(articles))) % len(articles)]["paragraphs"])
            asked = rng.choice(other["qas"])
            message, passage = asked["question"], other["context"]
        message = as_typed(message, rng)
        in_passage = {term_key(w) for w in WORD.findall(passage)}
        needed = frozenset(k for k in history if k in in_passage and roll < 0.8)
        made += 1
        yield Example(message, context, needed, follow_up=roll < 0.65)


def _matrix(examples: list[Example], idf: dict[str, float]) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Features and labels of every candidate word, and which example each row belongs to."""
    rows, labels, owner = [], [], []
    for n, example in enumerate(examples):
        candidates = candidate_terms(example.message, example.context)
        if not candidates:
            continue
        rows.append(candidate_features(example.message, example.context, candidates, idf))
        labels += [term_key(c.word) in example.needed for c in candidates]
        owner += [n] * len(candidates)
    return np.vstack(rows), np.asarray(labels, dtype=bool), owner


def _selection_f(p: np.ndarray, labels: np.ndarray, threshold: float, beta: float = RECALL_WEIGHT) -> float:
    """F-beta of the words chosen at `threshold` against the words needed."""
    chosen = p >= threshold
    true = float((chosen & labels).sum())
    precision = true / max(1, chosen.sum())
    recall = true / max(1, labels.sum())
    b2 = beta * beta
    return (1 + b2) * precision * recall / (b2 * precision + recall) if precision + recall else 0.0


def _youden_threshold(p: np.ndarray, labels: np.ndarray) -> float:
    """The threshold with the largest true-positive rate minus false-positive rate (blind to the class balance)."""
    thresholds = [round(0.025 * i, 3) for i in range(1, 40)]
    return max(thresholds, key=lambda t: (p[labels] >= t).mean() - (p[~labels] >= t).mean())


def fit_term_selector(squad: Path, conversations: int = 40_000, seed: int = 0) -> tuple[TermSelector, dict]:
    """The term selector fitted on `conversations` made from `squad`, and a report on the held-out fifth: the gate
    on every conversation (a follow-up made from a question depends; the same paragraph's question left whole and
    a question from another article do not), the words on the follow-ups."""
    from sklearn.linear_model import LogisticRegression

    rng = random.Random(seed)
    articles = json.loads(Path(squad).read_text())["data"]
    idf = word_rarity([p["context"] for a in articles for p in a["paragraphs"]])
    examples = list(squad_conversations(squad, rng, conversations))
    cut = int(0.8 * len(examples))
    train, held = examples[:cut], examples[cut:]

    def gate(items: list[Example]) -> tuple[np.ndarray, np.ndarray]:
        return (np.vstack([message_features(e.message, e.context, idf) for e in items]),
                np.asarray([e.follow_up for e in items], dtype=bool))

    gate_model = LogisticRegression(C=1.0, fit_intercept=False, max_iter=2000).fit(*gate(train))
    x_gate, y_gate = gate(held)
    p_gate = gate_model.predict_proba(x_gate)[:, 1]
    gate_threshold = _youden_threshold(p_gate, y_gate)

    x_train, y_train, _ = _matrix([e for e in train if e.follow_up], idf)
    x_held, y_held, _ = _matrix([e for e in held if e.follow_up], idf)
    model = LogisticRegression(C=1.0, fit_intercept=False, max_iter=2000).fit(x_train, y_train)
    p = model.predict_proba(x_held)[:, 1]
    threshold = max([round(0.05 * i, 2) for i in range(1, 19)], key=lambda t: _selection_f(p, y_held, t))
    selector = TermSelector(gate_model.coef_[0].astype(np.float64), gate_threshold,
                            model.coef_[0].astype(np.float64), threshold, idf,
                            trained_on=f"{len(examples)} conversations made from {Path(squad).name}, seed {seed}")
    chosen = p >= threshold
    report = {"conversations": len(examples), "held_out": len(held),
              "gate_threshold": gate_threshold,
              "held_out_follow_ups_seen": float((p_gate[y_gate] >= gate_threshold).mean()),
              "held_out_standalone_dragged": float((p_gate[~y_gate] >= gate_threshold).mean()),
              "term_threshold": threshold, "held_out_term_f2": _selection_f(p, y_held, threshold),
              "held_out_term_precision": float((chosen & y_held).sum() / max(1, chosen.sum())),
              "held_out_term_recall": float((chosen & y_held).sum() / max(1, y_held.sum())),
              "gate_weights": dict(zip(GATE_FEATURES, np.round(gate_model.coef_[0], 3).tolist(), strict=True)),
              "weights": dict(zip(FEATURES, np.round(model.coef_[0], 3).tolist(), strict=True))}
    return selector, report


def words_needed(message: str, standalone: str, context: Context) -> frozenset[str]:
    """The history's words that a standalone rewrite of `message` uses (how a written conversation is labelled)."""
    wanted = {term_key(w) for w in re.findall(r"[\w.\-']+", standalone)}
    return frozenset(term_key(c.word) for c in candidate_terms(message, context) if term_key(c.word) in wanted)
