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
from spanqa.plugin.engine.answer_type import AnswerTypes
from spanqa.plugin.engine.ranking import FEATURES, AnswerRanker, LogisticModel
from spanqa.plugin.engine.squad import CORRECT_F1, QAExample, f1_score, load_squad, max_over_ground_truths

from spanqa.settings import SHIPPED_READER, Settings

__all__ = ["Candidates", "carried_over", "collect_candidates", "cross_validated_report", "fit_ranker",
           "fit_reader_calibration", "ranking_report", "open_domain_set", "open_domain_split"]



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


def reader_identity(reader) -> str:
    """Which weights read the candidates: the reader's location and precision and, for a local model, its files'
    sizes and times, so that a reader retrained in the same folder never reuses another reader's candidates."""
    name = reader.model_name if reader is not None else str(SHIPPED_READER)
    precision = reader.precision if reader is not None else Settings.reader_precision
    folder = Path(name)
    listing = [f for f in folder.iterdir() if f.suffix != ".md"] if folder.is_dir() else []
    files = sorted((f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in listing)
    return f"{name}|{precision}|{files}"


def _cache_path(path: Path, *settings) -> Path:
    from spanqa.plugin.engine.answer_type import default_answer_types_path

    types = default_answer_types_path().stat()
    key = f"{path.resolve()}|{path.stat().st_size}|{settings}|{','.join(FEATURES)}|{types.st_size}|{types.st_mtime_ns}"
    name = f"{path.stem}-{hashlib.sha1(key.encode()).hexdigest()[:12]}.npz"
    return Settings.from_env().home_path / "ranker-candidates" / name


def collect_candidates(path: Path, limit: int | None = None, skip: int = 0, until: int | None = None,
                       holdout: float = 0.15, seed: int = 0, top_k: int = 5, reader=None) -> Candidates:
    """Run the engine's answer path over one SQuAD-format file and featurise every candidate (cached).

    The questions are the file's `skip`…`until` ones (all by default), `limit` of them sampled (seeded)."""
    path = Path(path)
    cached = _cache_path(path, limit, skip, until, holdout, seed, top_k, reader_identity(reader))
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
        # The features of the shipped answer-type model; the ranker's own weights play no part in them.
        featuriser = AnswerRanker(LogisticModel((), (), (), 0.0), answer_types=AnswerTypes.load())
        for number, (question, truths) in enumerate(questions):
            hits = assistant.search(question, k=top_k)
            found, rows = featuriser.features(question, assistant.read_candidates(question, hits)[0], hits,
                                              assistant.technical_text(hits))
            features.append(rows)
            f1s.extend(max_over_ground_truths(f1_score, a.text, truths) if truths else 0.0 for a in found)
            margins.extend(a.margin for a in found)
            groups.extend([number] * len(found))
            answerable.append(bool(truths))
            if number % 100 == 0:
                print(f"{path.name}: {number}/{len(questions)} questions", file=sys.stderr, flush=True)
        collection.close()
    return Candidates(np.concatenate(features) if features else np.zeros((0, len(FEATURES))), np.asarray(f1s),
                      np.asarray(margins), np.asarray(groups, dtype=int), np.asarray(answerable, dtype=bool))


def fit_ranker(candidates: Candidates, c: float = 1.0, trained_on: str = "") -> LogisticModel:
    """Logistic regression of "right" on the standardised features."""
    from sklearn.linear_model import LogisticRegression

    x = candidates.features
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale == 0] = 1.0
    model = LogisticRegression(C=c, max_iter=2000)
    model.fit((x - mean) / scale, candidates.labels, sample_weight=candidates.weight)
    return LogisticModel(tuple(mean.tolist()), tuple(scale.tolist()), tuple(model.coef_[0].tolist()),
                         float(model.intercept_[0]), trained_on)


def carried_over(path: Path) -> LogisticModel:
    """The prose model of an earlier ranker file (this format's, or the single model of the format before it),
    with weight 0 for the features it did not know: it ranks prose exactly as it did."""
    import json

    data = json.loads(Path(path).read_text())
    return LogisticModel.from_json(data.get("prose", data), data["features"])


def ranking_report(candidates: Candidates, ranker: LogisticModel | None, threshold: float = 0.3) -> dict:
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


def _subset(candidates: Candidates, questions: np.ndarray) -> Candidates:
    """The candidates of some of the questions, renumbered."""
    keep = np.isin(candidates.group, questions)
    renumber = {int(q): i for i, q in enumerate(questions)}
    return Candidates(candidates.features[keep], candidates.f1[keep], candidates.margin[keep],
                      np.array([renumber[int(g)] for g in candidates.group[keep]], dtype=int),
                      candidates.answerable[questions])


def cross_validated_report(parts: list[Candidates], names: list[str], c: float = 1.0, folds: int = 5) -> dict:
    """`ranking_report` of each part's questions by a ranker fitted without them (the other folds of that part and
    every other part whole): how the ranker does on questions it has not seen."""
    out = {}
    for index, (part, name) in enumerate(zip(parts, names, strict=True)):
        order = np.random.default_rng(0).permutation(len(part.answerable))
        held = [_subset(part, np.sort(order[fold::folds])) for fold in range(folds)]
        reports = []
        for fold in range(folds):
            train = [_subset(part, np.sort(np.concatenate([order[f::folds] for f in range(folds) if f != fold])))]
            ranker = fit_ranker(Candidates.concatenate(train + parts[:index] + parts[index + 1:]), c=c)
            reports.append((len(held[fold].answerable), ranking_report(held[fold], ranker)))
        total = sum(n for n, _ in reports)
        out[name] = {key: sum(n * r[key] for n, r in reports) / total for key in ("top1_f1", "best_f1", "e2e_f1")}
    return out


def fit_reader_calibration(ranker: AnswerRanker, path: Path, reader, holdout: float = 0.15, seed: int = 0):
    """Platt scaling of the ranker's probability for one reader's first answers (`ScoreCalibration`), fitted on the
    questions of a SQuAD-format file that reader was not trained on; returns (calibration, pairs)."""
    from spanqa.plugin.engine.assistant import Assistant
    from spanqa.plugin.engine.calibration import fit_platt
    from spanqa.plugin.engine.ranking import ScoreCalibration

    pairs = []
    with tempfile.TemporaryDirectory(prefix="spanqa-calibration-") as tmp:
        collection, questions = open_domain_set(path, Path(tmp) / "collection", holdout, seed)
        assistant = Assistant(collection, reader=reader, rank=False)
        for question, truths in questions:
            hits = assistant.search(question, k=5)
            ranked = ranker.rank(question, assistant.read_candidates(question, hits)[0], hits,
                                 technical=assistant.technical_text(hits))
            if ranked:
                right = bool(truths) and max_over_ground_truths(f1_score, ranked[0].text, truths) >= CORRECT_F1
                pairs.append((ranked[0].score, right))
        collection.close()
    # A few dozen questions pin down a shift, not a slope as well: a two-parameter fit on 45 of them (a = 1.96)
    # doubled the answer-score error on technical questions it had not seen (docs/answers.md).
    a, b = fit_platt(pairs, slope=1.0)
    return ScoreCalibration(a, b, f"{Path(path).name}: {len(pairs)} first answers, shift only"), pairs
