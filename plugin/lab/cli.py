"""The lab's commands: train and evaluate the readers, the answer ranker and the intent router. `spanqa` offers
them beside the product's commands (plugin/doors/cli.py registers this table); each command's options sit next
to its handler, and nothing heavy is imported until a command runs."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from spanqa.commands import CommandTable, env_default
from spanqa.errors import InputError
from spanqa.settings import PACKAGE_ROOT, PRECISIONS, Settings

__all__ = ["LAB"]

LAB = CommandTable()


# --- reader ---------------------------------------------------------------------------------------------------

def _train_reader_options(p: argparse.ArgumentParser) -> None:
    from spanqa.plugin.lab.reader_training import OBJECTIVES
    from spanqa.plugin.lab.reader_training import ReaderTrainConfig as Training

    p.add_argument("--train", required=True, help="SQuAD-format JSON (v1.1 or v2.0 style, or .json.gz)")
    p.add_argument("--dev", help="SQuAD-format JSON for checkpoint selection and calibration")
    p.add_argument("--out", required=True, help="output model directory")
    p.add_argument("--base", help="HF id or path of the encoder to start from (default: bundled MiniLM)")
    p.add_argument("--max-seq-len", type=int, default=Training.max_seq_len, help="window length in tokens")
    p.add_argument("--stride", type=int, default=Training.stride, help="window overlap in tokens")
    p.add_argument("--batch-size", type=int, default=Training.batch_size, help="windows per step")
    p.add_argument("--lr", type=float, default=Training.lr, help="peak learning rate")
    p.add_argument("--epochs", type=float, default=Training.epochs, help="passes over the training data")
    p.add_argument("--max-hours", type=float, help="time budget; the learning-rate decay ends inside it")
    p.add_argument("--negative-ratio", type=float, default=Training.negative_ratio,
                   help="unanswerable questions per question")
    p.add_argument("--objective", choices=OBJECTIVES, default=Training.objective,
                   help="normalise over all passages of a question, or per window")
    p.add_argument("--negatives-per-question", type=int, default=Training.negatives_per_question,
                   help="hard negative passages per question")
    p.add_argument("--dev-limit", type=int, default=Training.dev_limit, help="dev questions used for selection")
    p.add_argument("--eval-minutes", type=float, default=Training.eval_minutes, help="minutes between dev evaluations")
    p.add_argument("--checkpoint-minutes", type=float, default=Training.checkpoint_minutes,
                   help="minutes between checkpoints")
    p.add_argument("--seed", type=int, default=Training.seed, help="random seed")
    p.add_argument("--limit", type=int, help="train on the first N questions only")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint/state.pt")


@LAB.command("train-reader", "Fine-tune an extractive QA reader on SQuAD-format data.", _train_reader_options)
def _train_reader(args) -> int:
    from spanqa.plugin.lab.reader_training import ReaderTrainConfig, train_reader

    cfg = ReaderTrainConfig(
        train=args.train, dev=args.dev, out=args.out, base=args.base, max_seq_len=args.max_seq_len,
        stride=args.stride, batch_size=args.batch_size, lr=args.lr, epochs=args.epochs, max_hours=args.max_hours,
        negative_ratio=args.negative_ratio, objective=args.objective,
        negatives_per_question=args.negatives_per_question, dev_limit=args.dev_limit, eval_minutes=args.eval_minutes,
        checkpoint_minutes=args.checkpoint_minutes, seed=args.seed, limit=args.limit,
    )
    summary = train_reader(cfg, resume=args.resume)
    print(json.dumps({k: v for k, v in summary.items() if k != "config"}, indent=2))
    return 0


def _eval_reader_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("data", help="SQuAD-format JSON")
    p.add_argument("--model", help="model directory or HF id (default: the shipped reader)")
    p.add_argument("--max-seq-len", type=int, default=384, help="window length in tokens")
    p.add_argument("--stride", type=int, default=128, help="window overlap in tokens")
    p.add_argument("--precision", choices=PRECISIONS, help=f"reader precision ({env_default('reader_precision')})")
    p.add_argument("--limit", type=int, help="the first N questions only")
    p.add_argument("--json", action="store_true", help="print the scores as JSON")


@LAB.command("eval-reader", "EM/F1 of a reader on the gold passages of a SQuAD-format file.", _eval_reader_options)
def _eval_reader(args) -> int:
    from spanqa.plugin.engine.reader import Reader
    from spanqa.plugin.engine.squad import load_squad
    from spanqa.plugin.lab.reader_eval import evaluate_reader

    settings = Settings.from_env(reader_precision=args.precision)
    reader = Reader(args.model or settings.reader_path, max_seq_len=args.max_seq_len, stride=args.stride,
                    precision=settings.reader_precision, device=settings.device)
    scores = evaluate_reader(reader, load_squad(args.data, limit=args.limit), progress=not args.json)
    if args.json:
        print(json.dumps(scores.to_dict(), ensure_ascii=False))
    else:
        print(f"{args.data}: EM {scores.exact_match:.2f}  F1 {scores.f1:.2f}  ({scores.count} questions)")
    return 0


# --- answer ranker --------------------------------------------------------------------------------------------

def _train_ranker_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", action="append", help="SQuAD-format JSON for the prose model (repeatable)")
    p.add_argument("--prose-from", metavar="RANKER.json",
                   help="instead of --data: carry the prose model over from an earlier ranker file")
    p.add_argument("--technical-data", action="append",
                   help="SQuAD-format JSON of technical documentation for the technical model (repeatable; "
                        "without it the prose model ranks every text)")
    p.add_argument("--technical-calibration", metavar="FILE",
                   help="SQuAD-format technical questions the technical reader was not trained on: fit its own "
                        "calibration of the ranker's scores on them")
    p.add_argument("--out", default=str(PACKAGE_ROOT / "models" / "ranker.json"), help="ranker JSON to write")
    p.add_argument("--reader", help="reader model directory (default: the shipped general reader)")
    p.add_argument("--limit", type=int, help="questions sampled per file")
    p.add_argument("--until", type=int, help="use only each file's first N questions")
    p.add_argument("--holdout", type=float, default=0.15, help="fraction of contexts left out (unanswerable)")
    p.add_argument("--c", type=float, default=1.0, help="inverse regularisation strength of the prose model")
    p.add_argument("--technical-c", type=float, default=0.1,
                   help="inverse regularisation strength of the technical model (0.1: the best top-1 F1 of 0.1, "
                        "0.3 and 1, cross-validated on the technical training questions)")
    p.add_argument("--cross-validate", action="store_true",
                   help="also report each file's questions ranked by a model fitted without them (5 folds)")


def _fit_ranker_model(files: list[str], c: float, args, reader):
    """One logistic model of the answer ranker from `files`' candidates, and its report."""
    from spanqa.plugin.lab.ranker_training import (
        Candidates,
        collect_candidates,
        cross_validated_report,
        fit_ranker,
        ranking_report,
    )

    parts = [collect_candidates(Path(path), limit=args.limit, until=args.until, holdout=args.holdout, reader=reader)
             for path in files]
    names = [Path(path).name for path in files]
    model = fit_ranker(Candidates.concatenate(parts), c=c, trained_on=", ".join(names))
    report = {"report (in-sample)": {name: {"margin order": ranking_report(part, None),
                                            "ranker": ranking_report(part, model)}
                                     for name, part in zip(names, parts, strict=True)}}
    if args.cross_validate:
        report["report (5-fold cross-validated)"] = cross_validated_report(parts, names, c=c)
    return model, report


@LAB.command("train-ranker", "Learn the answer ranker from SQuAD-format development data.", _train_ranker_options)
def _train_ranker(args) -> int:
    from spanqa.plugin.engine.answer_type import AnswerTypes
    from spanqa.plugin.engine.ranking import AnswerRanker
    from spanqa.plugin.engine.reader import Reader
    from spanqa.plugin.lab.ranker_training import carried_over, fit_reader_calibration

    if bool(args.data) == bool(args.prose_from):
        raise InputError("give the prose model's data (--data) or an earlier ranker to carry it over from "
                         "(--prose-from), one of the two")
    settings = Settings.from_env()
    precision, device = settings.reader_precision, settings.device
    reader = Reader(args.reader, precision=precision, device=device) if args.reader else None
    summary: dict = {"out": args.out}
    if args.data:
        prose, summary["prose"] = _fit_ranker_model(args.data, args.c, args, reader)
    else:
        prose, summary["prose"] = carried_over(Path(args.prose_from)), f"carried over from {args.prose_from}"
    technical = None
    if args.technical_data:
        technical, summary["technical"] = _fit_ranker_model(args.technical_data, args.technical_c, args, reader)
    ranker = AnswerRanker(prose, technical, AnswerTypes.load())
    if args.technical_calibration:
        technical_reader = Reader(settings.technical_reader_path, precision=precision, device=device)
        calibration, pairs = fit_reader_calibration(ranker, Path(args.technical_calibration), technical_reader)
        ranker.reader_calibration["technical"] = calibration
        summary["technical reader calibration"] = {**calibration.to_json(), "right": sum(r for _, r in pairs)}
    ranker.save(Path(args.out))
    print(json.dumps(summary, indent=1))
    return 0


# --- intent router --------------------------------------------------------------------------------------------

def _train_intent_options(p: argparse.ArgumentParser) -> None:
    from spanqa.plugin.lab.router_training import IntentTrainConfig as Intents

    p.add_argument("data", help="labelled messages")
    p.add_argument("--out", required=True, help="output model directory")
    p.add_argument("--head", action="store_true", help="fit a linear head over the embedder's vectors (seconds) "
                                                       "instead of fine-tuning an encoder (minutes)")
    p.add_argument("--val", help="validation file (default: a stratified split of DATA)")
    p.add_argument("--val-fraction", type=float, default=Intents.val_fraction, help="split held out without --val")
    p.add_argument("--base", help="HF id or path of the encoder (default: bundled MiniLM)")
    p.add_argument("--epochs", type=int, default=Intents.epochs, help="passes over the data")
    p.add_argument("--batch-size", type=int, default=Intents.batch_size, help="messages per step")
    p.add_argument("--lr", type=float, default=Intents.lr, help="peak learning rate")
    p.add_argument("--seed", type=int, default=Intents.seed, help="random seed")


@LAB.command("train-intent", "Fine-tune an intent classifier on text,label data (CSV or JSONL), or fit a head over "
                             "the embedder (--head, as the shipped router is).", _train_intent_options)
def _train_intent(args) -> int:
    from spanqa.plugin.lab.router_eval import IntentReport
    from spanqa.plugin.lab.router_training import (
        IntentTrainConfig,
        fit_router_head_with_report,
        train_intent_classifier,
    )

    cfg = IntentTrainConfig(data=args.data, out=args.out, val=args.val, val_fraction=args.val_fraction,
                            base=args.base, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed)
    summary = fit_router_head_with_report(cfg) if args.head else train_intent_classifier(cfg)
    print(IntentReport(**summary["validation"]).to_text())
    how = "a head over the embedder" if args.head else f"{summary['epochs_run']} epochs"
    print(f"\ntemperature {summary['temperature']:.3f}, threshold {summary['threshold']:.3f}, "
          f"{how}, {summary['seconds']:.0f}s → {args.out}")
    return 0


def _eval_intent_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="intent model directory")
    p.add_argument("data", help="labelled messages")
    p.add_argument("--plots", help="directory for reliability.png, confusion.png and report.json")
    p.add_argument("--json", action="store_true", help="print the report as JSON")


@LAB.command("eval-intent", "Evaluation report of an intent model on labelled data.", _eval_intent_options)
def _eval_intent(args) -> int:
    from spanqa.plugin.engine.router import load_router, softmax
    from spanqa.plugin.lab.router_eval import evaluate_intents, reliability_bins, write_plots
    from spanqa.plugin.lab.router_training import load_labelled

    classifier = load_router(args.model, precision=Settings.from_env().router_precision)
    texts, labels = load_labelled(args.data)
    logits = classifier.logits(texts)
    report = evaluate_intents(classifier, texts, labels, uncalibrated_logits=logits)
    print(json.dumps(report.to_dict(), ensure_ascii=False) if args.json else report.to_text())
    if args.plots:
        raw = softmax(logits, 1.0)
        correct = raw.argmax(1) == [classifier.labels.index(lab) if lab in classifier.labels else -1 for lab in labels]
        paths = write_plots(report, args.plots, reliability_bins(raw.max(1), correct))
        if not args.json:
            print("plots: " + ", ".join(str(p) for p in paths))
    return 0


# --- term selector --------------------------------------------------------------------------------------------

def _train_term_selector_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--squad", required=True, help="SQuAD-format training file the conversations are made from")
    p.add_argument("--conversations", type=int, default=40_000, help="conversations to make (at most)")
    p.add_argument("--seed", type=int, default=0, help="random seed (the same seed makes the same model)")
    p.add_argument("--out", default=str(Settings().term_selector_path), help="term selector JSON to write")


@LAB.command("train-term-selector", "Fit the term selector that reads follow-ups (which words of the conversation "
                                    "join a follow-up's search) on conversations made from SQuAD.",
             _train_term_selector_options)
def _train_term_selector(args) -> int:
    from spanqa.plugin.lab.term_selector_training import fit_term_selector

    squad = Path(args.squad)
    if not squad.is_file():
        raise InputError(f"No SQuAD file at {squad}")
    selector, report = fit_term_selector(squad, args.conversations, args.seed)
    Path(args.out).write_text(json.dumps(selector.to_json(), ensure_ascii=False))
    print(json.dumps(report, indent=2))
    print(f"→ {args.out}")
    return 0
