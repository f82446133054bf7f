"""Documents → Passages sized in tokens of the embedder/reader tokenizer, cut at sentence boundaries.

Why tokens, not characters: the embedder truncates at 256 tokens and the reader reads windows of 384, so a
passage sized in characters can silently lose its end. Why sentences: an answer cut in half by a chunk
boundary cannot be extracted. Pages are hard boundaries, so each passage cites exactly one page.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from spanqa.retriever.records import Document, Passage

from spanqa.errors import InputError
from spanqa.settings import DEFAULT_MAX_PASSAGES, Settings

__all__ = ["Chunker", "ChunkingSettings", "code_blocks", "sentence_spans"]

# A sentence ends at . ! ? (optionally followed by quotes or brackets) before whitespace, or at a blank line.
_SENTENCE_END = re.compile(r"(?<=[.!?])([\"'”’)\]]*)\s+|\n\s*\n|\n(?=\s*(?:[-*•]|\d+[.)]|#)\s)")

# Code blocks: a fenced block (``` or ~~~ … the same fence), or the indented lines after a reStructuredText "::".
_FENCE = re.compile(r"^[ \t]*(```|~~~)[^\n]*\n.*?^[ \t]*\1[ \t]*$", re.M | re.S)
_LITERAL_BLOCK = re.compile(r"::[ \t]*\n(?:[ \t]*\n)*((?:(?:[ \t]+[^\n]*)?\n)*(?:[ \t]+[^\n]*))")


def code_blocks(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """(start, end) of the code blocks of text[start:end]: fenced Markdown blocks and reStructuredText literal
    blocks."""
    end = len(text) if end is None else end
    blocks = [(m.start(), m.end()) for m in _FENCE.finditer(text, start, end)]
    blocks += [(m.start(1), m.end(1)) for m in _LITERAL_BLOCK.finditer(text, start, end)
               if not any(s <= m.start(1) < e for s, e in blocks)]
    return sorted(blocks)


def _with_code_whole(text: str, spans: list[tuple[int, int]], blocks: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sentence spans where each code block is one unit, together with the sentence that introduces it (the one
    just before, when it ends with a colon): a command and the words saying what it does stay in one passage, so
    that retrieval finds them and the reader sees both. A block too long for a passage is still split later."""
    merged: list[tuple[int, int]] = []
    for s, e in spans:
        block = next(((bs, be) for bs, be in blocks if bs < e and s < be), None)
        if block is not None and merged and merged[-1][1] > block[0]:  # still inside the block the last unit holds
            merged[-1] = (merged[-1][0], max(merged[-1][1], e))
            continue
        if block is not None:
            s, e = min(s, block[0]), max(e, block[1])
            if merged and text[merged[-1][0]:merged[-1][1]].rstrip().endswith(":"):
                s = merged.pop()[0]
        merged.append((s, e))
    return merged


@dataclass(frozen=True)
class ChunkingSettings:
    max_tokens: int = Settings.chunk_tokens
    overlap_tokens: int = Settings.chunk_overlap_tokens

    def __post_init__(self) -> None:
        if self.max_tokens < 16:
            raise InputError(f"max_tokens must be at least 16, got {self.max_tokens}")
        if not 0 <= self.overlap_tokens < self.max_tokens // 2:
            raise InputError(f"overlap_tokens must be in [0, max_tokens/2), got {self.overlap_tokens}")


def sentence_spans(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """(start, end) character spans of the sentences in text[start:end], whitespace trimmed, none empty."""
    end = len(text) if end is None else end
    spans: list[tuple[int, int]] = []
    cursor = start
    for match in _SENTENCE_END.finditer(text, start, end):
        # closing quotes and brackets after the full stop belong to the sentence (group 1)
        spans.append((cursor, match.end(1) if match.group(1) is not None else match.start()))
        cursor = match.end()
    spans.append((cursor, end))
    trimmed = []
    for s, e in spans:
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if e > s:
            trimmed.append((s, e))
    return trimmed


class Chunker:
    """Greedy packing of whole sentences into passages of at most `max_tokens` tokens, each passage starting
    with about `overlap_tokens` tokens of the previous one. A sentence longer than a passage is split at
    token boundaries. A document that would yield more than `max_passages` passages is refused (InputError)
    before anything is embedded: one pathological file must not stall an ingest for hours.

    Usage:
        chunker = Chunker(tokenizer, ChunkingSettings(max_tokens=192, overlap_tokens=32))
        passages = chunker.split(document)
    """

    def __init__(self, tokenizer, settings: ChunkingSettings | None = None,
                 max_passages: int = DEFAULT_MAX_PASSAGES) -> None:
        self.tokenizer = tokenizer
        self.settings = settings or ChunkingSettings()
        self.max_passages = max_passages

    def _token_ends(self, text: str, spans: list[tuple[int, int]]) -> list[list[int]]:
        """For each span, the end offsets (relative to the span start) of its tokens."""
        encoded = self.tokenizer([text[s:e] for s, e in spans], add_special_tokens=False,
                                 return_offsets_mapping=True)
        return [[off[1] for off in offsets] for offsets in encoded["offset_mapping"]]

    def _units(self, text: str, start: int, end: int) -> list[tuple[int, int, int]]:
        """Sentences of text[start:end] as (start, end, tokens), long ones split to fit a passage."""
        spans = sentence_spans(text, start, end)
        if not spans:
            return []
        blocks = code_blocks(text, start, end)
        if blocks:
            spans = _with_code_whole(text, spans, blocks)
        units: list[tuple[int, int, int]] = []
        limit = self.settings.max_tokens
        for (s, e), ends in zip(spans, self._token_ends(text, spans), strict=True):
            if len(ends) <= limit:
                units.append((s, e, max(1, len(ends))))
                continue
            first = 0
            while first < len(ends):
                piece_start = s + (ends[first - 1] if first else 0)
                while piece_start < e and text[piece_start].isspace():
                    piece_start += 1
                stop = min(first + limit, len(ends))
                # A piece may start inside a word, whose tail re-tokenizes into more pieces than it had in place
                # ("##2" becomes "2"): measure the piece itself and give back tokens until it fits.
                while stop > first + 1 and self._count(text[piece_start : s + ends[stop - 1]]) > limit:
                    stop -= 1
                # the last piece runs to the sentence end: characters the tokenizer drops must stay covered
                piece_end = e if stop == len(ends) else s + ends[stop - 1]
                if piece_end > piece_start:
                    units.append((piece_start, piece_end, stop - first))
                first = stop
        return units

    def _count(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def split(self, document: Document) -> list[Passage]:
        limit = self.settings.max_tokens
        passages: list[Passage] = []
        for page in document.pages:
            units = self._units(document.text, page.start, page.end)
            first = 0
            while first < len(units):
                last, tokens = first, units[first][2]
                while last + 1 < len(units) and tokens + units[last + 1][2] <= self.settings.max_tokens:
                    last += 1
                    tokens += units[last][2]
                # Sentence counts can undercount the joined text by a token or so (WordPiece sees across
                # the boundary); measure the real passage and give back sentences until it fits.
                while last > first and self._count(document.text[units[first][0] : units[last][1]]) > limit:
                    last -= 1
                start, end = units[first][0], units[last][1]
                passages.append(Passage(document_id=document.id, source=document.source,
                                        text=document.text[start:end], start=start, end=end,
                                        page=page.number, index=len(passages), title=document.title))
                if len(passages) > self.max_passages:
                    raise InputError(
                        f"{document.source} yields more than {self.max_passages:,} passages (the "
                        "max_passages_per_document limit); raise that setting to ingest it")
                if last + 1 >= len(units):
                    break
                # Step back over whole sentences for the overlap, but always move forward by at least one.
                nxt, carried = last + 1, 0
                while nxt - 1 > first and carried + units[nxt - 1][2] <= self.settings.overlap_tokens:
                    nxt -= 1
                    carried += units[nxt][2]
                first = nxt
        return passages
