"""The conversation development set: 40 three-turn conversations over the project's own collections.

    conversations.jsonl   one conversation a line: {"id", "turns": [[question, standalone, answer, source], ...]}
    articles/*.md         four Wikipedia-style articles written for this set (Tower Bridge, the Thames Barrier, the
                          western honey bee, beekeeping), in pairs so that a conversation can move to the related one
    ../techdocs/sources   the technical documents (package READMEs; see bench/techdocs/build.py)

Each follow-up (turns 2 and 3) carries the standalone rewrite a perfect rewriter would produce; the first turn
stands alone (its standalone is null). An answer is a verbatim span of its source ("" = the source does not
answer it: 8 of the 80 follow-ups). Nothing here was tuned on: the resolution rules were written before it was
measured (plugin/engine/conversation.py), and nothing trains on it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from bench.techdocs.build import locate

__all__ = ["HERE", "ARTICLES", "TECHDOCS", "Turn", "Conversation", "load", "sources"]

HERE = Path(__file__).resolve().parent
ARTICLES = HERE / "articles"
TECHDOCS = HERE.parent / "techdocs" / "sources"
# The READMEs the collection held when these conversations were last measured (2026-12-04): named, not globbed, so
# that READMEs added later for training or for the technical development set do not change this benchmark's
# collection (16 more of them made every follow-up's retrieval harder and its numbers incomparable).
TECHNICAL_SOURCES = ("backoff", "cloudpickle", "distro", "filetype", "h11", "httpx-sse", "loguru", "orjson", "pgvector",
                     "platformdirs", "psutil", "pytest-socket", "pytest-timeout", "python-dotenv", "requests-toolbelt",
                     "sortedcontainers", "sse-starlette", "threadpoolctl", "tqdm", "xxhash")


@dataclass(frozen=True)
class Turn:
    question: str
    standalone: str
    answer: str  # verbatim in `source`; "" when unanswerable
    source: str

    @property
    def answerable(self) -> bool:
        return bool(self.answer)


@dataclass(frozen=True)
class Conversation:
    id: str
    turns: tuple[Turn, ...]

    @property
    def domain(self) -> str:
        return "wiki" if self.turns[0].source.endswith(".md") else "technical"


def sources() -> list[Path]:
    """Every document of the set's collection: the articles and the technical READMEs."""
    return sorted(ARTICLES.glob("*.md")) + [TECHDOCS / f"{name}.txt" for name in TECHNICAL_SOURCES]


def load(path: Path = HERE / "conversations.jsonl") -> list[Conversation]:
    """The conversations, each answer checked to be verbatim in its source (ValueError when not)."""
    texts = {p.name: p.read_text(encoding="utf-8") for p in sources()}
    conversations = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        record = json.loads(line)
        turns = []
        for question, rewrite, answer, source in record["turns"]:
            if source not in texts:
                raise ValueError(f"{record['id']}: unknown source {source}")
            if answer:
                locate(texts[source], answer)
            turns.append(Turn(question, rewrite or question, answer, source))
        conversations.append(Conversation(record["id"], tuple(turns)))
    return conversations
