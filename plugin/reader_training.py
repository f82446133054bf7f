"""Fine-tune an extractive QA reader on SQuAD-format data, on a CPU or a GPU, within a time budget.

Straight path: config → examples (+ unanswerable negatives) → windowed features → length-grouped batches →
loop (bf16 autocast where the hardware has it, linear warm-up and decay) → periodic dev evaluation, the best
model exported → calibration on dev → model card data. Checkpoints every `checkpoint_minutes` and on SIGTERM;
`resume=True` continues from the last one with the same data order.
"""

from __future__ import annotations

import json
import math
import os
import signal
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from plugin.reader import Reader, tokenize_pairs, truncate_question
from plugin.reader_eval import evaluate_reader, fit_calibration, negative_examples
from plugin.squad import QAExample, load_squad
from plugin.training_utils import bf16_supported, seed_everything

__all__ = ["ReaderTrainConfig", "build_features", "length_grouped_batches", "train_reader"]


@dataclass
class ReaderTrainConfig:
    train: str
    out: str
    dev: str | None = None
    base: str | None = None  # default: the bundled MiniLM encoder
    max_seq_len: int = 256
    stride: int = 64
    max_question_tokens: int = 64
    batch_size: int = 32
    lr: float = 1e-4
    warmup_ratio: float = 0.06
    weight_decay: float = 0.01
    epochs: float = 1.0
    max_hours: float | None = None
    # Unanswerable negatives per answerable question: enough for the no-answer logit to mean something, few
    # enough that most of a CPU budget still goes to span extraction (SQuAD 2.0 uses about 1 in 3).
    negative_ratio: float = 0.25
    dev_limit: int = 1000
    eval_minutes: float = 20.0
    checkpoint_minutes: float = 15.0
    attention_dropout: float = 0.0
    seed: int = 42
    limit: int | None = None
    bf16: bool | None = None  # None: on where the hardware runs bf16 matmuls natively (AMX, CUDA)
    save_fp16: bool = True
    log_every: int = 20


@dataclass
class Feature:
    input_ids: list[int]
    token_type_ids: list[int]
    start: int
    end: int


@dataclass
class TrainState:
    step: int = 0
    horizon: int = 0  # the step at which the learning rate reaches zero
    examples_seen: int = 0
    seconds: float = 0.0
    best_f1: float = -1.0
    curve: list[dict] = field(default_factory=list)
    losses: list[tuple[int, float]] = field(default_factory=list)  # (step, mean loss since the last entry)


def build_features(tokenizer, examples: list[QAExample], max_seq_len: int, stride: int, max_question_tokens: int,
                   chunk: int = 2000) -> list[Feature]:
    """Windows labelled with the answer's first and last token, or CLS (0) when the answer is not inside."""
    features: list[Feature] = []
    for b in range(0, len(examples), chunk):
        batch = examples[b : b + chunk]
        questions = [truncate_question(tokenizer, e.question, max_question_tokens) for e in batch]
        enc = tokenize_pairs(tokenizer, questions, [e.context for e in batch], max_seq_len, stride)
        for w, example_index in enumerate(enc["overflow_to_sample_mapping"]):
            example = batch[example_index]
            seq_ids = enc.sequence_ids(w)
            offsets = enc["offset_mapping"][w]
            start_tok = end_tok = 0
            if example.answers:
                a_start, a_end = example.answers[0].start, example.answers[0].end
                ctx = [i for i, s in enumerate(seq_ids) if s == 1]
                if ctx and offsets[ctx[0]][0] <= a_start and offsets[ctx[-1]][1] >= a_end:
                    start_tok = next(i for i in ctx if offsets[i][1] > a_start)
                    end_tok = next(i for i in reversed(ctx) if offsets[i][0] < a_end)
            type_ids = enc["token_type_ids"][w] if "token_type_ids" in enc else [0] * len(enc["input_ids"][w])
            features.append(Feature(list(enc["input_ids"][w]), list(type_ids), start_tok, end_tok))
    return features


def length_grouped_batches(lengths: list[int], batch_size: int, seed: int, group: int = 64) -> list[list[int]]:
    """Shuffle, sort within mega-batches of `group` batches by length, then shuffle the batches: each batch
    holds windows of similar length (little padding) while the order stays random. Deterministic per seed."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(lengths))
    batches: list[list[int]] = []
    mega = batch_size * group
    for m in range(0, len(order), mega):
        block = sorted(order[m : m + mega].tolist(), key=lambda i: lengths[i])
        batches.extend(block[i : i + batch_size] for i in range(0, len(block), batch_size))
    rng.shuffle(batches)
    return batches


def _collate(features: list[Feature], pad_id: int, torch, device):
    # Pad to a multiple of 16: few distinct shapes, so oneDNN/cuBLAS reuse their kernels across batches.
    width = -(-max(len(f.input_ids) for f in features) // 16) * 16
    ids = torch.full((len(features), width), pad_id, dtype=torch.long)
    types = torch.zeros((len(features), width), dtype=torch.long)
    mask = torch.zeros((len(features), width), dtype=torch.long)
    for r, f in enumerate(features):
        n = len(f.input_ids)
        ids[r, :n] = torch.tensor(f.input_ids)
        types[r, :n] = torch.tensor(f.token_type_ids)
        mask[r, :n] = 1
    starts = torch.tensor([f.start for f in features])
    ends = torch.tensor([f.end for f in features])
    batch = {"input_ids": ids, "token_type_ids": types, "attention_mask": mask,
             "start_positions": starts, "end_positions": ends}
    return {k: v.to(device) for k, v in batch.items()}


def _lr_at(step: int, cfg: ReaderTrainConfig, horizon: int) -> float:
    warmup = max(1, int(cfg.warmup_ratio * horizon))
    if step < warmup:
        return cfg.lr * (step + 1) / warmup
    return cfg.lr * max(0.0, (horizon - step) / max(1, horizon - warmup))


def _save_atomic(obj, path: Path, torch) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _export(model, tokenizer, out: Path, fp16: bool) -> None:
    """Write a loadable model directory (weights, tokenizer) atomically enough for a reader to pick up."""
    import copy

    out.mkdir(parents=True, exist_ok=True)
    to_save = copy.deepcopy(model).half() if fp16 else model
    to_save.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)


def train_reader(cfg: ReaderTrainConfig, resume: bool = False, progress: bool = True) -> dict:
    """Train, evaluate on dev along the way, export the best model to `cfg.out`; returns the final summary."""
    import torch
    from tqdm import tqdm
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    from plugin.config import default_embedder_path

    out = Path(cfg.out)
    ckpt_dir = out / "checkpoint"
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path = ckpt_dir / "state.pt"
    seed_everything(cfg.seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    use_bf16 = bf16_supported(device) if cfg.bf16 is None else cfg.bf16

    base = cfg.base or default_embedder_path()
    tokenizer = AutoTokenizer.from_pretrained(base)
    # Measured on this 2-core CPU under bf16 autocast: dropout on the attention probabilities alone costs 40 %
    # of a step (13.5 vs 23.3 windows/s), so it is off; hidden-state dropout stays. Eager attention beat SDPA
    # (23.3 vs 20.9) there; on CUDA SDPA is the fast path.
    attention = "sdpa" if device == "cuda" else "eager"
    model = AutoModelForQuestionAnswering.from_pretrained(
        base, attn_implementation=attention, attention_probs_dropout_prob=cfg.attention_dropout).to(device)

    examples = load_squad(cfg.train, limit=cfg.limit)
    negatives = negative_examples(examples, int(cfg.negative_ratio * len(examples)), seed=cfg.seed)
    t0 = time.time()
    features = build_features(tokenizer, examples + negatives, cfg.max_seq_len, cfg.stride,
                              cfg.max_question_tokens)
    print(f"{len(examples)} questions + {len(negatives)} unanswerable negatives → {len(features)} windows "
          f"({time.time() - t0:.0f}s); device={device} bf16={use_bf16}", flush=True)
    dev_examples = load_squad(cfg.dev, limit=cfg.dev_limit) if cfg.dev else []

    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.ndim < 2 or "LayerNorm" in name else decay).append(p)
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr, foreach=True)
    lengths = [len(f.input_ids) for f in features]
    steps_per_epoch = math.ceil(len(features) / cfg.batch_size)
    total_steps = max(1, int(cfg.epochs * steps_per_epoch))
    state = TrainState(horizon=total_steps)
    if resume and ckpt_path.is_file():
        saved = torch.load(ckpt_path, map_location=device, weights_only=False)
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        state = TrainState(**saved["state"])
        print(f"resumed at step {state.step} ({state.examples_seen} windows seen)", flush=True)

    def checkpoint() -> None:
        _save_atomic({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                      "state": asdict(state), "config": asdict(cfg)}, ckpt_path, torch)

    stop = {"requested": False}

    def on_sigterm(signum, frame):  # finish the current step, checkpoint, exit cleanly
        stop["requested"] = True

    signal.signal(signal.SIGTERM, on_sigterm)

    def evaluate_and_maybe_export() -> None:
        model.eval()
        reader = Reader.from_loaded(model, tokenizer, max_seq_len=cfg.max_seq_len, stride=cfg.stride)
        with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=use_bf16):
            scores = evaluate_reader(reader, dev_examples)
        model.train()
        point = {"step": state.step, "examples_seen": state.examples_seen, "hours": state.seconds / 3600,
                 "dev_exact_match": scores.exact_match, "dev_f1": scores.f1}
        state.curve.append(point)
        print(f"\n[eval] {json.dumps(point)}", flush=True)
        if scores.f1 > state.best_f1:
            state.best_f1 = scores.f1
            _export(model, tokenizer, out, cfg.save_fp16)

    model.train()
    budget_s = cfg.max_hours * 3600 if cfg.max_hours else math.inf
    session_start = time.time()
    last_ckpt = last_eval = time.time()
    bar = tqdm(total=state.horizon, initial=state.step, disable=not progress, unit="step", smoothing=0.05)
    seen_at_start, step_at_start = state.examples_seen, state.step
    loss_ema = None
    loss_window: list[float] = []
    prev_elapsed = 0.0
    rate_from = (step_at_start, 0.0)
    while state.step < state.horizon and not stop["requested"]:
        epoch = state.step // steps_per_epoch
        batches = length_grouped_batches(lengths, cfg.batch_size, cfg.seed + epoch)
        for batch_index in range(state.step % steps_per_epoch, len(batches)):
            if state.step >= state.horizon or stop["requested"]:
                break
            batch = _collate([features[i] for i in batches[batch_index]], tokenizer.pad_token_id, torch, device)
            for group in optimizer.param_groups:
                group["lr"] = _lr_at(state.step, cfg, state.horizon)
            with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=use_bf16):
                loss = model(**batch).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            state.step += 1
            state.examples_seen += len(batches[batch_index])
            elapsed = time.time() - session_start
            state.seconds += elapsed - prev_elapsed
            prev_elapsed = elapsed
            loss_ema = loss.item() if loss_ema is None else 0.98 * loss_ema + 0.02 * loss.item()
            if state.step - step_at_start == 50:
                rate_from = (state.step, elapsed)
            if state.step - step_at_start == 250 and math.isfinite(budget_s):
                # The time budget sets where the learning rate reaches zero: decay finishes inside the budget.
                # The rate is measured after the first 50 steps, which pay for kernel set-up per new shape.
                rate = (state.step - rate_from[0]) / (elapsed - rate_from[1])
                eval_overhead = 0.05
                reachable = state.step + int(rate * (budget_s - elapsed) * (1 - eval_overhead))
                # Up or down: a resumed run with a new budget re-plans its decay; never past the epochs asked.
                state.horizon = min(total_steps, reachable)
                bar.total = state.horizon
            loss_window.append(loss.item())
            if state.step % cfg.log_every == 0:
                state.losses.append((state.step, float(np.mean(loss_window))))
                loss_window.clear()
                ex_s = (state.examples_seen - seen_at_start) / max(elapsed, 1e-9)
                bar.set_postfix(loss=f"{loss_ema:.3f}", ex_s=f"{ex_s:.1f}", lr=f"{optimizer.param_groups[0]['lr']:.1e}")
            bar.update(1)
            if dev_examples and time.time() - last_eval > cfg.eval_minutes * 60:
                evaluate_and_maybe_export()
                last_eval = time.time()
            if time.time() - last_ckpt > cfg.checkpoint_minutes * 60:
                checkpoint()
                last_ckpt = time.time()
            if elapsed > budget_s:
                break
        else:
            continue
        break
    bar.close()
    interrupted = stop["requested"]
    finished = state.step >= state.horizon
    if not interrupted:
        if dev_examples:
            evaluate_and_maybe_export()
        else:
            _export(model, tokenizer, out, cfg.save_fp16)
    checkpoint()
    summary = {"finished": finished, "interrupted": interrupted, "device": device, "bf16": use_bf16,
               "train_questions": len(examples), "train_negatives": len(negatives),
               "train_windows": len(features), **asdict(state),
               "config": asdict(cfg)}
    if not interrupted and dev_examples:
        summary["calibration"] = calibrate_reader(out, dev_examples, cfg)
    (out / "training_log.json").write_text(json.dumps(summary, indent=2))
    return summary


def calibrate_reader(model_dir: Path, dev_examples: list[QAExample], cfg: ReaderTrainConfig) -> dict:
    """Fit Platt scaling of the answer margin on dev: answerable questions on their gold passage (correct when
    F1 ≥ 0.5) and as many unanswerable ones on a passage of the same article without the answer (never
    correct). Writes calibration.json beside the weights."""
    reader = Reader(model_dir, max_seq_len=cfg.max_seq_len, stride=cfg.stride)
    half = dev_examples[: len(dev_examples) // 2]
    negatives = negative_examples(half, len(half), seed=cfg.seed + 1)
    pos = evaluate_reader(reader, half, abstain=False)
    neg = evaluate_reader(reader, negatives, abstain=False)
    margins = pos.margins + neg.margins
    correct = [f >= 0.5 for f in pos.f1s] + [False] * len(neg.margins)
    calibration = fit_calibration(margins, correct)
    calibration.save(Path(model_dir), fitted_on=f"{len(half)} answerable + {len(negatives)} unanswerable dev")
    return {"a": calibration.a, "b": calibration.b, "answerable": len(half), "unanswerable": len(negatives)}

