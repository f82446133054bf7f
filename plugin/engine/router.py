"""The intent router: a fine-tuned Transformer classifier with temperature-scaled confidence and an
out-of-scope threshold, plus the table that maps an intent to what the assistant does with it.

A saved model is one directory: weights and tokenizer (HF format) and `router.json` with the label list, the
temperature, the out-of-scope threshold and the out-of-scope label (if the training data had one).
"""

from __future__ import annotations

import json
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from spanqa.errors import InputError, ModelLoadError
from spanqa.settings import EMBEDDER_PRECISIONS, Settings, limit_kernel_cache, torch_dtype

__all__ = ["Intent", "IntentClassifier", "RouterConfig", "ROUTING_INTENTS", "OUT_OF_SCOPE", "softmax"]

OUT_OF_SCOPE = "out_of_scope"
ROUTING_INTENTS = ("document_question", "greeting", "thanks", "goodbye", "help", "smalltalk", OUT_OF_SCOPE)


@dataclass
class Intent:
    """A routing decision. `out_of_scope` is True when the label is the out-of-scope class or when the
    calibrated confidence fell below the threshold."""

    label: str
    confidence: float
    out_of_scope: bool
    alternatives: list[tuple[str, float]] = field(default_factory=list)
    below_threshold: bool = False


@dataclass
class RouterConfig:
    labels: list[str]
    temperature: float = 1.0
    threshold: float = 0.0
    oos_label: str | None = None
    max_length: int = 64

    def save(self, directory: Path) -> None:
        (Path(directory) / "router.json").write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, directory: Path) -> RouterConfig:
        path = Path(directory) / "router.json"
        if not path.is_file():
            raise ModelLoadError(f"{directory} is not a spanqa intent model (no router.json); train one with "
                                 "`spanqa train-intent DATA --out DIR`")
        return cls(**json.loads(path.read_text()))


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = logits / temperature
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


class IntentClassifier:
    """Classify messages into intents with calibrated confidence.

    Usage:
        classifier = IntentClassifier("models/router")
        intent = classifier.classify("hi there")   # Intent(label="greeting", confidence=0.98, ...)

    Args:
        model: a directory written by `spanqa train-intent`.
        batch_size: messages per forward pass.
        top_alternatives: how many alternative labels each prediction lists.
        precision: "auto" (bf16 where the CPU has it natively, else fp32; see spanqa.settings), "fp32" or "bf16";
            None reads Settings.router_precision (SPANQA_ROUTER_PRECISION).
    """

    def __init__(self, model: str | Path, batch_size: int = 64, top_alternatives: int = 3,
                 precision: str | None = None) -> None:
        precision = precision if precision is not None else Settings.from_env().router_precision
        if precision not in EMBEDDER_PRECISIONS:
            raise InputError(f"precision must be one of {', '.join(EMBEDDER_PRECISIONS)}; got {precision!r}")
        self.model_dir = Path(model)
        self.precision = precision
        self.batch_size = batch_size
        self.top_alternatives = top_alternatives
        self.config: RouterConfig | None = None
        self.model = None
        self.tokenizer = None
        self._lock = threading.Lock()

    @classmethod
    def from_loaded(cls, model, tokenizer, config: RouterConfig) -> IntentClassifier:
        classifier = cls(getattr(model, "name_or_path", "in-memory"))
        classifier.model, classifier.tokenizer, classifier.config = model, tokenizer, config
        return classifier

    def warm_up(self) -> None:
        if self.model is not None:
            return
        limit_kernel_cache()
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        config = RouterConfig.load(self.model_dir)
        dtype = torch_dtype(self.precision)
        try:
            tokenizer = AutoTokenizer.from_pretrained(self.model_dir)
            model = AutoModelForSequenceClassification.from_pretrained(self.model_dir, dtype=dtype)
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"Could not load the intent model in {self.model_dir}: {exc}") from exc
        model.eval()
        self.config, self.tokenizer, self.model = config, tokenizer, model

    @property
    def labels(self) -> list[str]:
        self.warm_up()
        return self.config.labels

    def logits(self, texts: list[str]) -> np.ndarray:
        """Raw logits, (len(texts), n_labels)."""
        import torch

        self.warm_up()
        out = []
        with self._lock, torch.inference_mode():
            for b in range(0, len(texts), self.batch_size):
                batch = self.tokenizer(texts[b : b + self.batch_size], truncation=True, padding=True,
                                       max_length=self.config.max_length, return_tensors="pt")
                out.append(self.model(**batch).logits.float().numpy())
        return np.concatenate(out) if out else np.zeros((0, len(self.config.labels)), dtype=np.float32)

    def classify_many(self, texts: list[str]) -> list[Intent]:
        self.warm_up()
        probs = softmax(self.logits([t.strip() or "?" for t in texts]), self.config.temperature)
        return [self._intent(row) for row in probs]

    def classify(self, text: str) -> Intent:
        return self.classify_many([text])[0]

    def _intent(self, probs: np.ndarray) -> Intent:
        order = np.argsort(probs)[::-1]
        labels = self.config.labels
        best = int(order[0])
        confidence = float(probs[best])
        below = confidence < self.config.threshold
        alternatives = [(labels[int(i)], float(probs[int(i)])) for i in order[1 : 1 + self.top_alternatives]]
        is_oos = labels[best] == self.config.oos_label or below
        return Intent(labels[best], confidence, is_oos, alternatives, below)
