"""Intent benchmark on CLINC150 (Larson et al. 2019): 150 intents + out-of-scope.

Trains spanqa's classifier on `train` (+ `oos_train` as the explicit out-of-scope class), early-stops on and
chooses the out-of-scope threshold on `val` (+ `oos_val`), and reports on `val`, as the project's issue asks:
in-scope accuracy, out-of-scope recall, macro-F1, ECE before/after temperature scaling, training time.

    python -m bench.intent [--data ../shared/data/clinc150/clinc150_train_val.json] [--out DIR] [--epochs N]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from spanqa.plugin.engine.router import IntentClassifier
from spanqa.plugin.lab.router_eval import evaluate_intents, write_plots
from spanqa.plugin.lab.router_training import IntentTrainConfig, train_intent_classifier

from bench.common import machine, markdown_table, write_json

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "clinc150" / "clinc150_train_val.json"


def _write_jsonl(path: Path, rows: list[list[str]]) -> Path:
    path.write_text("\n".join(json.dumps({"text": text, "label": label}) for text, label in rows))
    return path


def run(data: Path, out: Path | None, epochs: int, batch_size: int, lr: float, intents: int | None = None,
        quiet: bool = False) -> dict:
    """Train and evaluate; `intents` keeps only the first N in-scope intents (a small slice for quick runs)."""
    clinc = json.loads(data.read_text())
    if intents is not None:
        kept = sorted({label for _, label in clinc["train"]})[:intents]
        clinc = {key: [row for row in rows if key.startswith("oos") or row[1] in kept] for key, rows in clinc.items()}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        train = _write_jsonl(tmp / "train.jsonl", clinc["train"] + clinc["oos_train"])
        val_rows = clinc["val"] + clinc["oos_val"]
        val = _write_jsonl(tmp / "val.jsonl", val_rows)
        started = time.perf_counter()
        summary = train_intent_classifier(IntentTrainConfig(data=str(train), val=str(val), out=str(tmp / "model"),
                                                            epochs=epochs, patience=1, batch_size=batch_size, lr=lr),
                                          progress=not quiet)
        train_s = time.perf_counter() - started
        classifier = IntentClassifier(tmp / "model")
        texts, labels = [t for t, _ in val_rows], [lab for _, lab in val_rows]
        report = evaluate_intents(classifier, texts, labels, uncalibrated_logits=classifier.logits(texts))
        if out:
            write_plots(report, out / "clinc150")
    result = {"data": str(data), "train_examples": summary["train_examples"], "val_examples": len(val_rows),
              "epochs_run": summary["epochs_run"], "train_seconds": train_s, "temperature": summary["temperature"],
              "threshold": summary["threshold"], "in_scope_accuracy": report.in_scope_accuracy,
              "oos_recall": report.oos_recall, "oos_precision": report.oos_precision, "macro_f1": report.macro_f1,
              "accuracy": report.accuracy, "ece_before": report.ece_uncalibrated, "ece_after": report.ece,
              "machine": machine(), "published_bert_base": {"in_scope_accuracy": 96.9, "oos_recall": 40.3},
              "in_scope_intents": len({label for _, label in clinc["val"]})}
    if quiet:
        return result
    print(markdown_table(
        ["model", "in-scope acc %", "OOS recall %", "OOS precision %", "macro-F1", "ECE before", "ECE after",
         "train time"],
        [["spanqa MiniLM-L6 (22.7 M)", round(report.in_scope_accuracy, 2), round(report.oos_recall, 2),
          round(report.oos_precision or 0.0, 2), round(report.macro_f1, 4),
          round(report.ece_uncalibrated or report.ece, 4), round(report.ece, 4), f"{train_s / 60:.1f} min"],
         ["BERT-base, published (Larson et al. 2019)", 96.9, 40.3, "-", "-", "-", "-", "-"]]))
    if out:
        write_json(out / "clinc150.json", result)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=Path("bench/out"))
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-4)
    args = parser.parse_args()
    run(args.data, args.out, args.epochs, args.batch_size, args.lr)


if __name__ == "__main__":
    main()
