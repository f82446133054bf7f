"""Learn the answer ranker (plugin/engine/ranking.py) on development data.

    spanqa train-ranker --data A.json [--data B.json ...] [--limit N] [--out spanqa/models/ranker.json]

For each SQuAD-format file, its contexts become a temporary collection (a seeded `holdout` fraction left out, so
that their questions are real questions the collection cannot answer), and every question goes through the
engine's own answer path: hybrid retrieval, then `Assistant.read_candidates`. Each candidate gets its features
and a label, right (F1 ≥ 0.5 against the references) or not. A logistic regression over all of them is the ranker:
its output is P(right), which orders the candidates and is the answer's confidence.

Candidates are cached per file and settings (`<cache>/ranker-candidates/`), so refitting takes seconds.
"""

from __future__ import annotations

import hashlib
import random
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from spanqa.plugin.engine.ranking import FEATURES, AnswerRanker, candidate_features
from spanqa.plugin.engine.squad import CORRECT_F1, QAExample, f1_score, load_squad, max_over_ground_truths

from spanqa.settings import Settings, cache_dir, default_reader_path

__all__ = ["Candidates", "collect_candidates", "fit_ranker", "ranking_report", "open_domain_set",
           "open_domain_split"]



@dataclass
class Candidates:
    """The candidates of many questions: a row of features each, its F1, and which question it answers."""

    features: np.ndarray  # (n, len(FEATURES))
    f1: np.ndarray  # (n,)
    margin: np.ndarray  # (n,) the reader's margin: the order before the ranker
    group: np.ndarray  # (n,) question index
    answerable: np.ndarray  # (questions,) bool
    weight: np.ndarray | None = None  # (n,) sample weights; None = all 1

    @property
    def labels(self) -> np.ndarray:
        return (self.f1 >= CORRECT_F1).astype(int)

    @classmethod
    def concatenate(cls, parts: list[Candidates]) -> Candidates:
        """All parts, each weighing the same in total: a small technical set counts as much as a large Wikipedia
        one, so that the ranker learns both domains rather than the larger."""
        offsets = np.cumsum([0] + [len(p.answerable) for p in parts[:-1]])
        total = sum(len(p.f1) for p in parts)
        return cls(np.concatenate([p.features for p in parts]), np.concatenate([p.f1 for p in parts]),
                   np.concatenate([p.margin for p in parts]),
                   np.concatenate([p.group + o for p, o in zip(parts, offsets, strict=True)]),
                   np.concatenate([p.answerable for p in parts]),
                   np.concatenate([np.full(len(p.f1), total / (len(parts) * max(len(p.f1), 1))) for p in parts]))


def open_domain_split(examples: list[QAExample], holdout: float, seed: int) -> tuple[dict[str, str], set[str]]:
    """Contexts kept in the collection (context id → text) and the ids of those held out (their questions then
    have no answer in the collection)."""
    order = list(dict.fromkeys(e.context_id for e in examples))
    held_out = set(random.Random(seed).sample(order, round(holdout * len(order)))) if holdout > 0 else set()
    kept = {e.context_id: e.context for e in examples if e.context_id not in held_out}
    return kept, held_out


def _reader_identity(reader) -> str:
    """Which weights read the candidates: the reader's location and precision and, for a local model, its files'
    sizes and times, so that a reader retrained in the same folder never reuses another reader's candidates."""
    name = reader.model_name if reader is not None else str(default_reader_path())
    precision = reader.precision if reader is not None else Settings.reader_precision
    folder = Path(name)
    listing = [f for f in folder.iterdir() if f.suffix != ".md"] if folder.is_dir() else []
    files = sorted((f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in listing)
    return f"{name}|{precision}|{files}"


def _cache_path(path: Path, *settings) -> Path:
    key = f"{path.resolve()}|{path.stat().st_size}|{settings}|{','.join(FEATURES)}"
    return cache_dir() / "ranker-candidates" / f"{path.stem}-{hashlib.sha1(key.encode()).hexdigest()[:12]}.npz"


def collect_candidates(path: Path, limit: int | None = None, skip: int = 0, until: int | None = None,
                       holdout: float = 0.15, seed: int = 0, top_k: int = 5, reader=None) -> Candidates:
    """Run the engine's answer path over one SQuAD-format file and featurise every candidate (cached).

    The questions are the file's `skip`…`until` ones (all by default), `limit` of them sampled (seeded)."""
    path = Path(path)
    cached = _cache_path(path, limit, skip, until, holdout, seed, top_k, _reader_identity(reader))
    if cached.is_file():
        data = np.load(cached)
        return Candidates(data["features"], data["f1"], data["margin"], data["group"], data["answerable"])
    candidates = _collect(path, limit, skip, until, holdout, seed, top_k, reader)
    cached.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cached, features=candidates.features, f1=candidates.f1, margin=candidates.margin,
             group=candidates.group, answerable=candidates.answerable)
    return candidates


def open_domain_set(path: Path, where: Path, holdout: float = 0.15, seed: int = 0, skip: int = 0,
                    until: int | None = None, limit: int | None = None):
    """A collection at `where` of a SQuAD-format file's contexts (a `holdout` fraction left out), and its questions
    with their references: [(question, answers)], answers empty when the collection cannot answer."""
    from spanqa.retriever import Document, LocalCollection
    from spanqa.retriever.loaders import LoadReport

    examples = load_squad(path)
    kept, held_out = open_domain_split(examples, holdout, seed)
    questions = examples[skip:until]
    if limit is not None and limit < len(questions):
        questions = random.Random(seed).sample(questions, limit)
    collection = LocalCollection(where)
    collection.add_documents(LoadReport(documents=[Document(source=f"{Path(path).stem} #{cid}", text=text)
                                                   for cid, text in kept.items()]))
    return collection, [(e.question, [a.text for a in e.answers] if e.context_id not in held_out else [])
                        for e in questions]


def _collect(path: Path, limit, skip, until, holdout, seed, top_k, reader) -> Candidates:
    from spanqa.plugin.engine.assistant import Assistant
    from spanqa.plugin.engine.reader import Reader

    features, f1s, margins, groups, answerable = [], [], [], [], []
    with tempfile.TemporaryDirectory(prefix="spanqa-ranker-") as tmp:
        collection, questions = open_domain_set(path, Path(tmp) / "collection", holdout, seed, skip, until, limit)
        # The general reader's candidates only (a reader given explicitly reads every question): the technical
        # reader was trained on the technical training questions, so its candidates on them would be overconfident.
        reader = reader or Reader(precision=Settings.reader_precision)
        assistant = Assistant(collection, reader=reader, rank=False)
        for number, (question, truths) in enumerate(questions):
            hits = assistant.search(question, k=top_k)
            found, _ = assistant.read_candidates(question, hits)
            features.append(candidate_features(question, found, hits))
            f1s.extend(max_over_ground_truths(f1_score, a.text, truths) if truths else 0.0 for a in found)
            margins.extend(a.margin for a in found)
            groups.extend([number] * len(found))
            answerable.append(bool(truths))
            if number % 100 == 0:
                print(f"{path.name}: {number}/{len(questions)} questions", file=sys.stderr, flush=True)
        collection.close()
    return Candidates(np.concatenate(features) if features else np.zeros((0, len(FEATURES))), np.asarray(f1s),
                      np.asarray(margins), np.asarray(groups, dtype=int), np.asarray(answerable, dtype=bool))


def fit_ranker(candidates: Candidates, c: float = 1.0, trained_on: str = "") -> AnswerRanker:
    """Logistic regression of "right" on the standardised features."""
    from sklearn.linear_model import LogisticRegression

    x = candidates.features
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale == 0] = 1.0
    model = LogisticRegression(C=c, max_iter=2000)
    model.fit((x - mean) / scale, candidates.labels, sample_weight=candidates.weight)
    return AnswerRanker(tuple(mean.tolist()), tuple(scale.tolist()), tuple(model.coef_[0].tolist()),
                        float(model.intercept_[0]), trained_on)


def ranking_report(candidates: Candidates, ranker: AnswerRanker | None, threshold: float = 0.3) -> dict:
    """Per question: F1 of the first candidate (by the ranker, or by margin when `ranker` is None), of the best
    candidate, and end-to-end F1 when the first is answered only above `threshold` (abstaining right = 1; with
    no ranker nothing abstains)."""
    scores = ranker.probabilities(candidates.features) if ranker is not None else candidates.margin
    top1, best, e2e = [], [], []
    for q, answerable in enumerate(candidates.answerable):
        rows = np.flatnonzero(candidates.group == q)
        if not answerable:
            first_score = scores[rows].max() if len(rows) and ranker is not None else 0.0
            e2e.append(float(first_score < threshold))
            continue
        if not len(rows):
            top1.append(0.0), best.append(0.0), e2e.append(0.0)
            continue
        first = rows[np.argmax(scores[rows])]
        top1.append(candidates.f1[first])
        best.append(candidates.f1[rows].max())
        e2e.append(candidates.f1[first] if ranker is None or scores[first] >= threshold else 0.0)
    return {"top1_f1": 100 * float(np.mean(top1)), "best_f1": 100 * float(np.mean(best)),
            "e2e_f1": 100 * float(np.mean(e2e)), "questions": len(candidates.answerable)}
