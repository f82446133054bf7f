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
from spanqa.settings import EMBEDDER_PRECISIONS, Settings, limit_kernel_cache, resolve_device, torch_dtype

__all__ = ["Intent", "Router", "IntentClassifier", "EmbeddingRouter", "RouterHead", "load_router", "HEAD_FILE",
           "RouterConfig", "CHAR_NGRAMS", "INTENTS", "OUT_OF_SCOPE", "softmax"]

OUT_OF_SCOPE = "out_of_scope"
# The intents the shipped router knows (its training data, plugin/engine/data/intents.jsonl, has these labels).
INTENTS = ("document_question", "greeting", "thanks", "goodbye", "help", "smalltalk", OUT_OF_SCOPE)


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


class Router:
    """What every router shares: raw logits (`logits`, the subclass's job) → temperature-scaled confidence →
    an Intent, out of scope below the threshold. The assistant, the batching engine and the evaluation only
    use this interface."""

    config: RouterConfig | None = None

    def warm_up(self) -> None:
        raise NotImplementedError

    def logits(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError

    @property
    def labels(self) -> list[str]:
        self.warm_up()
        return self.config.labels

    def classify_many(self, texts: list[str]) -> list[Intent]:
        self.warm_up()
        probs = softmax(self.logits([t.strip() or "?" for t in texts]), self.config.temperature)
        return [self.intent_from_probabilities(row) for row in probs]

    def classify(self, text: str) -> Intent:
        return self.classify_many([text])[0]

    def intent_from_probabilities(self, probs: np.ndarray) -> Intent:
        order = np.argsort(probs)[::-1]
        labels = self.config.labels
        best = int(order[0])
        confidence = float(probs[best])
        below = confidence < self.config.threshold
        alternatives = [(labels[int(i)], float(probs[int(i)])) for i in order[1 : 1 + self.top_alternatives]]
        is_oos = labels[best] == self.config.oos_label or below
        return Intent(labels[best], confidence, is_oos, alternatives, below)

    top_alternatives: int = 3


class IntentClassifier(Router):
    """Classify messages into intents with calibrated confidence: a fine-tuned Transformer classifier.

    Usage:
        classifier = IntentClassifier("models/router")
        intent = classifier.classify("hi there")   # Intent(label="greeting", confidence=0.98, ...)

    Args:
        model: a directory written by `spanqa train-intent`.
        batch_size: messages per forward pass.
        top_alternatives: how many alternative labels each prediction lists.
        precision: "auto" (bf16 where the CPU has it natively, else fp32; see spanqa.settings), "fp32" or "bf16";
            the door passes Settings.router_precision.
        device: "auto" (a CUDA GPU when torch sees one, else the CPU), "cpu" or "cuda" (Settings.device).
    """

    def __init__(self, model: str | Path, batch_size: int = 64, top_alternatives: int = 3,
                 precision: str = Settings.router_precision, device: str = Settings.device) -> None:
        if precision not in EMBEDDER_PRECISIONS:
            raise InputError(f"precision must be one of {', '.join(EMBEDDER_PRECISIONS)}; got {precision!r}")
        self.model_dir = Path(model)
        self.precision = precision
        self.device = resolve_device(device)
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
        dtype = torch_dtype(self.precision, self.device)
        try:
            tokenizer = AutoTokenizer.from_pretrained(self.model_dir)
            model = AutoModelForSequenceClassification.from_pretrained(self.model_dir, dtype=dtype)
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"Could not load the intent model in {self.model_dir}: {exc}") from exc
        model.eval().to(self.device)
        self.config, self.tokenizer, self.model = config, tokenizer, model

    def logits(self, texts: list[str]) -> np.ndarray:
        """Raw logits, (len(texts), n_labels)."""
        import torch

        self.warm_up()
        out = []
        with self._lock, torch.inference_mode():
            for b in range(0, len(texts), self.batch_size):
                batch = self.tokenizer(texts[b : b + self.batch_size], truncation=True, padding=True,
                                       max_length=self.config.max_length, return_tensors="pt")
                out.append(self.model(**batch.to(self.model.device)).logits.float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, len(self.config.labels)), dtype=np.float32)


# The head's lexical half: character 2-4-grams within words, TF-IDF weighted. Greetings, thanks and goodbyes are
# short and formulaic ("ty!", "cya", "tschüss"), and their spelling tells them apart where a sentence vector blurs
# them: on the routing data's held-out split, vectors alone routed 86.5 % right, with the n-grams 90.1 %.
CHAR_NGRAMS = (2, 4)


def char_vectorizer(vocabulary=None):
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(analyzer="char_wb", ngram_range=CHAR_NGRAMS, sublinear_tf=True, min_df=2,
                           vocabulary=vocabulary)


@dataclass
class RouterHead:
    """A linear head over a message's sentence vector and its character n-grams: logits = [vector, weight *
    tfidf(ngrams)] @ coef.T + intercept. `embedder` names the model whose vectors it was fitted on (Embedder.name);
    other vectors would be meaningless to it."""

    embedder: str
    coef: np.ndarray  # (labels, dimension + len(ngrams))
    intercept: np.ndarray  # (labels,)
    ngrams: list[str]
    idf: np.ndarray
    ngram_weight: float
    _vectorizer: object = field(default=None, repr=False, compare=False)

    @classmethod
    def features(cls, vectors: np.ndarray, texts: list[str], vectorizer, weight: float):
        from scipy.sparse import csr_matrix, hstack

        return hstack([csr_matrix(vectors), weight * vectorizer.transform(texts)]).tocsr()

    def vectorizer(self):
        if self._vectorizer is None:
            vectorizer = char_vectorizer({ngram: i for i, ngram in enumerate(self.ngrams)})
            vectorizer.idf_ = self.idf
            self._vectorizer = vectorizer
        return self._vectorizer

    def logits(self, vectors: np.ndarray, texts: list[str]) -> np.ndarray:
        return np.asarray(self.features(vectors, texts, self.vectorizer(), self.ngram_weight) @ self.coef.T) \
            + self.intercept

    def save(self, directory: Path) -> None:
        (Path(directory) / HEAD_FILE).write_text(json.dumps({
            "embedder": self.embedder, "ngram_weight": self.ngram_weight, "ngrams": self.ngrams,
            "idf": np.round(self.idf, 5).tolist(), "intercept": np.round(self.intercept, 5).tolist(),
            "coef": np.round(self.coef, 5).tolist()}, ensure_ascii=False))

    @classmethod
    def load(cls, directory: Path) -> RouterHead:
        raw = json.loads((Path(directory) / HEAD_FILE).read_text(encoding="utf-8"))
        return cls(raw["embedder"], np.asarray(raw["coef"], dtype=np.float32),
                   np.asarray(raw["intercept"], dtype=np.float32), list(raw["ngrams"]),
                   np.asarray(raw["idf"], dtype=np.float64), float(raw["ngram_weight"]))


HEAD_FILE = "head.json"


class EmbeddingRouter(Router):
    """Route with a linear head over the embedder's sentence vectors (the shipped router). The vector of a message
    is the one retrieval searches with, so one encoder pass per question serves routing and retrieval (the
    embedder keeps the last questions' vectors).

    Args:
        model: a directory with router.json and head.json (`fit_router_head`).
        embedder: the Embedder to use; default the bundled one (its weights are shared process-wide).
    """

    def __init__(self, model: str | Path, embedder=None, top_alternatives: int = 3) -> None:
        self.model_dir = Path(model)
        self.top_alternatives = top_alternatives
        self._embedder = embedder
        self.head: RouterHead | None = None

    def warm_up(self) -> None:
        if self.head is not None:
            return
        from spanqa.retriever.embedding import Embedder

        config = RouterConfig.load(self.model_dir)
        try:
            head = RouterHead.load(self.model_dir)
        except (OSError, ValueError, KeyError) as exc:
            raise ModelLoadError(f"Could not load the router head in {self.model_dir}: {exc}") from exc
        embedder = self._embedder or Embedder()
        if embedder.name != head.embedder:
            raise ModelLoadError(f"The router in {self.model_dir} was fitted on {head.embedder} vectors, not "
                                 f"{embedder.name}'s; fit one for this embedder (spanqa train-intent --head)")
        self._embedder, self.config, self.head = embedder, config, head

    def logits(self, texts: list[str]) -> np.ndarray:
        self.warm_up()
        if not texts:
            return np.zeros((0, len(self.config.labels)), dtype=np.float32)
        return self.head.logits(self._embedder.encode_queries(texts), texts)


def load_router(model: str | Path, precision: str = Settings.router_precision, embedder=None,
                device: str = Settings.device) -> Router:
    """The router saved in `model`: a head over the embedder (which runs on its own device) where the directory
    holds head.json, else a fine-tuned classifier on `device`."""
    if (Path(model) / HEAD_FILE).is_file():
        return EmbeddingRouter(model, embedder=embedder)
    return IntentClassifier(model, precision=precision, device=device)
