"""Fitting the intent router's head: what `spanqa setup` and `spanqa calibrate --routing` run on a user's machine
to refit the shipped router with their routing corrections (seconds on a CPU), and what the lab's
`spanqa train-intent --head` runs on any labelled data.

Data: CSV with `text,label` columns or JSONL with `{"text", "label"}` objects. A label named `oos` or
`out_of_scope` is treated as the explicit out-of-scope class.

Threshold rule (documented because it decides what reaches the documents):
- validation data with out-of-scope examples: the threshold that maximises out-of-scope recall while in-scope
  accuracy stays within `accuracy_tolerance` points of its best value;
- otherwise: the 5th percentile of the calibrated confidence on validation messages, so about 5 % of in-scope
  messages fall below it (those are routed to the safe fallback, not rejected).

Fine-tuning a whole encoder instead is the lab's (plugin/lab/router_training.py).
"""

from __future__ import annotations

import csv
import json
import math
import random
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from spanqa.plugin.engine.router import RouterConfig, softmax

from spanqa.errors import DataFileError

__all__ = ["HEAD_NGRAM_WEIGHTS", "HEAD_REGULARISATION", "IntentTrainConfig", "OOS_LABELS", "calibrate_router",
           "choose_threshold", "fit_head", "fit_router_head", "fit_temperature", "labels_of", "load_labelled",
           "refit_default_router", "router_train_config", "stratified_split", "train_and_validation"]

OOS_LABELS = ("oos", "out_of_scope")


@dataclass
class IntentTrainConfig:
    data: str
    out: str
    val: str | None = None
    base: str | None = None
    val_fraction: float = 0.15
    epochs: int = 15
    patience: int = 2
    batch_size: int = 32
    lr: float = 1e-4
    weight_decay: float = 0.01
    max_length: int = 64
    seed: int = 13
    accuracy_tolerance: float = 1.0
    freeze_embeddings: bool = True


def load_labelled(path: str | Path) -> tuple[list[str], list[str]]:
    """Read (texts, labels) from CSV or JSONL; raises DataFileError with what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"Data file not found: {path}")
    rows: list[dict] = []
    try:
        if path.suffix.lower() in (".jsonl", ".json"):
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
                if line.strip():
                    row = json.loads(line)
                    if not isinstance(row, dict):
                        raise DataFileError(f"{path}:{number} is not a JSON object")
                    rows.append(row)
        else:
            with path.open(newline="", encoding="utf-8") as f:
                rows = list(csv.DictReader(f))
    except (json.JSONDecodeError, UnicodeDecodeError, csv.Error) as exc:
        raise DataFileError(f"{path} could not be parsed: {exc}") from exc
    if not rows:
        raise DataFileError(f"{path} holds no examples")
    missing = {"text", "label"} - set(rows[0])
    if missing:
        raise DataFileError(f"{path} lacks the column(s) {sorted(missing)}; expected 'text' and 'label'")
    texts, labels = [], []
    for row in rows:
        text, label = str(row.get("text") or "").strip(), str(row.get("label") or "").strip()
        if text and label:
            texts.append(text)
            labels.append(label)
    if len(set(labels)) < 2:
        raise DataFileError(f"{path} has {len(set(labels))} distinct label(s); a classifier needs at least 2")
    return texts, labels


def stratified_split(labels: list[str], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Train/validation indices with every label in both parts where it has at least 2 examples."""
    rng = random.Random(seed)
    by_label: dict[str, list[int]] = {}
    for i, label in enumerate(labels):
        by_label.setdefault(label, []).append(i)
    train, val = [], []
    for indices in by_label.values():
        rng.shuffle(indices)
        n_val = max(1, round(fraction * len(indices))) if len(indices) >= 2 else 0
        val.extend(indices[:n_val])
        train.extend(indices[n_val:])
    return sorted(train), sorted(val)


def nll(logits: np.ndarray, targets: np.ndarray, temperature: float) -> float:
    probs = softmax(logits, temperature)
    return float(-np.mean(np.log(probs[np.arange(len(targets)), targets] + 1e-12)))


def fit_temperature(logits: np.ndarray, targets: np.ndarray) -> float:
    """The temperature that minimises validation negative log-likelihood (Guo et al. 2017)."""
    from scipy.optimize import minimize_scalar

    result = minimize_scalar(lambda log_t: nll(logits, targets, math.exp(log_t)), bounds=(-3, 3), method="bounded")
    return float(math.exp(result.x))


def choose_threshold(confidences: np.ndarray, correct: np.ndarray, is_oos: np.ndarray | None,
                     tolerance: float) -> float:
    """See the module docstring for the rule."""
    if is_oos is None or not is_oos.any():
        return float(np.quantile(confidences, 0.05))
    in_scope = ~is_oos
    grid = np.unique(np.concatenate([[0.0], confidences]))
    stats = []
    for t in grid:
        accepted = confidences >= t
        in_acc = float(np.mean(correct[in_scope] & accepted[in_scope])) * 100
        oos_rec = float(np.mean(~accepted[is_oos] | correct[is_oos])) * 100
        stats.append((t, in_acc, oos_rec))
    best_acc = max(s[1] for s in stats)
    eligible = [s for s in stats if s[1] >= best_acc - tolerance]
    return float(max(eligible, key=lambda s: (s[2], -s[0]))[0])


def train_and_validation(cfg: IntentTrainConfig) -> tuple[tuple[list[str], list[str]], tuple[list[str], list[str]]]:
    """(train texts, labels), (validation texts, labels): cfg.val when given, else a stratified split of cfg.data."""
    texts, labels = load_labelled(cfg.data)
    if cfg.val:
        return (texts, labels), load_labelled(cfg.val)
    train_idx, val_idx = stratified_split(labels, cfg.val_fraction, cfg.seed)
    return (([texts[i] for i in train_idx], [labels[i] for i in train_idx]),
            ([texts[i] for i in val_idx], [labels[i] for i in val_idx]))


def labels_of(train_labels: list[str], val_labels: list[str]) -> tuple[list[str], str | None]:
    """The sorted label list and the out-of-scope label among them (None if the data has none)."""
    label_list = sorted(set(train_labels))
    unknown = set(val_labels) - set(label_list)
    if unknown:
        raise DataFileError(f"validation labels {sorted(unknown)} never occur in the training data")
    return label_list, next((lab for lab in OOS_LABELS if lab in label_list), None)


def calibrate_router(logits: np.ndarray, val_labels: list[str], label_list: list[str], oos_label: str | None,
                     tolerance: float) -> tuple[float, float]:
    """The temperature and the out-of-scope threshold of a router, from its validation logits (rules above)."""
    index = {label: i for i, label in enumerate(label_list)}
    targets = np.array([index[label] for label in val_labels])
    temperature = fit_temperature(logits, targets)
    probs = softmax(logits, temperature)
    predicted = probs.argmax(axis=1)
    is_oos = np.array([label == oos_label for label in val_labels]) if oos_label else None
    correct = predicted == targets
    if oos_label:
        # an out-of-scope message is handled correctly when the model says so (label or low confidence)
        correct = correct | (is_oos & (predicted == index[oos_label]))
    return temperature, choose_threshold(probs.max(axis=1), correct, is_oos, tolerance)


# The head's choices, each pair scored by 5-fold cross-validated log-loss on the training part only (the
# validation part stays for the temperature and the threshold): the inverse L2 strength of the logistic
# regression, and the weight of the character n-grams beside the sentence vector.
HEAD_REGULARISATION = (8.0, 32.0, 128.0)
HEAD_NGRAM_WEIGHTS = (0.5, 1.0, 1.5)


def fit_head(vectors: np.ndarray, texts: list[str], labels: list[str], embedder_name: str,
              validation: tuple[np.ndarray, list[str], list[str]] | None = None):
    """The head with the best (n-gram weight, C): by 5-fold cross-validated log-loss on the training part, or, given
    `validation` (vectors, texts, labels), by log-loss there (5x fewer fits, for large data such as CLINC150)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss
    from sklearn.model_selection import cross_val_score
    from spanqa.plugin.engine.router import RouterHead, char_vectorizer

    vectorizer = char_vectorizer().fit(texts)
    scores, models = {}, {}
    for weight in HEAD_NGRAM_WEIGHTS:
        features = RouterHead.features(vectors, texts, vectorizer, weight)
        for c in HEAD_REGULARISATION:
            if validation is None:
                scores[weight, c] = cross_val_score(LogisticRegression(C=c, max_iter=5000), features, labels, cv=5,
                                                    scoring="neg_log_loss").mean()
                continue
            model = models[weight, c] = LogisticRegression(C=c, max_iter=5000).fit(features, labels)
            val_vectors, val_texts, val_labels = validation
            probs = model.predict_proba(RouterHead.features(val_vectors, val_texts, vectorizer, weight))
            scores[weight, c] = -log_loss(val_labels, probs, labels=model.classes_)
    weight, c = max(scores, key=scores.get)
    model = models.get((weight, c)) or LogisticRegression(C=c, max_iter=5000).fit(
        RouterHead.features(vectors, texts, vectorizer, weight), labels)
    ngrams = sorted(vectorizer.vocabulary_, key=vectorizer.vocabulary_.get)
    head = RouterHead(embedder_name, model.coef_.astype(np.float32), model.intercept_.astype(np.float32), ngrams,
                      vectorizer.idf_, weight)
    return head, list(model.classes_), {"C": c, "ngram_weight": weight, "chosen_by": "validation" if validation
                                        else "5-fold cross-validation"}


def fit_router_head(cfg: IntentTrainConfig, embedder=None, progress: bool = True,
                    choose_on_validation: bool = False, report=None) -> dict:
    """A router that is a linear head over the embedder's sentence vectors and the message's character n-grams:
    logistic regression on the training part (its regularisation and the n-grams' weight chosen by cross-validation
    among HEAD_REGULARISATION x HEAD_NGRAM_WEIGHTS), then the temperature and the out-of-scope threshold on the
    validation part (the rules above). Saves router.json and head.json in cfg.out; seconds on a CPU.
    `choose_on_validation`: choose the weight and C on the validation part instead (large data); `report(router,
    texts, labels, logits)`: a validation report to keep in the summary."""
    from spanqa.plugin.engine.router import EmbeddingRouter
    from spanqa.retriever.embedding import Embedder

    started = time.time()
    embedder = embedder or Embedder()
    (train_texts, train_labels), (val_texts, val_labels) = train_and_validation(cfg)
    label_list, oos_label = labels_of(train_labels, val_labels)
    val_vectors = embedder.encode(val_texts)
    head, classes, chosen = fit_head(embedder.encode(train_texts, progress=progress), train_texts, train_labels,
                                      embedder.name, (val_vectors, val_texts, val_labels) if choose_on_validation
                                      else None)
    assert classes == label_list
    logits = head.logits(val_vectors, val_texts)
    temperature, threshold = calibrate_router(logits, val_labels, label_list, oos_label, cfg.accuracy_tolerance)
    config = RouterConfig(labels=label_list, temperature=temperature, threshold=threshold, oos_label=oos_label,
                          max_length=cfg.max_length)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    config.save(out)
    head.save(out)
    import hashlib

    summary = {"kind": "head", "data_sha256": hashlib.sha256(Path(cfg.data).read_bytes()).hexdigest(),
               "train_examples": len(train_texts), "val_examples": len(val_texts),
               "labels": len(label_list), **chosen, "temperature": temperature, "threshold": threshold,
               "seconds": time.time() - started, "config": asdict(cfg)}
    if report is not None:  # the lab's evaluation report (plugin/lab/router_eval.py), when it asks for one
        summary["validation"] = report(EmbeddingRouter(out, embedder=embedder), val_texts, val_labels, logits)
    (out / "training_summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def router_train_config(out: Path, data: Path | None = None) -> IntentTrainConfig:
    """How the default router is fitted (the head uses the split, seed and threshold rule; a fine-tuned router on
    the same data, as bench.router_head compares, the rest). A change here raises defaults.ROUTER_RECIPE."""
    from spanqa.plugin.engine.defaults import ROUTING_DATA

    return IntentTrainConfig(data=str(data or ROUTING_DATA), out=str(out), val_fraction=0.2, epochs=12, patience=3,
                             batch_size=16, lr=1e-4)


def refit_default_router(home: Path, progress: bool = False) -> Path | None:
    """Refit the default router's head with the user's routing corrections kept under `home` (the `home` setting),
    unless it already is (or there are none): into a staging folder, swapped in whole. Returns the router's
    directory, or None without corrections."""
    import shutil

    from spanqa.plugin.engine.defaults import (
        refitted_router_path,
        router_fingerprint,
        routing_data,
        routing_feedback_path,
    )

    if not routing_feedback_path(home).is_file():
        return None
    directory = refitted_router_path(home)
    stamp = directory / "fingerprint.txt"
    fingerprint = router_fingerprint(home)
    if stamp.is_file() and stamp.read_text().strip() == fingerprint:
        return directory
    data = routing_data(home)
    print(f"spanqa: refitting the intent router with your routing corrections ({len(data.splitlines())} messages; "
          f"seconds) into {directory}", file=sys.stderr, flush=True)
    staging = directory.with_name(directory.name + ".fitting")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    (staging / "routing-data.jsonl").write_bytes(data)
    fit_router_head(router_train_config(staging, staging / "routing-data.jsonl"), progress=progress)
    (staging / "fingerprint.txt").write_text(fingerprint)
    shutil.rmtree(directory, ignore_errors=True)
    staging.rename(directory)
    return directory
