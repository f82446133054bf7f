"""Intent evaluation: accuracy, macro-F1, per-class scores, confusion matrix, out-of-scope detection, expected
calibration error before and after temperature scaling, and the plots (reliability diagram, confusion matrix)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from spanqa.plugin.engine.router import IntentClassifier, softmax

__all__ = ["IntentReport", "evaluate_intents", "expected_calibration_error", "reliability_bins", "write_plots"]


def reliability_bins(confidences: np.ndarray, correct: np.ndarray, n_bins: int = 15) -> list[dict]:
    edges = np.linspace(0, 1, n_bins + 1)
    bins = []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        mask = (confidences > lo) & (confidences <= hi)
        if mask.any():
            bins.append({"low": float(lo), "high": float(hi), "count": int(mask.sum()),
                         "confidence": float(confidences[mask].mean()), "accuracy": float(correct[mask].mean())})
    return bins


def expected_calibration_error(confidences: np.ndarray, correct: np.ndarray, n_bins: int = 15) -> float:
    """ECE (Guo et al. 2017): the count-weighted gap between confidence and accuracy over equal-width bins."""
    total = len(confidences)
    return float(sum(b["count"] / total * abs(b["accuracy"] - b["confidence"])
                     for b in reliability_bins(confidences, correct, n_bins)))


@dataclass
class IntentReport:
    count: int
    accuracy: float
    macro_f1: float
    per_class: dict[str, dict[str, float]]
    labels: list[str]
    confusion: list[list[int]]
    in_scope_accuracy: float
    oos_recall: float | None
    oos_precision: float | None
    ece: float
    ece_uncalibrated: float | None
    reliability: list[dict]

    def to_dict(self) -> dict:
        return asdict(self)

    def to_text(self) -> str:
        lines = [f"examples            {self.count}",
                 f"accuracy            {self.accuracy:.2f} %",
                 f"macro-F1            {self.macro_f1:.2f}",
                 f"in-scope accuracy   {self.in_scope_accuracy:.2f} %"]
        if self.oos_recall is not None:
            lines.append(f"out-of-scope recall {self.oos_recall:.2f} %   precision {self.oos_precision:.2f} %")
        before = f"{self.ece:.4f}"
        if self.ece_uncalibrated is not None:
            before = f"{self.ece_uncalibrated:.4f} → {self.ece:.4f}"
        lines.append(f"ECE (15 bins)       {before}")
        lines.append("")
        lines.append(f"{'label':28s} {'precision':>9s} {'recall':>7s} {'F1':>6s} {'n':>5s}")
        for label, s in self.per_class.items():
            lines.append(f"{label[:28]:28s} {s['precision']:9.3f} {s['recall']:7.3f} {s['f1']:6.3f} "
                         f"{int(s['support']):5d}")
        if len(self.labels) <= 12:
            lines.append("")
            lines.append("confusion (rows: true, columns: predicted)")
            lines.append(" " * 20 + " ".join(f"{lab[:8]:>8s}" for lab in self.labels))
            for lab, row in zip(self.labels, self.confusion, strict=True):
                lines.append(f"{lab[:20]:20s}" + " ".join(f"{v:8d}" for v in row))
        return "\n".join(lines)


def evaluate_intents(classifier: IntentClassifier, texts: list[str], labels: list[str],
                     uncalibrated_logits: np.ndarray | None = None) -> IntentReport:
    """Score a classifier on labelled messages. A message whose gold label is the out-of-scope class counts
    as right when the prediction is flagged out of scope (by class or by threshold)."""
    from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support

    classifier.warm_up()
    config = classifier.config
    logits = classifier.logits(texts) if uncalibrated_logits is None else uncalibrated_logits
    intents = [classifier.intent_from_probabilities(row) for row in softmax(logits, config.temperature)]
    oos = config.oos_label
    predicted = [oos if (oos and i.out_of_scope) else i.label for i in intents]
    all_labels = sorted(set(labels) | set(predicted))
    precision, recall, f1, support = precision_recall_fscore_support(labels, predicted, labels=all_labels,
                                                                     zero_division=0)
    per_class = {lab: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
                 for lab, p, r, f, s in zip(all_labels, precision, recall, f1, support, strict=True)}
    gold = np.array(labels)
    pred = np.array(predicted)
    flagged = np.array([i.out_of_scope for i in intents])
    is_oos = gold == oos if oos else np.zeros(len(gold), dtype=bool)
    in_scope = ~is_oos
    in_scope_accuracy = float(np.mean((pred == gold)[in_scope] & ~flagged[in_scope])) * 100 if in_scope.any() else 0.0
    oos_recall = float(np.mean(flagged[is_oos])) * 100 if is_oos.any() else None
    oos_precision = float(np.mean(is_oos[flagged])) * 100 if (is_oos.any() and flagged.any()) else None
    confidences = np.array([i.confidence for i in intents])
    correct = np.array([i.label == g for i, g in zip(intents, labels, strict=True)])
    raw_conf = softmax(logits, 1.0).max(axis=1)
    return IntentReport(
        count=len(labels),
        accuracy=float(np.mean(pred == gold)) * 100,
        macro_f1=float(f1_score(labels, predicted, labels=all_labels, average="macro", zero_division=0)),
        per_class=per_class,
        labels=all_labels,
        confusion=confusion_matrix(labels, predicted, labels=all_labels).tolist(),
        in_scope_accuracy=in_scope_accuracy,
        oos_recall=oos_recall,
        oos_precision=oos_precision,
        ece=expected_calibration_error(confidences, correct),
        ece_uncalibrated=expected_calibration_error(raw_conf, correct) if config.temperature != 1.0 else None,
        reliability=reliability_bins(confidences, correct),
    )


def write_plots(report: IntentReport, out_dir: str | Path, raw_reliability: list[dict] | None = None) -> list[Path]:
    """Reliability diagram and confusion matrix as PNG; returns the paths written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect calibration")
    bins = report.reliability
    ax.bar([b["confidence"] for b in bins], [b["accuracy"] for b in bins], width=0.05, alpha=0.7,
           label=f"calibrated (ECE {report.ece:.3f})")
    if raw_reliability:
        ax.plot([b["confidence"] for b in raw_reliability], [b["accuracy"] for b in raw_reliability], "o-",
                label="before temperature scaling")
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy")
    ax.set_title("Intent router reliability")
    ax.legend(loc="upper left")
    reliability_path = out / "reliability.png"
    fig.savefig(reliability_path, dpi=120, bbox_inches="tight")
    plt.close(fig)

    n = len(report.labels)
    fig, ax = plt.subplots(figsize=(max(5, 0.35 * n), max(4, 0.35 * n)))
    ax.imshow(np.array(report.confusion), cmap="Blues")
    if n <= 20:
        ax.set_xticks(range(n), report.labels, rotation=60, ha="right", fontsize=8)
        ax.set_yticks(range(n), report.labels, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("Confusion matrix")
    confusion_path = out / "confusion.png"
    fig.savefig(confusion_path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    (out / "report.json").write_text(json.dumps(report.to_dict(), indent=2))
    return [reliability_path, confusion_path]
