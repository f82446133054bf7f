"""The extractive reader: finds verbatim answer spans in passages, with calibrated scores.

How a score is computed, and why. For each window the model gives start and end logits; the standard SQuAD 2.0
decision variable is the *margin* of a span over the window's own no-answer score,
``(start[i] + end[j]) - (start[CLS] + end[CLS])``. Raw softmax probabilities are normalised per window, so a
span in a short window and a span in a long one are not comparable; the margin is, because each window is
measured against its own null. The margin is mapped to a probability with Platt scaling,
``score = sigmoid(a * margin + b)``, where `a` and `b` are fitted on held-out data when the reader is trained
(`calibration.json` beside the weights) so that a score of 0.7 means "right about 70 % of the time".
The reader abstains when the best score is below `threshold`.
"""

from __future__ import annotations

import json
import math
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from spanqa.plugin.engine.spans import snap_span
from spanqa.retriever.memory import release_freed_memory
from spanqa.retriever.records import Passage

from spanqa.errors import InputError, ModelLoadError
from spanqa.settings import (
    PRECISIONS,
    SHIPPED_READER,
    Precision,
    Settings,
    limit_kernel_cache,
    resolve_device,
    resolve_precision,
    torch_dtype,
)

__all__ = [
    "Answer",
    "ReaderResult",
    "Reader",
    "combine_answers",
    "SpanCandidate",
    "decode_window",
    "tokenize_pairs",
    "truncate_question",
    "Calibration",
]



@dataclass
class Answer:
    """A verbatim span: `passage.text[start:end] == text` and `document_text[document_start:document_end] == text`."""

    text: str
    score: float
    margin: float
    passage_id: int
    start: int
    end: int
    document_start: int
    document_end: int
    document_id: str = ""
    source: str = ""
    page: int = 1
    # The span's own logit, start + end. The readers were trained with shared normalisation (one softmax over all
    # the passages of a question), so unlike the margin, which is measured against each window's own "no answer",
    # logits compare across the passages read: the answer ranker decodes across all of them with it.
    logit: float = 0.0
    unit: bool = False  # a whole unit (code token, sentence) offered for a candidate the reader cut differently


@dataclass
class ReaderResult:
    answers: list[Answer] = field(default_factory=list)
    windows: int = 0
    tokens: int = 0

    @property
    def best(self) -> Answer | None:
        return self.answers[0] if self.answers else None

    def abstains(self, threshold: float) -> bool:
        """Whether the best span's calibrated score falls below `threshold` (or there is none)."""
        return not self.answers or self.answers[0].score < threshold


@dataclass(frozen=True)
class SpanCandidate:
    start: int  # character offsets in the passage
    end: int
    span_logit: float


@dataclass(frozen=True)
class Calibration:
    """Platt scaling of the answer margin: P(correct) = sigmoid(a * margin + b)."""

    a: float = 1.0
    b: float = 0.0

    def probability(self, margin: float) -> float:
        z = self.a * margin + self.b
        return 1.0 / (1.0 + math.exp(-z)) if z > -700 else 0.0

    @classmethod
    def load(cls, model_dir: Path) -> Calibration:
        path = Path(model_dir) / "calibration.json"
        if path.is_file():
            data = json.loads(path.read_text())
            return cls(float(data["a"]), float(data["b"]))
        return cls()

    def save(self, model_dir: Path, **extra) -> None:
        (Path(model_dir) / "calibration.json").write_text(json.dumps({"a": self.a, "b": self.b, **extra}, indent=2))


def decode_window(
    start_logits: np.ndarray,
    end_logits: np.ndarray,
    offsets: list[tuple[int, int] | None],
    max_answer_tokens: int = 30,
    n_best: int = 20,
) -> tuple[list[SpanCandidate], float]:
    """Best spans of one window, and the window's no-answer logit.

    Args:
        start_logits, end_logits: one value per token of the window.
        offsets: per token, its (start, end) character range in the passage, or None for tokens that are not
            passage text (question, special tokens, padding).
        max_answer_tokens: longest span, in tokens.
        n_best: how many start and end positions to pair up.

    Returns:
        Candidates sorted by span logit (best first) and the null logit `start[0] + end[0]` (CLS).
    """
    null_logit = float(start_logits[0] + end_logits[0])
    n = min(len(start_logits), len(offsets))
    starts = np.argsort(start_logits[:n])[::-1][:n_best]
    ends = np.argsort(end_logits[:n])[::-1][:n_best]
    candidates: list[SpanCandidate] = []
    for i in starts:
        if offsets[i] is None:  # not passage text: the question, a special token or padding
            continue
        for j in ends:
            if offsets[j] is None:
                continue
            if j < i:  # an end before its start is no span
                continue
            if j - i + 1 > max_answer_tokens:  # longer than any answer we allow
                continue
            start_char, end_char = offsets[i][0], offsets[j][1]
            if end_char <= start_char:
                continue
            candidates.append(SpanCandidate(start_char, end_char, float(start_logits[i] + end_logits[j])))
    candidates.sort(key=lambda c: c.span_logit, reverse=True)
    return candidates, null_logit


def truncate_question(tokenizer, question: str, max_tokens: int) -> str:
    """Cut a question to its first `max_tokens` tokens, so that a window always has room for passage text."""
    encoded = tokenizer(question, add_special_tokens=False, return_offsets_mapping=True)
    offsets = encoded["offset_mapping"]
    if len(offsets) <= max_tokens:
        return question
    return question[: offsets[max_tokens - 1][1]]


def tokenize_pairs(tokenizer, questions: list[str], contexts: list[str], max_seq_len: int, stride: int):
    """Overlapping windows over (question, context) pairs; the question is never truncated, the context is.

    Returns the tokenizer's BatchEncoding with `overflow_to_sample_mapping` (window → pair) and
    `offset_mapping`; callers use `sequence_ids(i)` to find the context tokens of window `i`.
    """
    return tokenizer(
        questions,
        contexts,
        truncation="only_second",
        max_length=max_seq_len,
        stride=stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
        padding=False,
    )


def context_offsets(encoding, window: int) -> list[tuple[int, int] | None]:
    """Offsets of window `window` with every non-context token set to None."""
    sequence_ids = encoding.sequence_ids(window)
    return [
        tuple(off) if sid == 1 else None
        for off, sid in zip(encoding["offset_mapping"][window], sequence_ids, strict=True)
    ]


def pad_batch(rows: list[dict], pad_id: int, torch):
    """Dynamic padding: pad a batch of windows to its own longest row, not to max_seq_len."""
    width = max(len(r["input_ids"]) for r in rows)
    batch = {}
    for key in rows[0]:
        fill = pad_id if key == "input_ids" else 0
        batch[key] = torch.tensor([r[key] + [fill] * (width - len(r[key])) for r in rows], dtype=torch.long)
    return batch


def combine_answers(answers: list[Answer], top_k: int) -> list[Answer]:
    """The `top_k` best answers by margin, keeping the best of answers that overlap in the same document (the
    same span seen in two windows or in two overlapping passages). Answers read in several rounds combine here
    exactly as if they had been read together."""
    kept: list[Answer] = []
    for answer in sorted(answers, key=lambda a: a.margin, reverse=True):
        if len(kept) == top_k:
            break
        if any(
            k.document_id == answer.document_id
            and k.document_start < answer.document_end
            and answer.document_start < k.document_end
            for k in kept
        ):
            continue
        kept.append(answer)
    return kept


class Reader:
    """Extractive QA over passages with any `AutoModelForQuestionAnswering` checkpoint.

    Usage:
        reader = Reader("models/reader")
        result = reader.read("Who wrote it?", passages, top_k=3)
        result.best.text, result.best.score

    Args:
        model: an HF id or a local directory (default: the reader that ships with spanqa).
        max_seq_len, stride: window size and overlap, in tokens, for passages longer than one window.
        max_answer_tokens: longest answer span.
        max_question_tokens: longer questions are cut to this many tokens.
        batch_size: windows per forward pass.
        precision: "auto" (bf16 where the CPU has it natively, else fp32; see spanqa.settings), "fp32", "int8"
            (dynamic quantization of the linear layers, CPUs only) or "bf16"; on a GPU "auto" is bf16 or fp16.
        device: "auto" (a CUDA GPU when torch sees one, else the CPU), "cpu" or "cuda" (Settings.device).

    The reader proposes and scores spans; it never abstains. Whether an answer is given is the engine's decision
    (Settings.answer_threshold on the ranker's calibrated score), and `ReaderResult.abstains(threshold)` is the
    same rule for evaluations of the reader alone.
    """

    def __init__(
        self,
        model: str | Path | None = None,
        max_seq_len: int = 384,
        stride: int = 128,
        max_answer_tokens: int = 30,
        max_question_tokens: int = 64,
        batch_size: int = 16,
        precision: Precision = Settings.reader_precision,
        device: str = Settings.device,
    ) -> None:
        if precision not in PRECISIONS:
            raise InputError(f"precision must be one of {', '.join(PRECISIONS)}; got {precision!r}")
        if not 0 <= stride < max_seq_len // 2:
            raise InputError(f"stride must be in [0, max_seq_len/2), got {stride} for max_seq_len {max_seq_len}")
        if max_question_tokens >= max_seq_len - 16:
            raise InputError("max_question_tokens leaves no room for the passage in a window")
        self.model_name = str(model) if model is not None else str(SHIPPED_READER)
        self.max_seq_len = max_seq_len
        self.stride = stride
        self.max_answer_tokens = max_answer_tokens
        self.max_question_tokens = max_question_tokens
        self.batch_size = batch_size
        self.device = resolve_device(device)
        self.precision = resolve_precision(precision, self.device)  # refuses int8 on a GPU now, not at first read
        self.model = None
        self.tokenizer = None
        self.calibration = Calibration()
        # One read at a time per Reader, tokenization included: the fast tokenizer's truncation settings are
        # shared state between threads (see retriever.embedding), torch already uses every core for one batch,
        # and the quantized modules are not documented as re-entrant.
        self._lock = threading.Lock()
        self._reads = 0

    @classmethod
    def from_loaded(cls, model, tokenizer, calibration: Calibration | None = None, **settings) -> Reader:
        """A reader around a model already in memory (used to evaluate during training)."""
        reader = cls(model=getattr(model, "name_or_path", "in-memory"), **settings)
        reader.model, reader.tokenizer = model, tokenizer
        reader.calibration = calibration or Calibration()
        return reader

    def warm_up(self) -> None:
        if self.model is not None:
            return
        limit_kernel_cache()
        import torch
        from transformers import AutoModelForQuestionAnswering, AutoTokenizer

        precision = self.precision
        try:
            tokenizer = AutoTokenizer.from_pretrained(self.model_name)
            model = AutoModelForQuestionAnswering.from_pretrained(self.model_name,
                                                                  dtype=torch_dtype(precision, self.device))
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"Could not load the reader model {self.model_name!r}: {exc}") from exc
        if not tokenizer.is_fast:
            raise ModelLoadError(f"The reader needs a fast tokenizer (offset mapping); {self.model_name} has none")
        model.eval()
        if precision == "int8":
            import warnings

            with warnings.catch_warnings():  # torch.ao is deprecated in favour of torchao, not yet installed here
                warnings.filterwarnings("ignore", message="torch.ao.quantization is deprecated")
                model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
        model.to(self.device)
        if Path(self.model_name).is_dir():
            self.calibration = Calibration.load(Path(self.model_name))
        self.tokenizer, self.model = tokenizer, model

    def read(self, question: str, passages: list[Passage], top_k: int = 5):
        """Answer one question from `passages`; see `read_many`."""
        return self.read_many([(question, passages)], top_k=top_k)[0]

    def read_many(
        self,
        items: list[tuple[str, list[Passage]]],
        top_k: int = 5,
    ) -> list[ReaderResult]:
        """Answer many questions, each against its own passages, batching every window of every pair.

        Returns one ReaderResult per item: up to `top_k` answers across its passages, best first, overlapping
        duplicates merged.
        """
        if top_k < 1:
            raise InputError(f"top_k must be at least 1, got {top_k}")
        if any(not question.strip() for question, _ in items):
            raise InputError("The question is empty")
        self.warm_up()
        results = [ReaderResult() for _ in items]
        with self._lock:
            pairs: list[tuple[int, str, Passage]] = []
            for item_index, (question, passages) in enumerate(items):
                short_question = truncate_question(self.tokenizer, question, self.max_question_tokens)
                pairs.extend((item_index, short_question, p) for p in passages if p.text.strip())
            if not pairs:
                return results
            encoding = tokenize_pairs(self.tokenizer, [q for _, q, _ in pairs], [p.text for _, _, p in pairs],
                                      self.max_seq_len, self.stride)
            start_logits, end_logits = self.forward_logits(encoding)
            self._reads += 1
            if self._reads % 16 == 0:  # short reads leave a little each; a trim costs ~2 ms, so not after every one
                release_freed_memory()
        candidates: list[list[Answer]] = [[] for _ in items]
        for window, pair_index in enumerate(encoding["overflow_to_sample_mapping"]):
            item_index, _, passage = pairs[pair_index]
            offsets = context_offsets(encoding, window)
            spans, null_logit = decode_window(
                start_logits[window], end_logits[window], offsets, self.max_answer_tokens
            )
            results[item_index].windows += 1
            results[item_index].tokens += len(offsets)
            for span in spans[:top_k]:
                margin = span.span_logit - null_logit
                candidates[item_index].append(self._answer(passage, span, margin))
        for result, found in zip(results, candidates, strict=True):
            result.answers = combine_answers(found, top_k)
        return results

    def _answer(self, passage: Passage, span: SpanCandidate, margin: float) -> Answer:
        start, end = snap_span(passage.text, span.start, span.end)
        return Answer(
            text=passage.text[start:end],
            score=self.calibration.probability(margin),
            margin=margin,
            passage_id=passage.id,
            start=start,
            end=end,
            document_start=passage.start + start,
            document_end=passage.start + end,
            document_id=passage.document_id,
            source=passage.source,
            page=passage.page,
            logit=span.span_logit,
        )

    def forward_logits(self, encoding) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Run every window through the model, shortest first so each batch pads little."""
        import torch

        keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in encoding]
        lengths = [len(ids) for ids in encoding["input_ids"]]
        order = np.argsort(lengths, kind="stable")
        device = getattr(self.model, "device", "cpu")  # a model being trained may sit on a GPU
        starts: list[np.ndarray | None] = [None] * len(lengths)
        ends: list[np.ndarray | None] = [None] * len(lengths)
        with torch.inference_mode():
            for b in range(0, len(order), self.batch_size):
                idx = order[b : b + self.batch_size]
                rows = [{k: list(encoding[k][i]) for k in keys} for i in idx]
                batch = pad_batch(rows, self.tokenizer.pad_token_id or 0, torch)
                out = self.model(**{k: v.to(device) for k, v in batch.items()})
                s = out.start_logits.float().cpu().numpy()
                e = out.end_logits.float().cpu().numpy()
                for row, i in enumerate(idx):
                    starts[i] = s[row, : lengths[i]]
                    ends[i] = e[row, : lengths[i]]
                if len(order) > self.batch_size:  # a long read: each pass's activations go back before the next
                    release_freed_memory()
        return starts, ends
