"""Fine-tune the intent classifier: data → split → train with early stopping → temperature → threshold → save.

The data, the split, the temperature and the threshold rule are the router head's (plugin/engine/router_fitting.py,
which the product uses to refit the shipped head); this is the lab's other way, a whole encoder fine-tuned.
`fit_router_head_with_report` fits a head and keeps the lab's evaluation report beside it.
"""

from __future__ import annotations

import json
import math
import random
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
from spanqa.plugin.engine.router import IntentClassifier, RouterConfig
from spanqa.plugin.engine.router_fitting import (
    HEAD_NGRAM_WEIGHTS,
    HEAD_REGULARISATION,
    OOS_LABELS,
    IntentTrainConfig,
    calibrate_router,
    choose_threshold,
    fit_router_head,
    fit_temperature,
    labels_of,
    load_labelled,
    nll,
    router_train_config,
    stratified_split,
    train_and_validation,
)
from spanqa.plugin.lab.training_utils import bf16_supported, seed_everything

__all__ = ["IntentTrainConfig", "load_labelled", "stratified_split", "fit_temperature", "choose_threshold",
           "calibrate_router", "train_intent_classifier", "fit_router_head", "fit_router_head_with_report",
           "router_train_config", "train_and_validation", "HEAD_REGULARISATION", "HEAD_NGRAM_WEIGHTS", "OOS_LABELS"]


def fit_router_head_with_report(cfg: IntentTrainConfig, **options) -> dict:
    """`fit_router_head` with the lab's validation report (accuracy, out-of-scope recall, ECE) in its summary."""
    from spanqa.plugin.lab.router_eval import evaluate_intents

    def report(router, texts, labels, logits) -> dict:
        return evaluate_intents(router, texts, labels, uncalibrated_logits=logits).to_dict()

    return fit_router_head(cfg, report=report, **options)


def _batches(n: int, batch_size: int, rng: random.Random, shuffle: bool) -> list[list[int]]:
    order = list(range(n))
    if shuffle:
        rng.shuffle(order)
    return [order[i : i + batch_size] for i in range(0, n, batch_size)]


def train_intent_classifier(cfg: IntentTrainConfig, progress: bool = True) -> dict:
    """Train, calibrate, choose the threshold, save to `cfg.out`; returns a summary with validation metrics."""
    import torch
    from spanqa.plugin.lab.router_eval import evaluate_intents
    from tqdm import tqdm
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from spanqa.settings import shipped_embedder_path

    started = time.time()
    seed_everything(cfg.seed)
    (train_texts, train_labels), (val_texts, val_labels) = train_and_validation(cfg)
    label_list, oos_label = labels_of(train_labels, val_labels)
    index = {lab: i for i, lab in enumerate(label_list)}

    base = cfg.base or shipped_embedder_path()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    use_bf16 = bf16_supported(device)
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = AutoModelForSequenceClassification.from_pretrained(
        base, num_labels=len(label_list), id2label=dict(enumerate(label_list)), label2id=index).to(device)
    if cfg.freeze_embeddings:
        # Half of MiniLM's 22.7 M parameters are the word embeddings. Freezing them halves the optimizer's work
        # (which dominates a step on short messages) and keeps a few hundred examples from overfitting them.
        model.get_input_embeddings().weight.requires_grad_(False)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=cfg.lr, weight_decay=cfg.weight_decay, foreach=True)

    def encode(batch_texts):
        enc = tokenizer(batch_texts, truncation=True, padding=True, max_length=cfg.max_length, return_tensors="pt")
        return {k: v.to(device) for k, v in enc.items()}

    def val_logits() -> np.ndarray:
        model.eval()
        out = []
        with torch.inference_mode():
            for b in range(0, len(val_texts), 128):
                out.append(model(**encode(val_texts[b : b + 128])).logits.float().cpu().numpy())
        model.train()
        return np.concatenate(out)

    val_targets = np.array([index[lab] for lab in val_labels])
    rng = random.Random(cfg.seed)
    best_loss, best_state, bad_epochs, history = math.inf, None, 0, []
    total_steps = cfg.epochs * math.ceil(len(train_texts) / cfg.batch_size)
    step = 0
    model.train()
    for epoch in range(cfg.epochs):
        batches = _batches(len(train_texts), cfg.batch_size, rng, shuffle=True)
        bar = tqdm(batches, desc=f"epoch {epoch + 1}/{cfg.epochs}", disable=not progress, unit="batch")
        for batch in bar:
            for group in optimizer.param_groups:  # linear decay over the whole run
                group["lr"] = cfg.lr * (1 - step / total_steps)
            enc = encode([train_texts[i] for i in batch])
            targets = torch.tensor([index[train_labels[i]] for i in batch], device=device)
            with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=use_bf16):
                logits = model(**enc).logits
            loss = torch.nn.functional.cross_entropy(logits.float(), targets)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            bar.set_postfix(loss=f"{loss.item():.3f}")
        loss_val = nll(val_logits(), val_targets, 1.0)
        history.append({"epoch": epoch + 1, "val_loss": loss_val})
        if progress:
            print(f"epoch {epoch + 1}: validation loss {loss_val:.4f}", file=sys.stderr, flush=True)
        if loss_val < best_loss - 1e-4:
            best_loss, bad_epochs = loss_val, 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            bad_epochs += 1
            if bad_epochs >= cfg.patience:  # early stopping on validation loss
                break
    model.load_state_dict(best_state)
    model.eval()

    logits = val_logits()
    temperature, threshold = calibrate_router(logits, val_labels, label_list, oos_label, cfg.accuracy_tolerance)
    config = RouterConfig(labels=label_list, temperature=temperature, threshold=threshold, oos_label=oos_label,
                          max_length=cfg.max_length)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    config.save(out)
    classifier = IntentClassifier.from_loaded(model, tokenizer, config)
    report = evaluate_intents(classifier, val_texts, val_labels, uncalibrated_logits=logits)
    summary = {"train_examples": len(train_texts), "val_examples": len(val_texts), "labels": len(label_list),
               "temperature": temperature, "threshold": threshold, "epochs_run": len(history),
               "history": history, "seconds": time.time() - started, "device": device, "bf16": use_bf16,
               "validation": report.to_dict(), "config": asdict(cfg)}
    (out / "training_summary.json").write_text(json.dumps(summary, indent=2))
    return summary


