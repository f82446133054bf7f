"""Fine-tune an extractive QA reader on SQuAD-format data, on a CPU or a GPU, within a time budget.

Straight path: config → examples → question groups (each question with hard negative passages, some questions
with negatives only) → windowed features → length-grouped batches of whole groups → shared-normalisation loss →
loop (bf16 autocast where the hardware has it, linear warm-up and decay) → periodic dev evaluation, the best
model exported → calibration on dev → model card data. Checkpoints every `checkpoint_minutes` and on SIGTERM;
`resume=True` continues from the last one with the same data order.
"""

from __future__ import annotations

import json
import math
import os
import random
import signal
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from spanqa.plugin.engine.reader import Reader, tokenize_pairs, truncate_question
from spanqa.plugin.engine.squad import QAExample, load_squad
from spanqa.plugin.lab.reader_eval import evaluate_reader, fit_calibration, negative_examples
from spanqa.plugin.lab.training_utils import bf16_supported, seed_everything

from spanqa.errors import InputError

__all__ = ["ReaderTrainConfig", "QuestionGroup", "question_groups", "build_features", "group_batches",
           "shared_norm_loss", "train_reader"]


@dataclass
class ReaderTrainConfig:
    train: str
    out: str
    dev: str | None = None
    base: str | None = None  # default: the bundled MiniLM encoder
    max_seq_len: int = 256
    stride: int = 64
    max_question_tokens: int = 64
    batch_size: int = 32  # windows per step (a question's windows are never split across steps)
    lr: float = 1e-4
    warmup_ratio: float = 0.06
    weight_decay: float = 0.01
    epochs: float = 1.0
    max_hours: float | None = None
    # "shared_norm": the start/end softmax runs over every window of every passage read with a question, so
    # scores of spans from different passages are comparable (Clark & Gardner 2018); "window": each window is
    # normalised alone (plain SQuAD fine-tuning).
    objective: str = "shared_norm"
    # Negative passages read with each answerable question: up to this many, the most similar (TF-IDF) other
    # paragraphs of its article that lack the answer — the passages a retriever would also return.
    negatives_per_question: int = 3
    # Unanswerable questions per answerable one: the question read with negative passages only. Enough for
    # the no-answer score to mean something; SQuAD 2.0 uses about 1 in 3.
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

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise InputError(f"objective must be one of {OBJECTIVES}, got {self.objective!r}")


OBJECTIVES = ("shared_norm", "window")


@dataclass
class Feature:
    """One window: token ids, where its passage text lies, and the answer's first and last token (0 = absent)."""

    input_ids: list[int]
    token_type_ids: list[int]
    context_start: int  # first passage token
    context_end: int  # one past the last passage token
    start: int
    end: int


@dataclass
class QuestionGroup:
    """A question read with several passages: the unit of the shared-normalisation loss."""

    question: str
    contexts: list[str]
    answers: list[tuple[int, int, int]]  # (context index, start char, end char); empty when unanswerable


@dataclass
class TrainState:
    step: int = 0
    horizon: int = 0  # the step at which the learning rate reaches zero
    epoch: int = 0
    batch_in_epoch: int = 0  # batches of `epoch` already trained on
    examples_seen: int = 0  # windows
    seconds: float = 0.0
    best_f1: float = -1.0
    curve: list[dict] = field(default_factory=list)
    losses: list[tuple[int, float]] = field(default_factory=list)  # (step, mean loss since the last entry)


def _similar_paragraphs(examples: list[QAExample]) -> dict[str, list[str]]:
    """For each question id, the other paragraphs of its article, most similar (TF-IDF cosine) first."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    by_title: dict[str, list[QAExample]] = {}
    for e in examples:
        by_title.setdefault(e.title, []).append(e)
    ranked: dict[str, list[str]] = {}
    for group in by_title.values():
        contexts = list(dict.fromkeys(e.context for e in group))
        if len(contexts) < 2:
            continue
        vectorizer = TfidfVectorizer(stop_words="english", sublinear_tf=True).fit(contexts)
        similarity = (vectorizer.transform([e.question for e in group]) @ vectorizer.transform(contexts).T).toarray()
        for e, row in zip(group, similarity, strict=True):
            ranked[e.id] = [contexts[i] for i in np.argsort(-row) if contexts[i] != e.context]
    return ranked


def question_groups(examples: list[QAExample], cfg: ReaderTrainConfig) -> list[QuestionGroup]:
    """Answerable groups (the gold paragraph plus 0..N hard negatives, shuffled) and unanswerable ones (hard
    negatives only). With the "window" objective every group is one passage, as in plain SQuAD training."""
    rng = random.Random(cfg.seed)
    similar = _similar_paragraphs(examples)
    groups: list[QuestionGroup] = []
    for e in examples:
        spans = [(a.start, a.end) for a in e.answers]
        negatives = [c for c in similar.get(e.id, []) if not any(a.text in c for a in e.answers)]
        negatives = negatives[: cfg.negatives_per_question]
        if cfg.objective == "window":
            groups.append(QuestionGroup(e.question, [e.context], [(0, s, t) for s, t in spans[:1]]))
            continue
        chosen = negatives[: rng.randint(0, len(negatives))]
        contexts = [e.context, *chosen]
        order = list(range(len(contexts)))
        rng.shuffle(order)
        gold_at = order.index(0)
        groups.append(QuestionGroup(e.question, [contexts[i] for i in order],
                                    [(gold_at, s, t) for s, t in spans[:1]]))
    unanswerable = rng.sample(examples, min(len(examples), int(cfg.negative_ratio * len(examples))))
    for e in unanswerable:
        negatives = [c for c in similar.get(e.id, []) if not any(a.text in c for a in e.answers)]
        keep = 1 if cfg.objective == "window" else max(1, cfg.negatives_per_question)
        if negatives:
            groups.append(QuestionGroup(e.question, negatives[:keep], []))
    return groups


def build_features(tokenizer, groups: list[QuestionGroup], max_seq_len: int, stride: int, max_question_tokens: int,
                   chunk: int = 2000) -> list[list[Feature]]:
    """Every window of every passage of each group, labelled with the answer's first and last token, or 0
    (CLS) when the answer is not inside the window."""
    pairs = [(g, c) for g, group in enumerate(groups) for c in range(len(group.contexts))]
    features: list[list[Feature]] = [[] for _ in groups]
    for b in range(0, len(pairs), chunk):
        batch = pairs[b : b + chunk]
        questions = [truncate_question(tokenizer, groups[g].question, max_question_tokens) for g, _ in batch]
        enc = tokenize_pairs(tokenizer, questions, [groups[g].contexts[c] for g, c in batch], max_seq_len, stride)
        for w, pair_index in enumerate(enc["overflow_to_sample_mapping"]):
            g, c = batch[pair_index]
            seq_ids = enc.sequence_ids(w)
            offsets = enc["offset_mapping"][w]
            ctx = [i for i, s in enumerate(seq_ids) if s == 1]
            start_tok = end_tok = 0
            for context_index, a_start, a_end in groups[g].answers:
                if context_index == c and offsets[ctx[0]][0] <= a_start and offsets[ctx[-1]][1] >= a_end:
                    start_tok = next(i for i in ctx if offsets[i][1] > a_start)
                    end_tok = next(i for i in reversed(ctx) if offsets[i][0] < a_end)
            type_ids = enc["token_type_ids"][w] if "token_type_ids" in enc else [0] * len(enc["input_ids"][w])
            features[g].append(Feature(list(enc["input_ids"][w]), list(type_ids), ctx[0], ctx[-1] + 1,
                                       start_tok, end_tok))
    return features


def group_batches(group_lengths: list[int], group_sizes: list[int], max_windows: int, seed: int,
                  mega: int = 64) -> list[list[int]]:
    """Batches of whole groups holding at most `max_windows` windows (a larger group alone), of similar length
    (groups sorted by length inside mega-batches) while the order stays random. Deterministic per seed."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(group_lengths))
    batches: list[list[int]] = []
    span = max(1, mega * max_windows // max(1, int(np.mean(group_sizes))))
    for m in range(0, len(order), span):
        block = sorted(order[m : m + span].tolist(), key=lambda i: group_lengths[i])
        current: list[int] = []
        windows = 0
        for g in block:
            if current and windows + group_sizes[g] > max_windows:
                batches.append(current)
                current, windows = [], 0
            current.append(g)
            windows += group_sizes[g]
        if current:
            batches.append(current)
    rng.shuffle(batches)
    return batches


def _collate(groups: list[list[Feature]], pad_id: int, torch, device):
    """Windows padded to a multiple of 16 (few distinct shapes, so kernels are reused across batches), the
    positions each window may answer from (CLS and its passage text), start/end targets and window → group."""
    windows = [f for group in groups for f in group]
    width = -(-max(len(f.input_ids) for f in windows) // 16) * 16
    n = len(windows)
    ids = torch.full((n, width), pad_id, dtype=torch.long)
    types = torch.zeros((n, width), dtype=torch.long)
    mask = torch.zeros((n, width), dtype=torch.long)
    valid = torch.zeros((n, width), dtype=torch.bool)
    start_target = torch.zeros((n, width), dtype=torch.bool)
    end_target = torch.zeros((n, width), dtype=torch.bool)
    group_of = torch.tensor([g for g, group in enumerate(groups) for _ in group])
    for r, f in enumerate(windows):
        ids[r, : len(f.input_ids)] = torch.tensor(f.input_ids)
        types[r, : len(f.input_ids)] = torch.tensor(f.token_type_ids)
        mask[r, : len(f.input_ids)] = 1
        valid[r, 0] = True
        valid[r, f.context_start : f.context_end] = True
    first = 0
    for group in groups:
        rows = list(range(first, first + len(group)))
        first += len(group)
        answered = [r for r in rows if windows[r].start > 0]
        for r in answered:
            start_target[r, windows[r].start] = True
            end_target[r, windows[r].end] = True
        if not answered:  # unanswerable in every window: the mass belongs on the no-answer (CLS) positions
            start_target[rows, 0] = True
            end_target[rows, 0] = True
    inputs = {"input_ids": ids, "token_type_ids": types, "attention_mask": mask}
    targets = {"valid": valid, "start": start_target, "end": end_target, "group_of": group_of}
    return ({k: v.to(device) for k, v in inputs.items()}, {k: v.to(device) for k, v in targets.items()})


def shared_norm_loss(logits, valid, target, group_of, torch):
    """-log of the probability mass on the target positions, the softmax taken over every valid position of
    every window of the same group. A group of one window is plain SQuAD cross-entropy."""
    n_groups = int(group_of.max()) + 1
    masked = logits.float().masked_fill(~valid, float("-inf"))
    row_max = masked.max(dim=1).values
    group_max = torch.full((n_groups,), float("-inf"), device=logits.device).scatter_reduce(
        0, group_of, row_max, reduce="amax")
    shifted = torch.exp(masked - group_max[group_of].unsqueeze(1))
    total = torch.zeros(n_groups, device=logits.device).index_add(0, group_of, shifted.sum(dim=1))
    on_target = torch.zeros(n_groups, device=logits.device).index_add(0, group_of, (shifted * target).sum(dim=1))
    return (torch.log(total) - torch.log(on_target.clamp_min(1e-30))).mean()


def _lr_at(step: int, cfg: ReaderTrainConfig, horizon: int) -> float:
    warmup = max(1, int(cfg.warmup_ratio * horizon))
    if step < warmup:
        return cfg.lr * (step + 1) / warmup
    return cfg.lr * max(0.0, (horizon - step) / max(1, horizon - warmup))


def _save_atomic(obj, path: Path, torch) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def export_model(model, tokenizer, out: Path, fp16: bool) -> None:
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

    from spanqa.settings import shipped_embedder_path

    out = Path(cfg.out)
    ckpt_dir = out / "checkpoint"
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path = ckpt_dir / "state.pt"
    seed_everything(cfg.seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    use_bf16 = bf16_supported(device) if cfg.bf16 is None else cfg.bf16

    base = cfg.base or shipped_embedder_path()
    tokenizer = AutoTokenizer.from_pretrained(base)
    # Measured on this 2-core CPU under bf16 autocast: dropout on the attention probabilities alone costs 40 %
    # of a step (13.5 vs 23.3 windows/s), so it is off; hidden-state dropout stays. Eager attention beat SDPA
    # (23.3 vs 20.9) there; on CUDA SDPA is the fast path.
    attention = "sdpa" if device == "cuda" else "eager"
    model = AutoModelForQuestionAnswering.from_pretrained(
        base, dtype=torch.float32, attn_implementation=attention,
        attention_probs_dropout_prob=cfg.attention_dropout).to(device)  # fp32 master weights, even from fp16 files

    examples = load_squad(cfg.train, limit=cfg.limit)
    t0 = time.time()
    groups = question_groups(examples, cfg)
    features = build_features(tokenizer, groups, cfg.max_seq_len, cfg.stride, cfg.max_question_tokens)
    unanswerable = sum(1 for g in groups if not g.answers)
    n_windows = sum(len(f) for f in features)
    print(f"{len(examples)} questions → {len(groups)} groups ({unanswerable} unanswerable), {n_windows} windows "
          f"({time.time() - t0:.0f}s); objective={cfg.objective} device={device} bf16={use_bf16}", file=sys.stderr,
          flush=True)
    dev_examples = load_squad(cfg.dev, limit=cfg.dev_limit) if cfg.dev else []

    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.ndim < 2 or "LayerNorm" in name else decay).append(p)
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr, foreach=True)
    group_lengths = [max(len(f.input_ids) for f in group) for group in features]
    group_sizes = [len(group) for group in features]

    def epoch_batches(epoch: int) -> list[list[int]]:
        return group_batches(group_lengths, group_sizes, cfg.batch_size, cfg.seed + epoch)

    steps_per_epoch = len(epoch_batches(0))
    total_steps = max(1, int(cfg.epochs * steps_per_epoch))
    state = TrainState(horizon=total_steps)
    if resume and ckpt_path.is_file():
        saved = torch.load(ckpt_path, map_location=device, weights_only=False)
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        state = TrainState(**saved["state"])
        print(f"resumed at step {state.step} ({state.examples_seen} windows seen)", file=sys.stderr, flush=True)

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
        print(f"\n[eval] {json.dumps(point)}", file=sys.stderr, flush=True)
        if scores.f1 > state.best_f1:
            state.best_f1 = scores.f1
            export_model(model, tokenizer, out, cfg.save_fp16)

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
        # Packing whole groups makes the batch count differ a little between epochs: the position in the data is
        # (epoch, batch), kept in the state so that a resumed run continues with the same order.
        batches = epoch_batches(state.epoch)
        for batch_index in range(state.batch_in_epoch, len(batches)):
            if state.step >= state.horizon or stop["requested"]:
                break
            state.batch_in_epoch = batch_index + 1
            inputs, targets = _collate([features[g] for g in batches[batch_index]], tokenizer.pad_token_id, torch,
                                       device)
            for group in optimizer.param_groups:
                group["lr"] = _lr_at(state.step, cfg, state.horizon)
            with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=use_bf16):
                outputs = model(**inputs)
            loss = sum(shared_norm_loss(logits, targets["valid"], targets[side], targets["group_of"], torch)
                       for logits, side in ((outputs.start_logits, "start"), (outputs.end_logits, "end"))) / 2
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            state.step += 1
            state.examples_seen += sum(group_sizes[g] for g in batches[batch_index])
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
            state.epoch += 1
            state.batch_in_epoch = 0
            continue
        break
    bar.close()
    interrupted = stop["requested"]
    finished = state.step >= state.horizon
    if not interrupted:
        if dev_examples:
            evaluate_and_maybe_export()
        else:
            export_model(model, tokenizer, out, cfg.save_fp16)
    checkpoint()
    summary = {"finished": finished, "interrupted": interrupted, "device": device, "bf16": use_bf16,
               "train_questions": len(examples), "train_groups": len(groups), "train_unanswerable": unanswerable,
               "train_windows": n_windows, **asdict(state),
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

