"""Ablations of retrieval recall@5 (BM25, dense, hybrid): code-identifier terms in BM25, the document title
embedded with each passage, code blocks kept whole with the sentence that introduces them, and (an experiment,
not in the product) the section's heading path in each passage's title.

    python -m bench.techdocs.recall [--data FILE.json ...] [--limit N]

Default data: the technical development set. Each SQuAD context is one document titled with its article title,
as the benchmark builds them. A hit counts when one of the top 5 passages overlaps the gold answer span.
"""

from __future__ import annotations

import argparse
import re
import tempfile
from pathlib import Path

import spanqa.retriever.base as base
import spanqa.retriever.chunking as chunking
import spanqa.retriever.indexes as indexes
from spanqa.plugin.engine.squad import load_squad
from spanqa.retriever.collection import LocalCollection
from spanqa.retriever.loaders import LoadReport
from spanqa.retriever.records import Document

ABLATIONS = {  # name → (identifier terms in BM25, title embedded, code blocks whole, heading path in the title)
    "before all four": (False, False, False, False),
    "identifier terms": (True, False, False, False),
    "identifier terms + embedded title": (True, True, False, False),
    "+ code blocks whole (spanqa)": (True, True, True, False),
    "+ heading path in the title (not shipped)": (True, True, True, True),
}
_ATX_HEADING = re.compile(r"^[ \t]{0,3}(#{1,6})[ \t]+(.+?)[ \t#]*$", re.M)
# A line of words underlined (Markdown setext, reStructuredText) by a row of one punctuation character.
_UNDERLINED = re.compile(r"^([^\n]*\w[^\n]*)\n([=\-~^*+#\"'`:.])\2{2,}[ \t]*$", re.M)


def section_paths(text: str) -> list[tuple[int, tuple[str, ...]]]:
    """(offset, heading path) at each heading of a Markdown or reStructuredText document, outside code blocks.
    Underline levels follow the order the characters first appear in (the reStructuredText rule)."""
    blocks = chunking.code_blocks(text)
    headings = [(m.start(), len(m.group(1)), m.group(2).strip()) for m in _ATX_HEADING.finditer(text)]
    levels: dict[str, int] = {}
    for m in _UNDERLINED.finditer(text):
        title = m.group(1).strip()
        if len(m.group(0)) - len(m.group(1)) - 1 < 0.6 * len(title) or title.startswith(("#", "|", "..")):
            continue  # a rule under a long line is a table or a divider, not a heading
        levels.setdefault(m.group(2), len(levels) + 1)
        headings.append((m.start(), levels[m.group(2)], title))
    paths, stack = [], []
    for offset, level, title in sorted(headings):
        if not any(s <= offset < e for s, e in blocks):  # "# install it" in a shell block is a comment
            stack = [(lv, t) for lv, t in stack if lv < level] + [(level, title)]
            paths.append((offset, tuple(t for _, t in stack)))
    return paths


def with_section_titles(split):
    """Chunker.split, each passage titled with its document's title and the heading path of its section."""
    def titled_split(self, document):
        passages, paths = split(self, document), section_paths(document.text)
        for passage in passages:
            path = next((p for offset, p in reversed(paths) if offset <= passage.start), ())
            if path and path[0].lower() == document.title.lower():
                path = path[1:]
            passage.title = " › ".join((document.title, *path))
        return passages
    return titled_split


def documents_and_questions(path: Path, limit: int | None) -> tuple[list[Document], list[tuple[str, str, int, int]]]:
    examples = [e for e in load_squad(path) if not e.is_impossible][:limit]
    documents: dict[str, Document] = {}
    questions = []
    for e in examples:
        source = f"{e.title} #{e.context_id}"
        documents.setdefault(e.context_id, Document(source=source, text=e.context, title=e.title))
        questions.append((e.question, source, e.answers[0].start, e.answers[0].end))
    return list(documents.values()), questions


def recall_at_5(collection: LocalCollection, questions, mode: str) -> float:
    found = 0
    for question, source, start, end in questions:
        hits = collection.search(question, k=5, mode=mode)
        found += any(h.passage.source == source and h.passage.start < end and start < h.passage.end for h in hits)
    return found / len(questions)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, nargs="+", default=[Path("bench/out/techdocs.json")])
    parser.add_argument("--limit", type=int, help="first N answerable questions (and their contexts) per file")
    args = parser.parse_args()
    identifier_terms, embedding_text = indexes.identifier_terms, base.embedding_text
    code_blocks, split = chunking.code_blocks, chunking.Chunker.split
    for path in args.data:
        documents, questions = documents_and_questions(path, args.limit)
        for label, (identifiers, titled, whole_code, sections) in ABLATIONS.items():
            indexes.identifier_terms = identifier_terms if identifiers else (lambda text: [])
            base.embedding_text = lambda passage, _, titled=titled: embedding_text(passage, titled)
            chunking.code_blocks = code_blocks if whole_code else (lambda text, start=0, end=None: [])
            chunking.Chunker.split = with_section_titles(split) if sections else split
            collection = LocalCollection(Path(tempfile.mkdtemp()) / "collection")
            collection.add_documents(LoadReport(documents=documents))
            recalls = {mode: recall_at_5(collection, questions, mode) for mode in ("bm25", "dense", "hybrid")}
            collection.close()
            print(f"{path.name}: {label:44s} " + "  ".join(f"{m} {r:.3f}" for m, r in recalls.items())
                  + f"  ({len(questions)} answerable questions)", flush=True)
    indexes.identifier_terms, base.embedding_text = identifier_terms, embedding_text
    chunking.code_blocks, chunking.Chunker.split = code_blocks, split


if __name__ == "__main__":
    main()
